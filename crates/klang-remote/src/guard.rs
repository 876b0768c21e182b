//! The checks every request passes before it reaches the engine, as pure functions:
//! the `Host` header (against DNS rebinding), the `Origin` header (against other sites'
//! pages), the bearer token's shape, and replay (a fresh nonce and a current timestamp on
//! every change).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// How far a request's timestamp may be from the server's clock.
pub const CLOCK_WINDOW_MS: u64 = 60_000;
/// Nonces remembered at most; a full store refuses until old ones expire, so a flood
/// cannot push out a nonce that could still be replayed.
pub const MAX_NONCES: usize = 20_000;

/// Why a request was refused before it reached the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The `Host` header names no address of this machine.
    #[error(
        "host {0:?} is not this klang (help: open the address `klang ctl remote pair` prints, or add the name to [remote] hosts)"
    )]
    Host(String),
    /// The `Origin` header is another site, or missing on a change.
    #[error("requests from origin {0:?} are refused; open the page from klang itself")]
    Origin(String),
    /// No token.
    #[error(
        "not paired: this browser has no token (help: pair with the code from `klang ctl remote pair`)"
    )]
    NoToken,
    /// A token that is not (or no longer) paired.
    #[error(
        "unknown or revoked token (help: pair again with the code from `klang ctl remote pair`)"
    )]
    BadToken,
    /// The nonce was seen already.
    #[error("replayed request (this nonce was used already)")]
    Replay,
    /// The timestamp is too far from the server's clock.
    #[error("stale request: its time is more than 60 s from the server's clock")]
    Stale,
    /// Nonce or timestamp malformed, or the nonce store is full.
    #[error("{0}")]
    Malformed(String),
}

/// Whether `host` (the `Host` header, with or without port) may address this server.
///
/// IP literals cannot be rebound by a DNS answer, `localhost` is this machine, and any
/// other name must be listed in `[remote] hosts`. A page of `evil.example` rebound to
/// this machine's address carries `Host: evil.example` and is refused.
pub fn host_allowed(host: &str, extra: &[String]) -> bool {
    let name = host_name(host);
    if name.is_empty() {
        return false;
    }
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok()
        || extra.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The name part of a `Host` header: `[::1]:80` → `::1`, `a.b:80` → `a.b`.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Checks the `Origin` header against the `Host` header. A change (`POST`) must carry
/// an `Origin` (every browser sends one with `fetch` POSTs); a read may go without,
/// since same-origin GETs carry none, but a foreign one is refused either way.
pub fn origin_ok(origin: Option<&str>, host: &str, change: bool) -> Result<(), Refusal> {
    match origin {
        None if change => Err(Refusal::Origin("(none)".into())),
        None => Ok(()),
        Some(o) if o.eq_ignore_ascii_case(&format!("http://{}", host.trim())) => Ok(()),
        Some(o) => Err(Refusal::Origin(o.into())),
    }
}

/// The token of an `Authorization: Bearer TOKEN` header.
pub fn bearer(header: Option<&str>) -> Result<&str, Refusal> {
    let h = header.ok_or(Refusal::NoToken)?;
    let (scheme, token) = h.trim().split_once(' ').ok_or(Refusal::BadToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Refusal::BadToken);
    }
    Ok(token.trim())
}

/// Nonces seen within the clock window.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: HashMap<String, u64>,
    order: VecDeque<(u64, String)>,
}

impl ReplayGuard {
    /// Accepts `nonce` (16 to 64 hex digits) at client time `ts_ms` once, if `ts_ms` is
    /// within [`CLOCK_WINDOW_MS`] of `now_ms`. A nonce is remembered for twice the
    /// window, longer than any request carrying it can stay acceptable.
    pub fn accept(&mut self, nonce: &str, ts_ms: u64, now_ms: u64) -> Result<(), Refusal> {
        if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Refusal::Malformed(
                "the nonce must be 16 to 64 hex digits".into(),
            ));
        }
        let keep = 2 * CLOCK_WINDOW_MS;
        while let Some((t, _)) = self.order.front() {
            if now_ms.saturating_sub(*t) <= keep {
                break;
            }
            let (_, n) = self.order.pop_front().expect("front exists");
            self.seen.remove(&n);
        }
        if ts_ms.abs_diff(now_ms) > CLOCK_WINDOW_MS {
            return Err(Refusal::Stale);
        }
        let nonce = nonce.to_ascii_lowercase();
        if self.seen.contains_key(&nonce) {
            return Err(Refusal::Replay);
        }
        if self.seen.len() >= MAX_NONCES {
            return Err(Refusal::Malformed(
                "too many requests in the last two minutes; try again shortly".into(),
            ));
        }
        self.seen.insert(nonce.clone(), now_ms);
        self.order.push_back((now_ms, nonce));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_ip_literals_localhost_and_listed_names() {
        let extra = vec!["klang.home".to_string()];
        for ok in [
            "127.0.0.1:7878",
            "192.168.1.10:7878",
            "[::1]:7878",
            "localhost:7878",
            "LOCALHOST",
            "klang.home:7878",
        ] {
            assert!(host_allowed(ok, &extra), "{ok}");
        }
        for bad in [
            "evil.example:7878",
            "",
            "klang.home.evil.example",
            "127.0.0.1.nip.io",
        ] {
            assert!(!host_allowed(bad, &extra), "{bad}");
        }
    }

    #[test]
    fn origin_must_be_the_page_itself() {
        let host = "192.168.1.10:7878";
        assert!(origin_ok(Some("http://192.168.1.10:7878"), host, true).is_ok());
        assert!(origin_ok(None, host, false).is_ok(), "same-origin GET");
        assert_eq!(
            origin_ok(None, host, true),
            Err(Refusal::Origin("(none)".into()))
        );
        for bad in [
            "http://evil.example",
            "http://192.168.1.10:7879",
            "https://192.168.1.10:7878",
            "null",
        ] {
            assert!(origin_ok(Some(bad), host, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(None), Err(Refusal::NoToken));
        assert_eq!(bearer(Some("Basic abc")), Err(Refusal::BadToken));
        assert_eq!(bearer(Some("Bearer ")), Err(Refusal::BadToken));
    }

    #[test]
    fn a_nonce_is_accepted_once_and_only_in_the_window() {
        let mut g = ReplayGuard::default();
        let n = "00112233445566778899aabbccddeeff";
        assert_eq!(g.accept(n, 1_000_000, 1_000_000), Ok(()));
        assert_eq!(g.accept(n, 1_000_000, 1_000_500), Err(Refusal::Replay));
        assert_eq!(
            g.accept(&n.to_uppercase(), 1_000_000, 1_000_500),
            Err(Refusal::Replay),
            "case does not make a new nonce"
        );
        assert_eq!(
            g.accept(
                "ffff0000ffff0000",
                1_000_000 - CLOCK_WINDOW_MS - 1,
                1_000_000
            ),
            Err(Refusal::Stale)
        );
        assert!(matches!(
            g.accept("xyz", 1_000_000, 1_000_000),
            Err(Refusal::Malformed(_))
        ));
        // Long after, the nonce is forgotten, but its old timestamp is stale anyway.
        let later = 1_000_000 + 3 * CLOCK_WINDOW_MS;
        assert_eq!(g.accept(n, 1_000_000, later), Err(Refusal::Stale));
        assert_eq!(g.seen.len(), 0, "expired nonces are dropped");
    }

    #[test]
    fn a_full_store_refuses_rather_than_forgets() {
        let mut g = ReplayGuard::default();
        for i in 0..MAX_NONCES {
            g.accept(&format!("{i:016x}"), 5, 5).unwrap();
        }
        assert!(matches!(
            g.accept("ffffffffffffffff", 5, 5),
            Err(Refusal::Malformed(_))
        ));
        assert_eq!(g.accept(&format!("{:016x}", 0), 5, 6), Err(Refusal::Replay));
    }
}
