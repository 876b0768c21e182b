//! `klang run` and `klang ctl`: flags only; the work is in klang-engine.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, Subcommand, ValueEnum};
use klang_engine::protocol::{self, Request};
use klang_engine::run::{RunError, RunOptions};

use crate::{EXIT_CONFIG, EXIT_RUNTIME, Failure, presets};

/// `klang ctl`'s commands.
#[derive(Debug, Subcommand)]
pub enum Ctl {
    /// Print the state, sample rate, quantum, load, xruns and output states.
    Status,
    /// Show or set the volume: `-20dB` or `0` set it, `+3` / `-3` step it (dB).
    ///
    /// Never above the preset's volume.max_db; changes are ramped.
    Volume {
        /// A number with dB (`-20dB`) or unsigned (`0`): absolute; `+N` / `-N`: a step in dB.
        #[arg(allow_hyphen_values = true, value_name = "DB|+N|-N")]
        value: Option<String>,
    },
    /// Set the bass shelf in dB (crossfaded).
    Bass {
        /// Gain in dB.
        #[arg(allow_negative_numbers = true)]
        db: f64,
    },
    /// Set the treble shelf in dB (crossfaded).
    Treble {
        /// Gain in dB.
        #[arg(allow_negative_numbers = true)]
        db: f64,
    },
    /// Loudness compensation on or off.
    Loudness {
        /// on or off.
        state: OnOff,
    },
    /// Bypass the voicing (EQ, tone, loudness); crossover, volume and limiter stay.
    Bypass {
        /// on or off.
        state: OnOff,
    },
    /// Mute on or off (ramped).
    Mute {
        /// on or off.
        state: OnOff,
    },
    /// Switch to a built-in preset or a preset file (klang TOML or APO); crossfaded.
    ///
    /// Validated first: an invalid preset is refused with the reason and the current
    /// settings keep playing.
    Preset {
        /// Built-in name or file.
        #[arg(value_name = "NAME|FILE")]
        preset: String,
    },
    /// Re-read the active preset file or the run config (or use FILE's speaker settings).
    ///
    /// Validated first: an invalid file is refused with the reason and the current settings
    /// keep playing.
    Reload {
        /// A run config to load instead.
        file: Option<PathBuf>,
    },
    /// The phone page (`klang run --remote`): pair a phone, list or revoke paired ones.
    #[command(subcommand)]
    Remote(RemoteCtl),
}

/// `klang ctl remote`'s commands.
#[derive(Debug, Subcommand)]
pub enum RemoteCtl {
    /// Show a one-time pairing code and a QR code of the page's address (valid 10 min).
    ///
    /// Scan the QR code with the phone, or open the address and type the code. A new
    /// code replaces the previous one; five wrong tries withdraw it.
    Pair,
    /// List the paired devices.
    Devices,
    /// Revoke a paired device (its token stops working at once), or all of them.
    Revoke {
        /// The device's id, from `klang ctl remote devices`.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Revoke every paired device.
        #[arg(long)]
        all: bool,
    },
}

/// on / off.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

impl OnOff {
    fn on(self) -> bool {
        matches!(self, OnOff::On)
    }
}

/// `klang run`'s flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run config: klang TOML with [output], [[route]], [control] and [remote].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve the phone remote page (default http://127.0.0.1:7878/; for the LAN set
    /// [remote] listen and allow_lan = true). Pair a phone with `klang ctl remote pair`.
    #[arg(long)]
    pub remote: bool,
}

/// `klang run`: hands the flags to klang-engine and maps its errors to exit codes.
pub fn run(args: RunArgs) -> Result<(), Failure> {
    let names = presets::PRESETS.iter().map(|p| p.0.to_string()).collect();
    let mut opts = RunOptions::new(args.config, presets::find, names);
    opts.remote = args.remote;
    klang_engine::run::run(opts).map_err(|e| match e {
        RunError::Config(m) => Failure {
            code: EXIT_CONFIG,
            error: anyhow!(m),
        },
        RunError::Runtime(m) => Failure {
            code: EXIT_RUNTIME,
            error: anyhow!(m),
        },
    })
}

/// Parses `klang ctl volume`'s argument: `+N`/`-N` step, `-20dB`/`0` absolute.
pub fn volume_request(value: &str) -> Result<Request, String> {
    let v = value.trim();
    let bad = || format!("{value:?} is not a volume: write -20dB (absolute), 0, +3 or -3 (steps)");
    let lower = v.to_ascii_lowercase();
    if let Some(number) = lower.strip_suffix("db") {
        let db: f64 = number.trim().parse().map_err(|_| bad())?;
        return Ok(Request::Volume { db });
    }
    let db: f64 = v.parse().map_err(|_| bad())?;
    if v.starts_with('+') || v.starts_with('-') {
        Ok(Request::VolumeStep { db })
    } else {
        Ok(Request::Volume { db })
    }
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path).map_err(|e| Failure {
        code: EXIT_RUNTIME,
        error: anyhow!("{}: {e}", path.display()),
    })
}

/// `klang ctl`.
pub fn ctl(
    cmd: Ctl,
    config: Option<PathBuf>,
    socket: Option<PathBuf>,
    json: bool,
) -> Result<(), Failure> {
    let usage = |m: String| Failure {
        code: 2,
        error: anyhow!(m),
    };
    let req = match cmd {
        Ctl::Status => Request::Status,
        Ctl::Volume { value: None } => Request::Status,
        Ctl::Volume { value: Some(v) } => volume_request(&v).map_err(usage)?,
        Ctl::Bass { db } => Request::Bass { db },
        Ctl::Treble { db } => Request::Treble { db },
        Ctl::Loudness { state } => Request::Loudness { on: state.on() },
        Ctl::Bypass { state } => Request::Bypass { on: state.on() },
        Ctl::Mute { state } => Request::Mute { on: state.on() },
        Ctl::Preset { preset } => {
            // A file is sent as an absolute path: the engine runs in another directory.
            let path = Path::new(&preset);
            let name = if preset.contains('/') || path.exists() {
                absolute(path)?.display().to_string()
            } else {
                preset
            };
            Request::Preset { name }
        }
        Ctl::Reload { file } => Request::Reload {
            file: file.as_deref().map(absolute).transpose()?,
        },
        Ctl::Remote(RemoteCtl::Pair) => Request::RemotePair,
        Ctl::Remote(RemoteCtl::Devices) => Request::RemoteDevices,
        Ctl::Remote(RemoteCtl::Revoke { id, .. }) => Request::RemoteRevoke { id },
    };
    let show_volume_only = matches!(req, Request::Status) && !json;
    let socket = match socket {
        Some(s) => s,
        None => {
            // The socket is wherever the engine's config says; an unreadable config means
            // the default place.
            let run = klang_engine::run::read_config(config.as_deref())
                .map(|(r, _)| r)
                .unwrap_or_default();
            klang_engine::run::socket_for(&run).map_err(|m| Failure {
                code: EXIT_RUNTIME,
                error: anyhow!(m),
            })?
        }
    };
    let response = protocol::request(&socket, &req).map_err(|e| Failure {
        code: EXIT_RUNTIME,
        error: anyhow!(e),
    })?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&response).expect("responses serialize")
        );
    } else if show_volume_only {
        if let Some(s) = &response.status {
            print!("{}", s.to_text());
        }
    } else if let (true, Some(r)) = (response.ok, &response.remote) {
        if r.code.is_none() {
            println!("{}", response.message);
        }
        print!("{}", remote_text(r));
    } else if response.ok {
        println!("{}", response.message);
    }
    if response.ok {
        Ok(())
    } else {
        Err(Failure {
            code: EXIT_CONFIG,
            error: anyhow!("refused: {}", response.message),
        })
    }
}

/// What `klang ctl remote` prints: the QR code and code, or the devices.
fn remote_text(r: &protocol::RemoteReport) -> String {
    if let Some(code) = &r.code {
        return klang_engine::remote::pairing_text(&r.url, code, r.code_valid_s);
    }
    let mut s = format!("remote page {}\n", r.url);
    if r.devices.is_empty() {
        s.push_str("no paired devices (pair one with `klang ctl remote pair`)\n");
    }
    for d in &r.devices {
        s.push_str(&format!(
            "{}  paired at {} (unix time)  {}\n",
            d.id, d.paired_at, d.name
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_arguments() {
        assert_eq!(volume_request("-20dB"), Ok(Request::Volume { db: -20.0 }));
        assert_eq!(volume_request("-20 db"), Ok(Request::Volume { db: -20.0 }));
        assert_eq!(volume_request("0"), Ok(Request::Volume { db: 0.0 }));
        assert_eq!(volume_request("+3"), Ok(Request::VolumeStep { db: 3.0 }));
        assert_eq!(volume_request("-2.5"), Ok(Request::VolumeStep { db: -2.5 }));
        assert!(volume_request("loud").is_err());
    }
}
