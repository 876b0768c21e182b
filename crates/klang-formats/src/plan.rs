//! The neutral form every exporter writes from: klang's [`Config`] flattened
//! into plain second-order (or first-order) sections with analog-style
//! parameters (type, Fc, gain, Q) as the RBJ cookbook defines them, per path.
//!
//! All of klang's linear processing becomes sections: the low cut (Butterworth
//! high pass, Q 1/√2), the parametric bands (shelf slopes turned into the
//! equivalent Q), the graphic EQ (the peaking sections klang actually runs,
//! with the gains its solver found at the export's sample rate), the tone
//! shelves (slope 1 = Q 1/√2) and the crossover (its Butterworth/Linkwitz-Riley
//! cascades). What is not linear and time-invariant — loudness (it follows the
//! volume), the volume control and the limiter — cannot be exported and is
//! listed in [`Plan::not_carried`].

use klang_dsp::biquad::{BiquadCoefficients, db_to_gain};
use klang_dsp::config::{Config, EqBand, FilterType, GRAPHIC_EQ_FREQS, Slope};
use klang_dsp::graphic;

const BUTTERWORTH_Q: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// One section with cookbook parameters; `gain_db` is 0 for types without gain.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Filter kind (klang's names; `slope` is never used here, shelves carry Q).
    pub kind: FilterType,
    /// Centre / corner frequency in Hz.
    pub freq: f64,
    /// Gain in dB for peaks and shelves.
    pub gain_db: f64,
    /// Quality factor (ignored by first-order types).
    pub q: f64,
    /// Where it came from, for comments and error messages (`eq[2]`, `graphic_eq[4]`).
    pub origin: String,
}

impl Section {
    /// The same section as a klang band (for imports and round trips).
    pub fn to_band(&self) -> EqBand {
        EqBand {
            kind: self.kind,
            freq: self.freq,
            gain_db: if self.kind.uses_gain() {
                self.gain_db
            } else {
                0.0
            },
            q: self.q,
            slope: None,
        }
    }
}

/// The sub path: mono sum `(L + R) / 2`, low pass, gain, delay.
#[derive(Debug, Clone, PartialEq)]
pub struct SubPlan {
    /// The crossover's low-pass sections.
    pub lowpass: Vec<Section>,
    /// Sub level plus sub trim, in dB.
    pub gain_db: f64,
    /// LR2 subs are inverted so the sum with the mains is all-pass.
    pub inverted: bool,
    /// Time alignment delay.
    pub delay_ms: f64,
}

/// klang's linear processing as sections per path.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Input gain (APO's preamp).
    pub preamp_db: f64,
    /// Sections both channels run before the crossover.
    pub shared: Vec<Section>,
    /// The crossover's high pass on the mains (empty without a sub).
    pub mains_highpass: Vec<Section>,
    /// Left and right trim.
    pub trim_db: [f64; 2],
    /// The subwoofer path, if there is a crossover.
    pub sub: Option<SubPlan>,
    /// Settings of the config that no export carries (non-default ones only).
    pub not_carried: Vec<String>,
}

/// Q of a cookbook shelf with slope `s` and gain `gain_db` (the two are the same filter).
pub fn shelf_slope_to_q(slope: f64, gain_db: f64) -> f64 {
    let a = 10f64.powf(gain_db / 40.0);
    1.0 / ((a + 1.0 / a) * (1.0 / slope - 1.0) + 2.0).sqrt()
}

fn butterworth_qs(order: usize) -> Vec<f64> {
    (0..order / 2)
        .map(|k| {
            let theta = std::f64::consts::PI * (2 * k + 1) as f64 / (2 * order) as f64;
            1.0 / (2.0 * theta.sin())
        })
        .collect()
}

fn crossover_sections(slope: Slope, freq: f64, low: bool) -> Vec<Section> {
    let (order, squared) = match slope {
        Slope::LR2 => (1, true),
        Slope::LR4 => (2, true),
        Slope::LR8 => (4, true),
        Slope::BW2 => (2, false),
        Slope::BW4 => (4, false),
    };
    let mut one = Vec::new();
    let name = if low {
        "crossover (sub)"
    } else {
        "crossover (mains)"
    };
    for q in butterworth_qs(order) {
        one.push(Section {
            kind: if low {
                FilterType::Lowpass
            } else {
                FilterType::Highpass
            },
            freq,
            gain_db: 0.0,
            q,
            origin: name.to_string(),
        });
    }
    if order % 2 == 1 {
        one.push(Section {
            kind: if low {
                FilterType::Lowpass1
            } else {
                FilterType::Highpass1
            },
            freq,
            gain_db: 0.0,
            q: BUTTERWORTH_Q,
            origin: name.to_string(),
        });
    }
    if squared {
        let again = one.clone();
        one.extend(again);
    }
    one
}

/// The gains klang's graphic EQ solver chose at `fs`, per band (0 for bands it left out).
pub fn graphic_gains(gains_db: &[f64; 15], fs: f64) -> [f64; 15] {
    let mut out = [0.0; 15];
    for c in graphic::design(gains_db, fs) {
        // A cookbook peak has exactly its gain at its centre; find which band it is.
        for (i, &f) in GRAPHIC_EQ_FREQS.iter().enumerate() {
            let g = c.magnitude_db(fs, f);
            let candidate = BiquadCoefficients::peak(fs, f, graphic::band_q(i, fs), g);
            if coeffs_close(&candidate, &c) {
                out[i] = g;
                break;
            }
        }
    }
    out
}

fn coeffs_close(a: &BiquadCoefficients, b: &BiquadCoefficients) -> bool {
    [
        (a.b0, b.b0),
        (a.b1, b.b1),
        (a.b2, b.b2),
        (a.a1, b.a1),
        (a.a2, b.a2),
    ]
    .iter()
    .all(|(x, y)| (x - y).abs() < 1e-9)
}

impl Plan {
    /// For formats that carry one stereo chain (Equalizer APO, EasyEffects): refuses a
    /// subwoofer output and unequal trims, and returns the common trim, which the caller
    /// puts where `trim_goes` says (its preamp or output gain).
    pub(crate) fn single_chain(
        &self,
        format: &'static str,
        trim_goes: &str,
    ) -> Result<f64, crate::error::FormatError> {
        if self.sub.is_some() {
            return Err(crate::error::cannot(
                format,
                "the crossover (a subwoofer output)",
                "remove [crossover] for the export, or export to PipeWire or CamillaDSP",
            ));
        }
        if self.trim_db[0] != self.trim_db[1] {
            return Err(crate::error::cannot(
                format,
                "different left and right trims (trim_db.L / trim_db.R)",
                format!("set both trims equal; equal trims go into {trim_goes}"),
            ));
        }
        Ok(self.trim_db[0])
    }

    /// Flattens `config` for a consumer running at `sample_rate` (only the
    /// graphic EQ depends on it: its Q and solved gains are rate-specific).
    pub fn new(config: &Config, sample_rate: u32) -> Plan {
        let fs = f64::from(sample_rate);
        let mut shared = Vec::new();
        if config.low_cut_hz > 0.0 {
            shared.push(Section {
                kind: FilterType::Highpass,
                freq: config.low_cut_hz,
                gain_db: 0.0,
                q: BUTTERWORTH_Q,
                origin: "low_cut_hz".into(),
            });
        }
        for (i, b) in config.eq.iter().enumerate() {
            let q = match (b.kind.is_shelf(), b.slope) {
                (true, Some(s)) => shelf_slope_to_q(s, b.gain_db),
                _ => b.q,
            };
            shared.push(Section {
                kind: b.kind,
                freq: b.freq,
                gain_db: if b.kind.uses_gain() { b.gain_db } else { 0.0 },
                q,
                origin: format!("eq[{i}]"),
            });
        }
        let gains = graphic_gains(&config.graphic_eq.gains_db, fs);
        for (i, &g) in gains.iter().enumerate() {
            if g.abs() > 1e-9 {
                shared.push(Section {
                    kind: FilterType::Peak,
                    freq: GRAPHIC_EQ_FREQS[i],
                    gain_db: g,
                    q: graphic::band_q(i, fs),
                    origin: format!("graphic_eq[{i}]"),
                });
            }
        }
        let t = &config.tone;
        if t.bass_db != 0.0 {
            shared.push(Section {
                kind: FilterType::Lowshelf,
                freq: t.bass_freq,
                gain_db: t.bass_db,
                q: BUTTERWORTH_Q,
                origin: "tone.bass_db".into(),
            });
        }
        if t.treble_db != 0.0 {
            shared.push(Section {
                kind: FilterType::Highshelf,
                freq: t.treble_freq,
                gain_db: t.treble_db,
                q: BUTTERWORTH_Q,
                origin: "tone.treble_db".into(),
            });
        }
        let (mains_highpass, sub) = match &config.crossover {
            Some(x) => (
                crossover_sections(x.slope, x.freq, false),
                Some(SubPlan {
                    lowpass: crossover_sections(x.slope, x.freq, true),
                    gain_db: x.sub_gain_db + config.trim_db.sub,
                    inverted: x.slope == Slope::LR2,
                    delay_ms: x.sub_delay_ms,
                }),
            ),
            None => (Vec::new(), None),
        };
        let mut not_carried = Vec::new();
        if config.loudness.enabled {
            not_carried.push("loudness (it follows the volume; set it in klang)".into());
        }
        let d = Config::default();
        if config.volume != d.volume {
            not_carried.push("volume (a runtime control of klang)".into());
        }
        if config.limiter != d.limiter {
            not_carried.push("limiter".into());
        }
        Plan {
            preamp_db: config.input_gain_db,
            shared,
            mains_highpass,
            trim_db: [config.trim_db.l, config.trim_db.r],
            sub,
            not_carried,
        }
    }

    /// Magnitude in dB of the left main and (if any) the sub at `f`, for a
    /// signal equal in both channels — what klang's `chain_response` gives at
    /// 0 dB volume without loudness. Used to check exports.
    pub fn response_db(&self, fs: f64, f: f64) -> (f64, Option<f64>) {
        let run = |s: &[Section]| -> f64 { s.iter().map(|x| section_db(x, fs, f)).sum() };
        let shared = self.preamp_db + run(&self.shared);
        let main = shared + run(&self.mains_highpass) + self.trim_db[0];
        let sub = self
            .sub
            .as_ref()
            .map(|s| shared + run(&s.lowpass) + s.gain_db);
        (main, sub)
    }
}

/// The coefficients of a section at `fs`.
pub fn section_coefficients(s: &Section, fs: f64) -> BiquadCoefficients {
    klang_dsp::chain::band_coefficients(&s.to_band(), fs)
}

fn section_db(s: &Section, fs: f64, f: f64) -> f64 {
    section_coefficients(s, fs).magnitude_db(fs, f)
}

/// Linear gain of `db` (re-exported for the exporters).
pub(crate) fn lin(db: f64) -> f64 {
    db_to_gain(db)
}

/// A number as exporters print it: at most 6 decimals, no trailing zeros, but
/// always with a decimal point so every consumer reads a float.
pub fn num(x: f64) -> String {
    let x = if x == 0.0 { 0.0 } else { x };
    let mut s = format!("{x:.6}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.push('0');
    }
    if s == "-0.0" { "0.0".into() } else { s }
}
