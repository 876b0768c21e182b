//! The glue between klang-remote's server and the controller: the page's commands become
//! ordinary control [`Request`]s (so they take the same validated, ramped path as
//! `klang ctl`), and the controller's state becomes the [`PageState`] pushed to pages,
//! with the active chain's response computed by klang-dsp.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;

use klang_dsp::config::Config;
use klang_dsp::response::{chain_response, log_frequencies};
pub use klang_remote::api::{Command, Curve, Limits, Outcome, PageState};
pub use klang_remote::{Remote, RemoteError, ServerConfig, pairing_text, pairing_url, qr};

use crate::protocol::{Request, StatusReport};
use crate::runconfig::RemoteSection;

/// Points of the response plot.
pub const PLOT_POINTS: usize = 96;

/// The server's settings from `[remote]`; paired devices are kept in `devices_file`.
pub fn server_config(section: &RemoteSection, devices_file: Option<PathBuf>) -> ServerConfig {
    let url = section.url.clone().or_else(|| {
        let ip = section.listen.ip();
        ip.is_unspecified()
            .then(|| lan_address(ip))
            .flatten()
            .map(|ip| format!("http://{}/", SocketAddr::new(ip, section.listen.port())))
    });
    ServerConfig {
        listen: section.listen,
        hosts: section.hosts.clone(),
        url,
        devices_file,
    }
}

/// This machine's address on its default route, for the QR code when listening on all
/// addresses. Connecting a UDP socket only looks up the route; nothing is sent.
fn lan_address(family: IpAddr) -> Option<IpAddr> {
    let (bind, probe) = match family {
        IpAddr::V4(_) => ("0.0.0.0:0", "192.0.2.1:9"),
        IpAddr::V6(_) => ("[::]:0", "[2001:db8::1]:9"),
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect(probe).ok()?;
    Some(s.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
}

/// The control request a page's command is carried out as.
pub fn request_for(command: Command) -> Request {
    match command {
        Command::Volume { db } => Request::Volume { db },
        Command::Bass { db } => Request::Bass { db },
        Command::Treble { db } => Request::Treble { db },
        Command::Loudness { on } => Request::Loudness { on },
        Command::Bypass { on } => Request::Bypass { on },
        Command::Mute { on } => Request::Mute { on },
        Command::Preset { name } => Request::Preset { name },
    }
}

/// The frequencies of the plot: 20 Hz to 20 kHz, log-spaced.
pub fn plot_freqs() -> Vec<f64> {
    log_frequencies(PLOT_POINTS, 20.0, 20_000.0)
}

/// The chain's response per output at the set volume, relative to that volume (so the
/// plot shows the voicing, loudness included, not the level). Empty if the chain cannot
/// be built (the engine then plays its fallback).
pub fn curves(config: &Config, rate: u32, volume_db: f64, freqs: &[f64]) -> Vec<Curve> {
    chain_response(config, rate, volume_db, freqs)
        .map(|outs| {
            outs.into_iter()
                .map(|o| Curve {
                    name: o.name.to_string(),
                    db: o
                        .magnitude_db
                        .iter()
                        .map(|m| ((m - volume_db) * 100.0).round() / 100.0)
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The page's view of a status report.
pub fn page_state(
    status: &StatusReport,
    presets: &[String],
    freqs: Vec<f64>,
    curves: Vec<Curve>,
) -> PageState {
    PageState {
        volume_db: status.volume_db,
        max_db: status.max_db,
        muted: status.muted,
        preset: status.preset.clone(),
        presets: presets.to_vec(),
        bass_db: status.bass_db,
        treble_db: status.treble_db,
        loudness: status.loudness,
        bypass: status.bypass,
        ceiling_db: status.ceiling_db,
        freqs,
        curves,
        version: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_show_the_voicing_relative_to_the_volume() {
        let mut c = Config::default();
        c.tone.bass_db = 6.0;
        let f = [30.0, 1000.0, 15_000.0];
        let quiet = curves(&c, 48_000, -30.0, &f);
        let loud = curves(&c, 48_000, -10.0, &f);
        assert_eq!(quiet[0].name, "L");
        assert!(quiet[0].db[0] > 5.0, "{:?}", quiet[0].db);
        assert!(quiet[0].db[1].abs() < 1.0, "{:?}", quiet[0].db);
        assert_eq!(
            quiet, loud,
            "without loudness the shape does not move with volume"
        );
    }

    #[test]
    fn the_lan_needs_no_guess_when_the_url_is_given() {
        let s = RemoteSection {
            listen: "0.0.0.0:7878".parse().unwrap(),
            allow_lan: true,
            url: Some("http://10.200.0.1:7878/".into()),
            ..RemoteSection::default()
        };
        assert_eq!(
            server_config(&s, None).url.as_deref(),
            Some("http://10.200.0.1:7878/")
        );
        let local = server_config(&RemoteSection::default(), None);
        assert_eq!(local.url, None, "the server names its bound address");
    }
}
