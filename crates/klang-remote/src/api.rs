//! What the page sends and what it is sent: [`Command`]s (the remote's whole vocabulary,
//! smaller than `klang ctl`'s: no files, no reload) and [`PageState`], pushed to every
//! open page after each change.

use serde::{Deserialize, Serialize};

/// The largest tone gain the page may ask for (klang-dsp allows ±30 dB; a phone slider
/// needs far less, and the engine validates again).
pub const MAX_TONE_DB: f64 = 15.0;
/// The lowest volume the page may set.
pub const MIN_VOLUME_DB: f64 = -100.0;

/// One change from the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Set the volume in dB; above `max_db` is refused, not capped.
    Volume {
        /// dB.
        db: f64,
    },
    /// Bass shelf in dB.
    Bass {
        /// dB.
        db: f64,
    },
    /// Treble shelf in dB.
    Treble {
        /// dB.
        db: f64,
    },
    /// Loudness on or off.
    Loudness {
        /// On.
        on: bool,
    },
    /// Bypass on or off.
    Bypass {
        /// On.
        on: bool,
    },
    /// Mute on or off.
    Mute {
        /// On.
        on: bool,
    },
    /// One of the listed presets, by name.
    Preset {
        /// A name from [`PageState::presets`].
        name: String,
    },
}

/// A change as posted: the command plus the replay guard's nonce and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    /// 16 to 64 random hex digits, new for every request.
    pub nonce: String,
    /// The client's estimate of the server's clock (ms since the Unix epoch).
    pub ts: u64,
    /// The change.
    pub command: Command,
}

/// What the engine allows right now; commands are checked against it on the engine's
/// thread, just before they are carried out.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// The active preset's `volume.max_db`.
    pub max_db: f64,
    /// Preset names the page may switch to.
    pub presets: Vec<String>,
}

impl Command {
    /// Refuses what the page must not do: volumes above `max_db` (the engine would cap
    /// them; the page is told instead), non-finite or far-out gains, presets not listed
    /// (so a page can never make the engine read a file).
    pub fn validate(&self, limits: &Limits) -> Result<(), String> {
        match self {
            Command::Volume { db } if !db.is_finite() => Err("the volume must be a number".into()),
            Command::Volume { db } if *db > limits.max_db => Err(format!(
                "{db:+.1} dB is above the maximum volume {:+.1} dB (volume.max_db)",
                limits.max_db
            )),
            Command::Volume { db } if *db < MIN_VOLUME_DB => Err(format!(
                "{db:+.1} dB is below {MIN_VOLUME_DB} dB; use mute for silence"
            )),
            Command::Bass { db } | Command::Treble { db }
                if !db.is_finite() || db.abs() > MAX_TONE_DB =>
            {
                Err(format!(
                    "a tone gain must be between -{MAX_TONE_DB} and +{MAX_TONE_DB} dB"
                ))
            }
            Command::Preset { name } if !limits.presets.iter().any(|p| p == name) => Err(format!(
                "{name:?} is not one of the presets: {}",
                limits.presets.join(", ")
            )),
            _ => Ok(()),
        }
    }
}

/// One output's magnitude response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// `L`, `R` or `SUB`.
    pub name: String,
    /// dB at each of [`PageState::freqs`], relative to the volume.
    pub db: Vec<f64>,
}

/// Everything the page shows, pushed after every change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageState {
    /// The volume the user set (dB).
    pub volume_db: f64,
    /// The hard maximum (dB).
    pub max_db: f64,
    /// Muted.
    pub muted: bool,
    /// The active preset ("config", a name or a file).
    pub preset: String,
    /// Presets the page may switch to.
    pub presets: Vec<String>,
    /// Bass shelf (dB).
    pub bass_db: f64,
    /// Treble shelf (dB).
    pub treble_db: f64,
    /// Loudness on.
    pub loudness: bool,
    /// Bypass on.
    pub bypass: bool,
    /// Limiter ceiling (dBFS).
    pub ceiling_db: f64,
    /// Frequencies of the response plot (Hz, log-spaced).
    pub freqs: Vec<f64>,
    /// The active chain's response per output.
    pub curves: Vec<Curve>,
    /// Counts published states; the page ignores older ones.
    pub version: u64,
}

/// What the engine answered to a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Carried out.
    pub ok: bool,
    /// What happened, or why not.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_db: -6.0,
            presets: vec!["flat".into(), "wall".into()],
        }
    }

    #[test]
    fn volume_above_the_maximum_is_refused() {
        let l = limits();
        assert!(Command::Volume { db: -6.0 }.validate(&l).is_ok());
        let e = Command::Volume { db: -5.9 }.validate(&l).unwrap_err();
        assert!(e.contains("above the maximum volume -6.0 dB"), "{e}");
        assert!(Command::Volume { db: f64::INFINITY }.validate(&l).is_err());
        assert!(Command::Volume { db: -101.0 }.validate(&l).is_err());
    }

    #[test]
    fn tone_and_presets() {
        let l = limits();
        assert!(Command::Bass { db: 15.0 }.validate(&l).is_ok());
        assert!(Command::Treble { db: -15.5 }.validate(&l).is_err());
        assert!(Command::Bass { db: f64::NAN }.validate(&l).is_err());
        assert!(
            Command::Preset {
                name: "wall".into()
            }
            .validate(&l)
            .is_ok()
        );
        let e = Command::Preset {
            name: "/etc/passwd".into(),
        }
        .validate(&l)
        .unwrap_err();
        assert!(e.contains("not one of the presets: flat, wall"), "{e}");
    }

    #[test]
    fn wire_format_is_strict() {
        let s: Signed = serde_json::from_str(
            r#"{"nonce":"00ff00ff00ff00ff","ts":5,"command":{"cmd":"volume","db":-12}}"#,
        )
        .unwrap();
        assert_eq!(s.command, Command::Volume { db: -12.0 });
        for bad in [
            r#"{"nonce":"00ff00ff00ff00ff","ts":5,"command":{"cmd":"reload"}}"#,
            r#"{"nonce":"00ff00ff00ff00ff","ts":5,"command":{"cmd":"volume","db":1,"x":1}}"#,
            r#"{"nonce":"00ff00ff00ff00ff","command":{"cmd":"mute","on":true}}"#,
        ] {
            assert!(serde_json::from_str::<Signed>(bad).is_err(), "{bad}");
        }
    }
}
