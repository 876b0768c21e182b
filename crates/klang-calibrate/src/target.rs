//! Target curves: what the corrected response should look like.

use crate::error::CalibrateError;
use crate::response::{interp_log, parse_points};

/// The response the correction aims at, in dB relative to its own level (the
/// fit aligns levels, so only the shape matters).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// 0 dB everywhere.
    Flat,
    /// A house curve: a bass rise and a treble tilt.
    House {
        /// Rise at the lowest frequencies, dB (half of it at `bass_corner_hz`).
        bass_db: f64,
        /// Where the rise is half done, Hz.
        bass_corner_hz: f64,
        /// Tilt in dB per octave, 0 dB at 1 kHz (negative: falling treble).
        tilt_db_per_octave: f64,
    },
    /// Points the user gives, interpolated linearly over log frequency and
    /// held flat beyond the ends.
    Points(Vec<(f64, f64)>),
}

impl Target {
    /// Reads user points in the microphone-calibration text format
    /// (`freq dB` lines, `*`/`#` comments).
    pub fn parse_points(text: &str) -> Result<Target, CalibrateError> {
        Ok(Target::Points(parse_points(text, "target curve")?))
    }

    /// Parses a command-line spec: `flat`, or `house[:BASS_DB[:CORNER_HZ[:TILT_DB_PER_OCTAVE]]]`
    /// (defaults 6 dB, 120 Hz, 0 dB/octave). Anything else is an error; the
    /// binary treats an existing file name as points for [`Target::parse_points`].
    pub fn from_spec(spec: &str) -> Result<Target, CalibrateError> {
        let bad = |reason: String| CalibrateError::Target { reason };
        let mut parts = spec.split(':');
        let target = match parts.next().unwrap_or("").to_ascii_lowercase().as_str() {
            "flat" if spec.eq_ignore_ascii_case("flat") => Target::Flat,
            "house" => {
                let mut num = |name: &str, default: f64| -> Result<f64, CalibrateError> {
                    match parts.next() {
                        None | Some("") => Ok(default),
                        Some(v) => v.trim().parse().map_err(|_| {
                            bad(format!(
                                "`{v}` is not a number for the house curve's {name}"
                            ))
                        }),
                    }
                };
                let t = Target::House {
                    bass_db: num("bass rise (dB)", 6.0)?,
                    bass_corner_hz: num("corner (Hz)", 120.0)?,
                    tilt_db_per_octave: num("tilt (dB/octave)", 0.0)?,
                };
                if parts.next().is_some() {
                    return Err(bad(format!(
                        "`{spec}` has too many fields; write house:BASS_DB:CORNER_HZ:TILT"
                    )));
                }
                t
            }
            _ => {
                return Err(bad(format!(
                    "`{spec}` is not `flat`, `house:BASS_DB:CORNER_HZ:TILT` or a file of `frequency dB` lines"
                )));
            }
        };
        target.validate()?;
        Ok(target)
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), CalibrateError> {
        let bad = |reason: String| Err(CalibrateError::Target { reason });
        match self {
            Target::Flat => Ok(()),
            Target::House {
                bass_db,
                bass_corner_hz,
                tilt_db_per_octave,
            } => {
                if !(-20.0..=20.0).contains(bass_db) {
                    return bad(format!("bass rise {bass_db} dB is not within ±20 dB"));
                }
                if !(10.0..=1000.0).contains(bass_corner_hz) {
                    return bad(format!(
                        "bass corner {bass_corner_hz} Hz is not within 10 to 1000 Hz"
                    ));
                }
                if !(-3.0..=3.0).contains(tilt_db_per_octave) {
                    return bad(format!(
                        "tilt {tilt_db_per_octave} dB/octave is not within ±3 dB/octave"
                    ));
                }
                Ok(())
            }
            Target::Points(p) => {
                if p.is_empty() {
                    return bad("no points".into());
                }
                if p.windows(2).any(|w| w[1].0 <= w[0].0)
                    || p.iter().any(|q| q.0.is_nan() || q.0 <= 0.0 || q.1.is_nan())
                {
                    return bad("point frequencies must be positive and ascending".into());
                }
                Ok(())
            }
        }
    }

    /// The target at `f` Hz, dB.
    pub fn db_at(&self, f: f64) -> f64 {
        match self {
            Target::Flat => 0.0,
            Target::House {
                bass_db,
                bass_corner_hz,
                tilt_db_per_octave,
            } => {
                bass_db / (1.0 + (f / bass_corner_hz).powi(2))
                    + tilt_db_per_octave * (f / 1000.0).log2()
            }
            Target::Points(p) => {
                let (xs, ys): (Vec<f64>, Vec<f64>) = p.iter().copied().unzip();
                interp_log(&xs, &ys, f)
            }
        }
    }
}
