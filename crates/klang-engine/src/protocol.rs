//! The control protocol between `klang ctl` and `klang run`: over the Unix socket, one
//! connection per request; the client writes one JSON object and a newline, the server
//! answers with one JSON object and a newline, then closes.
//!
//! ```text
//! → {"cmd":"volume","db":-12.0}
//! ← {"ok":true,"message":"volume -12.0 dB","status":{...}}
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A request to the running engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// State, rate, quantum, load, xruns, outputs.
    Status,
    /// Set the volume in dB (capped at `volume.max_db`).
    Volume {
        /// Target in dB.
        db: f64,
    },
    /// Change the volume by this many dB.
    VolumeStep {
        /// Step in dB (negative = quieter).
        db: f64,
    },
    /// The bass shelf in dB.
    Bass {
        /// Gain in dB.
        db: f64,
    },
    /// The treble shelf in dB.
    Treble {
        /// Gain in dB.
        db: f64,
    },
    /// Loudness compensation on or off.
    Loudness {
        /// On.
        on: bool,
    },
    /// Bypass (voicing off; crossover, volume and limiter stay) on or off.
    Bypass {
        /// On.
        on: bool,
    },
    /// Mute on or off.
    Mute {
        /// On.
        on: bool,
    },
    /// Switch to a built-in preset by name, or a preset file by absolute path.
    Preset {
        /// Name or absolute path.
        name: String,
    },
    /// Re-read the active preset file, or the run config; with a file (absolute path), use
    /// that run config's speaker settings.
    Reload {
        /// A run config to load instead.
        file: Option<PathBuf>,
    },
    /// A new one-time pairing code for the phone page (the previous one stops working).
    RemotePair,
    /// The paired devices.
    RemoteDevices,
    /// Revoke one paired device by id, or all of them.
    RemoteRevoke {
        /// The device's id (`klang ctl remote devices`); none: all.
        id: Option<String>,
    },
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What happened, or why not.
    pub message: String,
    /// The state after the request.
    pub status: Option<StatusReport>,
    /// The phone page's address, pairing code and devices (`remote_*` requests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteReport>,
}

/// The phone page, as `klang ctl remote` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteReport {
    /// The page's address.
    pub url: String,
    /// A new pairing code (`remote_pair` only).
    pub code: Option<String>,
    /// Seconds the code stays valid.
    pub code_valid_s: u64,
    /// The paired devices.
    pub devices: Vec<RemoteDevice>,
}

/// A paired device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteDevice {
    /// Id for `klang ctl remote revoke ID`.
    pub id: String,
    /// What the browser called itself.
    pub name: String,
    /// Unix time of pairing (s).
    pub paired_at: u64,
}

/// What `klang ctl status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The volume the user set (dB), before mute.
    pub volume_db: f64,
    /// The volume right now (dB; moves during a ramp; very low when muted).
    pub current_volume_db: f64,
    /// The preset's hard maximum.
    pub max_db: f64,
    /// Muted.
    pub muted: bool,
    /// "config" (the run config's own settings), a built-in name, or a file.
    pub preset: String,
    /// Bass shelf (dB).
    pub bass_db: f64,
    /// Treble shelf (dB).
    pub treble_db: f64,
    /// Loudness compensation.
    pub loudness: bool,
    /// Bypass.
    pub bypass: bool,
    /// A crossover is active (L, R, SUB).
    pub crossover: bool,
    /// Limiter ceiling (dBFS).
    pub ceiling_db: f64,
    /// A crossfade is running.
    pub fading: bool,
    /// The graph's sample rate (0 before the first cycle).
    pub sample_rate: u32,
    /// The graph's quantum.
    pub quantum: u32,
    /// Callback time / cycle time, recent.
    pub load: f32,
    /// Highest load seen.
    pub max_load: f32,
    /// Xruns counted by the engine.
    pub xruns: u64,
    /// Mains output: "connected", "missing" or "not configured".
    pub mains: String,
    /// Second output.
    pub second: String,
    /// The configuration could not be built at this rate; a safe fallback plays.
    pub fallback: bool,
    /// The last error PipeWire reported.
    pub last_error: Option<String>,
}

impl StatusReport {
    /// The human-readable form `klang ctl status` prints.
    pub fn to_text(&self) -> String {
        let onoff = |b: bool| if b { "on" } else { "off" };
        let mut s = String::new();
        s.push_str(&format!(
            "volume      {:+.1} dB (now {:+.1} dB, max {:+.1} dB){}\n",
            self.volume_db,
            self.current_volume_db.max(-150.0),
            self.max_db,
            if self.muted { ", muted" } else { "" }
        ));
        s.push_str(&format!("preset      {}\n", self.preset));
        s.push_str(&format!(
            "tone        bass {:+.1} dB, treble {:+.1} dB\n",
            self.bass_db, self.treble_db
        ));
        s.push_str(&format!(
            "switches    loudness {}, bypass {}, mute {}\n",
            onoff(self.loudness),
            onoff(self.bypass),
            onoff(self.muted)
        ));
        s.push_str(&format!(
            "outputs     mains {}, second {} ({})\n",
            self.mains,
            self.second,
            if self.crossover {
                "subwoofer"
            } else {
                "full-range copy"
            }
        ));
        s.push_str(&format!("ceiling     {:+.1} dBFS\n", self.ceiling_db));
        s.push_str(&format!(
            "graph       {} Hz, quantum {}\n",
            self.sample_rate, self.quantum
        ));
        s.push_str(&format!(
            "load        {:.1} % (max {:.1} %)\n",
            self.load * 100.0,
            self.max_load * 100.0
        ));
        s.push_str(&format!("xruns       {}\n", self.xruns));
        if self.fading {
            s.push_str("crossfade   running\n");
        }
        if self.fallback {
            s.push_str(
                "warning     the configuration is invalid at this rate; playing without EQ\n",
            );
        }
        if let Some(e) = &self.last_error {
            s.push_str(&format!("last error  {e}\n"));
        }
        s
    }
}

/// Talking to the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No engine listens on the socket.
    #[error("cannot connect to {}: {source} (help: is `klang run` running? see `systemctl --user status klang`)", socket.display())]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The exchange broke off.
    #[error("talking to {}: {message}", socket.display())]
    Exchange {
        /// The socket.
        socket: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Sends one request and reads the answer (5 s timeout).
pub fn request(socket: &Path, req: &Request) -> Result<Response, ClientError> {
    let stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        socket: socket.to_owned(),
        source,
    })?;
    let fail = |message: String| ClientError::Exchange {
        socket: socket.to_owned(),
        message,
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| fail(e.to_string()))?;
    let mut line = serde_json::to_string(req).expect("requests serialize");
    line.push('\n');
    (&stream)
        .write_all(line.as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(|e| fail(e.to_string()))?;
    serde_json::from_str(&answer).map_err(|e| fail(format!("bad answer {answer:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text() {
        let s = StatusReport {
            volume_db: -20.0,
            current_volume_db: -23.5,
            max_db: -6.0,
            muted: false,
            preset: "sub80".into(),
            bass_db: 2.0,
            treble_db: -1.5,
            loudness: true,
            bypass: false,
            crossover: true,
            ceiling_db: -1.0,
            fading: true,
            sample_rate: 48_000,
            quantum: 256,
            load: 0.0123,
            max_load: 0.05,
            xruns: 3,
            mains: "connected".into(),
            second: "missing".into(),
            fallback: false,
            last_error: Some("link to subwoofer failed".into()),
        };
        insta::assert_snapshot!(s.to_text());
    }

    #[test]
    fn wire_format() {
        let r = Request::Volume { db: -12.0 };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"cmd":"volume","db":-12.0}"#
        );
        let back: Request = serde_json::from_str(r#"{"cmd":"reload","file":null}"#).unwrap();
        assert_eq!(back, Request::Reload { file: None });
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"volume","dB":1}"#).is_err());
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"cmd":"status"}"#).unwrap(),
            Request::Status
        );
    }
}
