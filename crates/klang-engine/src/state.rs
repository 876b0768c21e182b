//! The remote's state (volume, mute, preset, switches), what it does to a configuration,
//! and its file: saved atomically on every change, restored on start.

use std::io::Write;
use std::path::{Path, PathBuf};

use klang_dsp::config::{Config, GraphicEq};
use serde::{Deserialize, Serialize};

/// What the user set with `klang ctl`. `None` means "as the active preset says".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct State {
    /// The volume in dB (unset: the preset's `volume.default_db`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_db: Option<f64>,
    /// Muted.
    pub muted: bool,
    /// The active preset: a built-in name or an absolute path. Unset: the run config's own
    /// speaker settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// Bass shelf override in dB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bass_db: Option<f64>,
    /// Treble shelf override in dB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub treble_db: Option<f64>,
    /// Loudness on/off override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loudness: Option<bool>,
    /// Bypass: the voicing (input gain, low cut, EQ, graphic EQ, tone, loudness) off; the
    /// crossover, trims, volume and limiter stay, so the speakers stay protected.
    pub bypass: bool,
}

impl State {
    /// The configuration to play: `preset` with the overrides applied.
    pub fn apply(&self, preset: &Config) -> Config {
        let mut c = preset.clone();
        if let Some(b) = self.bass_db {
            c.tone.bass_db = b;
        }
        if let Some(t) = self.treble_db {
            c.tone.treble_db = t;
        }
        if let Some(l) = self.loudness {
            c.loudness.enabled = l;
        }
        if self.bypass {
            c.input_gain_db = 0.0;
            c.low_cut_hz = 0.0;
            c.eq.clear();
            c.graphic_eq = GraphicEq::default();
            c.tone.bass_db = 0.0;
            c.tone.treble_db = 0.0;
            c.loudness.enabled = false;
        }
        c
    }

    /// The volume to ramp to: the saved one (or the preset's default), clamped to `max_db`.
    pub fn volume_for(&self, config: &Config) -> f64 {
        self.volume_db
            .unwrap_or(config.volume.default_db)
            .min(config.volume.max_db)
    }

    /// The volume the chain is asked for: [`State::volume_for`], or silence when muted.
    pub fn target_db(&self, config: &Config) -> f64 {
        if self.muted {
            klang_dsp::chain::MIN_VOLUME_DB
        } else {
            self.volume_for(config)
        }
    }

    /// `$XDG_STATE_HOME/klang/state.toml`, else `~/.local/state/klang/state.toml`.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state"))
            })?;
        Some(base.join("klang").join("state.toml"))
    }

    /// Reads the state file; a missing file is the default state.
    pub fn load(path: &Path) -> Result<State, StateError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| StateError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(StateError::Io {
                path: path.to_owned(),
                source: e,
            }),
        }
    }

    /// Writes the state atomically: a temporary file in the same directory, fsync, rename,
    /// fsync of the directory. A crash leaves the old file or the new one, never half.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = toml::to_string(self).expect("the state is plain data");
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
            std::process::id()
        ));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(b"# klang's saved state (written by klang run; edit with klang ctl)\n")?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            std::fs::File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }
}

/// The state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The state file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid state.
    #[error("{}: {message} (help: fix or delete the file; klang writes a new one)", path.display())]
    Parse {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_and_bypass() {
        let mut preset = Config::from_toml(
            "input_gain_db = 3.0\n[tone]\nbass_db = 4.0\n[crossover]\nfreq = 80\n[[eq]]\ntype = \"peak\"\nfreq = 100\ngain_db = 3\nq = 1\n",
        )
        .unwrap();
        preset.volume.max_db = -6.0;
        let s = State {
            treble_db: Some(-2.0),
            loudness: Some(true),
            ..State::default()
        };
        let c = s.apply(&preset);
        assert_eq!((c.tone.bass_db, c.tone.treble_db), (4.0, -2.0));
        assert!(c.loudness.enabled);
        let b = State { bypass: true, ..s }.apply(&preset);
        assert!(b.eq.is_empty() && b.input_gain_db == 0.0 && b.tone.bass_db == 0.0);
        assert!(b.crossover.is_some(), "bypass keeps the crossover");
        assert_eq!(b.volume.max_db, -6.0);
        let loud = State {
            volume_db: Some(0.0),
            ..State::default()
        };
        assert_eq!(loud.volume_for(&preset), -6.0);
        assert_eq!(
            State {
                muted: true,
                ..loud
            }
            .target_db(&preset),
            klang_dsp::chain::MIN_VOLUME_DB
        );
    }

    #[test]
    fn saves_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.toml");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let s = State {
            volume_db: Some(-12.5),
            preset: Some("sub80".into()),
            bass_db: Some(3.0),
            bypass: true,
            ..State::default()
        };
        s.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), s);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.toml")]);
        std::fs::write(&path, "volume = 3").unwrap();
        assert!(
            State::load(&path)
                .unwrap_err()
                .to_string()
                .contains("fix or delete")
        );
    }
}
