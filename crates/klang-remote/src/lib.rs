//! klang's phone remote: a small web page served by `klang run`, so any phone's browser
//! is the remote control (no app, no app store, no permissions).
//!
//! - [`pairing`]: one-time 6-digit codes, random bearer tokens, the devices file (only
//!   token hashes), revocation.
//! - [`guard`]: the checks before anything reaches the engine: `Host` (DNS rebinding),
//!   `Origin` (other sites), token, replay (nonce and time).
//! - [`api`]: the page's vocabulary ([`api::Command`]) and what it is shown
//!   ([`api::PageState`]).
//! - [`server`]: axum on a current-thread tokio runtime on its own thread; commands are
//!   queued to the engine's loop, state is pushed to every page over SSE.
//! - [`pairing_text`]: the terminal's pairing instructions with a QR code.
//!
//! # Boundaries
//! This crate never changes the sound itself: a [`server::Pending`] command is carried out
//! by klang-engine's controller, through the same ramped, validated path as `klang ctl`,
//! and checked there against the current `max_db` and preset list
//! ([`api::Command::validate`]). The page is compiled in (`include_str!`); nothing is
//! fetched at run time.
//!
//! ```
//! use klang_remote::api::{Command, Limits};
//!
//! let limits = Limits { max_db: -6.0, presets: vec!["flat".into()] };
//! assert!(Command::Volume { db: -10.0 }.validate(&limits).is_ok());
//! assert!(Command::Volume { db: 0.0 }.validate(&limits).is_err()); // above max_db
//! ```

#![forbid(unsafe_code)]

pub mod api;
pub mod guard;
pub mod pairing;
pub mod server;

pub use server::{Pending, Remote, RemoteError, ServerConfig};

/// The page's address with the code in its fragment (`#code=123456`): scanning it pairs
/// at once, and the fragment never leaves the phone in a request line.
pub fn pairing_url(url: &str, code: &str) -> String {
    format!("{}#code={code}", url.trim_end_matches('#'))
}

/// `text` as a QR code of Unicode half blocks, light modules drawn, for dark terminals
/// (phones' scanners read it either way round).
pub fn qr(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(e) => format!("(no QR code: {e})"),
    }
}

/// What the terminal shows to pair a phone.
pub fn pairing_text(url: &str, code: &str, valid_s: u64) -> String {
    let full = pairing_url(url, code);
    format!(
        "{}\nScan the code with the phone, or open {url} and type the code {code}\n\
         (valid {} min, once; a new one: `klang ctl remote pair`).\n",
        qr(&full),
        valid_s.div_ceil(60)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_instructions_with_qr() {
        insta::assert_snapshot!(pairing_text("http://192.168.1.10:7878/", "042917", 600));
    }
}
