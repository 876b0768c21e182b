//! The speaker configuration (issue 6's TOML): serde types with
//! `deny_unknown_fields`, and validation in one place ([`Config::validate`]).
//!
//! Every error is a [`ConfigError`] with the field path (`eq[0].freq`), the line
//! and column in the TOML text when there is one, and a hint how to fix it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// PulseAudio mbeq's 15 band centres, used by the graphic EQ.
pub const GRAPHIC_EQ_FREQS: [f64; 15] = [
    50.0, 100.0, 156.0, 220.0, 311.0, 440.0, 622.0, 880.0, 1250.0, 1750.0, 2500.0, 3500.0, 5000.0,
    10000.0, 20000.0,
];

/// Sample rates klang promises to support (others within
/// [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`] work but are not tested).
pub const SUPPORTED_SAMPLE_RATES: [u32; 5] = [44_100, 48_000, 88_200, 96_000, 192_000];
/// Lowest sample rate a chain can be built for.
pub const MIN_SAMPLE_RATE: u32 = 22_050;
/// Highest sample rate a chain can be built for.
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// Largest sub delay, so the delay line can be allocated up front.
pub const MAX_SUB_DELAY_MS: f64 = 50.0;

/// The whole speaker configuration. `Config::default()` is klang's default preset:
/// flat, no subwoofer, volume −20 dB (max 0 dB), limiter at −1 dBFS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Gain before everything else (the speaker's +6 dB input switch; an APO preamp).
    pub input_gain_db: f64,
    /// Corner of a 2nd-order Butterworth high pass on the input; 0 = off.
    pub low_cut_hz: f64,
    /// Bass and treble shelves (the remote's tone controls).
    pub tone: Tone,
    /// Parametric EQ bands, applied in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub eq: Vec<EqBand>,
    /// The 15-band graphic EQ.
    pub graphic_eq: GraphicEq,
    /// Subwoofer crossover; absent = no subwoofer output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crossover: Option<Crossover>,
    /// Per-output trim.
    pub trim_db: Trim,
    /// Loudness compensation (ISO 226:2003).
    pub loudness: Loudness,
    /// Volume control.
    pub volume: Volume,
    /// Output limiter.
    pub limiter: Limiter,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            input_gain_db: 0.0,
            low_cut_hz: 0.0,
            tone: Tone::default(),
            eq: Vec::new(),
            graphic_eq: GraphicEq::default(),
            crossover: None,
            trim_db: Trim::default(),
            loudness: Loudness::default(),
            volume: Volume::default(),
            limiter: Limiter::default(),
        }
    }
}

/// Tone controls: a low shelf and a high shelf (RBJ, slope 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tone {
    /// Bass shelf gain.
    pub bass_db: f64,
    /// Treble shelf gain.
    pub treble_db: f64,
    /// Bass shelf midpoint.
    pub bass_freq: f64,
    /// Treble shelf midpoint.
    pub treble_freq: f64,
}

impl Default for Tone {
    fn default() -> Self {
        Tone {
            bass_db: 0.0,
            treble_db: 0.0,
            bass_freq: 100.0,
            treble_freq: 8000.0,
        }
    }
}

/// The kind of a parametric band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterType {
    /// Peaking EQ (uses `gain_db`, `q`).
    Peak,
    /// Low shelf (uses `gain_db`, `q` or `slope`).
    Lowshelf,
    /// High shelf (uses `gain_db`, `q` or `slope`).
    Highshelf,
    /// 2nd-order low pass (`q`).
    Lowpass,
    /// 2nd-order high pass (`q`).
    Highpass,
    /// Band pass, 0 dB at `freq` (`q`).
    Bandpass,
    /// Notch (`q`).
    Notch,
    /// 2nd-order all pass (`q`).
    Allpass,
    /// 1st-order low pass.
    Lowpass1,
    /// 1st-order high pass.
    Highpass1,
    /// 1st-order low shelf (`gain_db`).
    Lowshelf1,
    /// 1st-order high shelf (`gain_db`).
    Highshelf1,
    /// 1st-order all pass.
    Allpass1,
}

impl FilterType {
    /// Whether `gain_db` means anything for this type.
    pub fn uses_gain(self) -> bool {
        matches!(
            self,
            FilterType::Peak
                | FilterType::Lowshelf
                | FilterType::Highshelf
                | FilterType::Lowshelf1
                | FilterType::Highshelf1
        )
    }
    /// Whether `slope` may replace `q`.
    pub fn is_shelf(self) -> bool {
        matches!(self, FilterType::Lowshelf | FilterType::Highshelf)
    }
}

/// One parametric EQ band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EqBand {
    /// Filter kind.
    #[serde(rename = "type")]
    pub kind: FilterType,
    /// Centre / corner frequency in Hz.
    pub freq: f64,
    /// Gain for peaks and shelves.
    #[serde(default)]
    pub gain_db: f64,
    /// Quality factor (default 1/√2).
    #[serde(default = "default_q")]
    pub q: f64,
    /// Shelf slope `S` of the cookbook; when given it replaces `q`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope: Option<f64>,
}

fn default_q() -> f64 {
    std::f64::consts::FRAC_1_SQRT_2
}

/// The 15-band graphic EQ at [`GRAPHIC_EQ_FREQS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GraphicEq {
    /// Gain at each band centre, −12..=12 dB.
    pub gains_db: [f64; 15],
}

/// Crossover slope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slope {
    /// Linkwitz-Riley 12 dB/octave (the sub is inverted so the sum is all-pass).
    LR2,
    /// Linkwitz-Riley 24 dB/octave.
    LR4,
    /// Linkwitz-Riley 48 dB/octave.
    LR8,
    /// Butterworth 12 dB/octave.
    BW2,
    /// Butterworth 24 dB/octave.
    BW4,
}

/// Subwoofer crossover: mains high pass, mono-summed sub low pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Crossover {
    /// Crossover frequency.
    pub freq: f64,
    /// Filter family and order.
    pub slope: Slope,
    /// Sub level relative to the mains.
    pub sub_gain_db: f64,
    /// Sub delay for time alignment, 0..=50 ms.
    pub sub_delay_ms: f64,
}

impl Default for Crossover {
    fn default() -> Self {
        Crossover {
            freq: 80.0,
            slope: Slope::LR4,
            sub_gain_db: 0.0,
            sub_delay_ms: 0.0,
        }
    }
}

/// Per-output trim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Trim {
    /// Left main.
    #[serde(rename = "L")]
    pub l: f64,
    /// Right main.
    #[serde(rename = "R")]
    pub r: f64,
    /// Subwoofer.
    #[serde(rename = "SUB")]
    pub sub: f64,
}

/// Loudness compensation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Loudness {
    /// Off by default.
    pub enabled: bool,
    /// Volume setting at which the music is heard at `reference_phon`; no
    /// compensation at or above it.
    pub reference_db: f64,
    /// Loudness level in phon at the reference volume (ISO 226 contour used as
    /// the flat reference).
    pub reference_phon: f64,
}

impl Default for Loudness {
    fn default() -> Self {
        Loudness {
            enabled: false,
            reference_db: -20.0,
            reference_phon: 80.0,
        }
    }
}

/// Volume control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Volume {
    /// Volume at start.
    pub default_db: f64,
    /// Hard maximum: no request goes above it.
    pub max_db: f64,
    /// Time a change takes (linear in dB).
    pub ramp_ms: f64,
}

impl Default for Volume {
    fn default() -> Self {
        Volume {
            default_db: -20.0,
            max_db: 0.0,
            ramp_ms: 200.0,
        }
    }
}

/// Output limiter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limiter {
    /// Peak ceiling in dBFS; output samples never exceed it.
    pub ceiling_db: f64,
    /// Time constant of the gain's recovery.
    pub release_ms: f64,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            ceiling_db: -1.0,
            release_ms: 50.0,
        }
    }
}

/// A configuration problem: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    /// 1-based line in the TOML text, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// Field path such as `eq[0].freq` (empty for syntax errors).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}")?;
            if let Some(col) = self.column {
                write!(f, ", column {col}")?;
            }
            write!(f, ": ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if !self.help.is_empty() {
            write!(f, " (help: {})", self.help)?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn new(path: &Path, message: impl Into<String>, help: impl Into<String>) -> Self {
        ConfigError {
            line: None,
            column: None,
            field: path.to_string(),
            message: message.into(),
            help: help.into(),
        }
    }

    /// Fills in line and column by finding the field in the TOML text it came
    /// from (for errors found after parsing, e.g. by `validate_for_rate`). If the
    /// field is absent from the text (a default), its nearest present parent is used.
    #[must_use]
    pub fn locate(mut self, toml_text: &str) -> Self {
        if self.line.is_some() {
            return self;
        }
        if let Some(offset) = span_of_field(toml_text, &self.field) {
            let (l, c) = line_col(toml_text, offset);
            self.line = Some(l);
            self.column = Some(c);
        }
        self
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// Byte offset where `field` (`a.b[2].c`) is written, or its deepest written parent.
fn span_of_field(text: &str, field: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = doc.get_ref();
    let mut best: Option<usize> = None;
    let segments: Vec<&str> = field.split('.').filter(|s| !s.is_empty()).collect();
    for (i, seg) in segments.iter().enumerate() {
        let (key, index) = match seg.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*seg, None),
        };
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == key)?;
        best = Some(k.span().start);
        let mut value = v.get_ref();
        if let Some(idx) = index {
            match value {
                DeValue::Array(items) => match items.get(idx) {
                    Some(item) => {
                        // Arrays of tables: point at the item, not the first header.
                        best = Some(item.span().start);
                        value = item.get_ref();
                    }
                    None => return best,
                },
                _ => return best,
            }
        }
        if i + 1 < segments.len() {
            match value {
                DeValue::Table(t) => table = t,
                _ => return best,
            }
        }
    }
    best
}

/// The path of the deepest key or value written at byte `offset` (for serde
/// errors, which carry a span but no field path).
fn field_at(text: &str, offset: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    fn walk(table: &DeTable<'_>, offset: usize, path: &str, best: &mut Option<(usize, String)>) {
        for (k, v) in table.iter() {
            let p = if path.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{path}.{}", k.get_ref())
            };
            let depth = p.len();
            let hit = |r: std::ops::Range<usize>| r.contains(&offset) || r.start == offset;
            if (hit(k.span()) || hit(v.span())) && best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                *best = Some((depth, p.clone()));
            }
            match v.get_ref() {
                DeValue::Table(t) => walk(t, offset, &p, best),
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let ip = format!("{p}[{i}]");
                        if hit(item.span()) && best.as_ref().is_none_or(|(d, _)| ip.len() >= *d) {
                            *best = Some((ip.len(), ip.clone()));
                        }
                        if let DeValue::Table(t) = item.get_ref() {
                            walk(t, offset, &ip, best);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let doc = DeTable::parse(text).ok()?;
    let mut best = None;
    walk(doc.get_ref(), offset, "", &mut best);
    best.map(|(_, p)| p)
}

/// A field path built while validating.
#[derive(Debug, Clone, Default)]
struct Path(String);

impl Path {
    fn key(&self, k: &str) -> Path {
        if self.0.is_empty() {
            Path(k.to_string())
        } else {
            Path(format!("{}.{k}", self.0))
        }
    }
    fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks `v` is finite and within `lo..=hi`.
fn range(path: &Path, v: f64, lo: f64, hi: f64, unit: &str) -> Result<(), ConfigError> {
    if !v.is_finite() {
        return Err(ConfigError::new(
            path,
            format!("{v} is not a finite number"),
            format!("use a number between {lo} and {hi} {unit}"),
        ));
    }
    if v < lo || v > hi {
        return Err(ConfigError::new(
            path,
            format!("{v} {unit} is out of range"),
            format!("use a value between {lo} and {hi} {unit}"),
        ));
    }
    Ok(())
}

/// Checks a frequency: finite, positive, below Nyquist (when the rate is known;
/// otherwise below the Nyquist frequency of the highest supported rate).
fn frequency(path: &Path, f: f64, rate: Option<u32>) -> Result<(), ConfigError> {
    let nyquist =
        f64::from(rate.unwrap_or(*SUPPORTED_SAMPLE_RATES.last().unwrap_or(&192_000))) / 2.0;
    if !f.is_finite() {
        return Err(ConfigError::new(
            path,
            format!("{f} is not a finite number"),
            "use a frequency in Hz, e.g. 1000",
        ));
    }
    if f < 1.0 {
        return Err(ConfigError::new(
            path,
            format!("{f} Hz is too low"),
            "use a frequency of at least 1 Hz",
        ));
    }
    if f >= nyquist {
        let at = match rate {
            Some(r) => format!("at the sample rate of {r} Hz"),
            None => "at any supported sample rate".to_string(),
        };
        return Err(ConfigError::new(
            path,
            format!("{f} Hz is at or above the Nyquist frequency ({nyquist} Hz) {at}"),
            format!("use a frequency below {nyquist} Hz"),
        ));
    }
    Ok(())
}

/// Largest |gain| of a parametric band, tone control or shelf.
pub const MAX_EQ_GAIN_DB: f64 = 30.0;
/// Largest |gain| of a graphic EQ band.
pub const MAX_GRAPHIC_GAIN_DB: f64 = 12.0;
/// Largest Q.
pub const MAX_Q: f64 = 100.0;

impl Config {
    /// Parses and validates TOML text (rate-independent checks).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            let message = e.message().trim().to_string();
            let help = if message.contains("unknown field") {
                "remove or correct the key; the message lists the accepted names"
            } else if message.contains("unknown variant") {
                "use one of the names the message lists"
            } else if message.contains("invalid type") {
                "check the value's type (numbers without quotes, names in quotes)"
            } else if message.contains("invalid length") && message.contains("15") {
                "give exactly 15 gains in dB, one per band: 50, 100, 156, 220, 311, 440, 622, 880, 1250, 1750, 2500, 3500, 5000, 10000, 20000 Hz"
            } else if message.contains("missing field") {
                "add the missing field; every [[eq]] band needs `type` and `freq`"
            } else {
                "see the example configuration in the README"
            };
            let field = e
                .span()
                .and_then(|sp| field_at(text, sp.start))
                .unwrap_or_default();
            ConfigError {
                line,
                column,
                field,
                message,
                help: help.to_string(),
            }
        })?;
        config.validate(None).map_err(|e| e.locate(text))?;
        Ok(config)
    }

    /// Checks that depend on the sample rate (frequencies below Nyquist, ...),
    /// plus everything [`Config::validate`] checks.
    pub fn validate_for_rate(&self, sample_rate: u32) -> Result<(), ConfigError> {
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(ConfigError {
                line: None,
                column: None,
                field: String::new(),
                message: format!("sample rate {sample_rate} Hz is not supported"),
                help: format!(
                    "use a rate between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz (tested: 44100, 48000, 88200, 96000, 192000)"
                ),
            });
        }
        self.validate(Some(sample_rate))
    }

    /// The one place where every value is checked. `rate`: the sample rate if
    /// known. Returns the first problem found, in document order.
    pub fn validate(&self, rate: Option<u32>) -> Result<(), ConfigError> {
        let root = Path::default();
        range(
            &root.key("input_gain_db"),
            self.input_gain_db,
            -60.0,
            24.0,
            "dB",
        )?;
        if self.low_cut_hz != 0.0 {
            frequency(&root.key("low_cut_hz"), self.low_cut_hz, rate)?;
        }
        let t = root.key("tone");
        range(
            &t.key("bass_db"),
            self.tone.bass_db,
            -MAX_EQ_GAIN_DB,
            MAX_EQ_GAIN_DB,
            "dB",
        )?;
        range(
            &t.key("treble_db"),
            self.tone.treble_db,
            -MAX_EQ_GAIN_DB,
            MAX_EQ_GAIN_DB,
            "dB",
        )?;
        frequency(&t.key("bass_freq"), self.tone.bass_freq, rate)?;
        frequency(&t.key("treble_freq"), self.tone.treble_freq, rate)?;
        for (i, band) in self.eq.iter().enumerate() {
            let p = root.key("eq").index(i);
            frequency(&p.key("freq"), band.freq, rate)?;
            range(
                &p.key("gain_db"),
                band.gain_db,
                -MAX_EQ_GAIN_DB,
                MAX_EQ_GAIN_DB,
                "dB",
            )?;
            if !band.kind.uses_gain() && band.gain_db != 0.0 {
                return Err(ConfigError::new(
                    &p.key("gain_db"),
                    format!("gain_db has no effect on a {:?} filter", band.kind).to_lowercase(),
                    "remove gain_db, or use type = \"peak\", \"lowshelf\" or \"highshelf\" for a boost or cut",
                ));
            }
            if !band.q.is_finite() || band.q <= 0.0 || band.q > MAX_Q {
                return Err(ConfigError::new(
                    &p.key("q"),
                    format!("Q {} is invalid", band.q),
                    format!("use a Q above 0 and at most {MAX_Q}; 0.71 is a gentle, common choice"),
                ));
            }
            if let Some(s) = band.slope {
                if !band.kind.is_shelf() {
                    return Err(ConfigError::new(
                        &p.key("slope"),
                        "slope only applies to lowshelf and highshelf",
                        "remove `slope` or use `q`",
                    ));
                }
                if !s.is_finite() || !crate::biquad::shelf_slope_valid(s, band.gain_db) {
                    return Err(ConfigError::new(
                        &p.key("slope"),
                        format!(
                            "shelf slope {s} is invalid for a gain of {} dB",
                            band.gain_db
                        ),
                        "use a smaller slope above 0 (1 is the steepest without overshoot)",
                    ));
                }
            }
        }
        let g = root.key("graphic_eq").key("gains_db");
        for (i, &gain) in self.graphic_eq.gains_db.iter().enumerate() {
            range(
                &g.index(i),
                gain,
                -MAX_GRAPHIC_GAIN_DB,
                MAX_GRAPHIC_GAIN_DB,
                "dB",
            )?;
        }
        if let Some(x) = &self.crossover {
            let p = root.key("crossover");
            frequency(&p.key("freq"), x.freq, rate)?;
            range(&p.key("freq"), x.freq, 20.0, 1000.0, "Hz")?;
            range(&p.key("sub_gain_db"), x.sub_gain_db, -24.0, 24.0, "dB")?;
            range(
                &p.key("sub_delay_ms"),
                x.sub_delay_ms,
                0.0,
                MAX_SUB_DELAY_MS,
                "ms",
            )?;
        }
        let p = root.key("trim_db");
        range(&p.key("L"), self.trim_db.l, -24.0, 24.0, "dB")?;
        range(&p.key("R"), self.trim_db.r, -24.0, 24.0, "dB")?;
        range(&p.key("SUB"), self.trim_db.sub, -24.0, 24.0, "dB")?;
        let p = root.key("loudness");
        range(
            &p.key("reference_db"),
            self.loudness.reference_db,
            -80.0,
            0.0,
            "dB",
        )?;
        range(
            &p.key("reference_phon"),
            self.loudness.reference_phon,
            40.0,
            90.0,
            "phon",
        )?;
        let p = root.key("volume");
        range(&p.key("max_db"), self.volume.max_db, -80.0, 12.0, "dB")?;
        range(
            &p.key("default_db"),
            self.volume.default_db,
            -150.0,
            self.volume.max_db,
            "dB",
        )?;
        range(&p.key("ramp_ms"), self.volume.ramp_ms, 0.0, 10_000.0, "ms")?;
        let p = root.key("limiter");
        range(
            &p.key("ceiling_db"),
            self.limiter.ceiling_db,
            -40.0,
            0.0,
            "dBFS",
        )?;
        range(
            &p.key("release_ms"),
            self.limiter.release_ms,
            1.0,
            5000.0,
            "ms",
        )?;
        Ok(())
    }

    /// The configuration as TOML text (round-trips through [`Config::from_toml`]).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"))
    }
}
