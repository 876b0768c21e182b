//! EasyEffects equalizer presets (JSON): the `output.equalizer#0` object of an
//! EasyEffects preset file, with `num-bands`, `input-gain`/`output-gain` and
//! `left`/`right` maps of `band0..N` (`type`, `mode`, `frequency`, `gain`, `q`,
//! `slope`, `solo`, `mute`, `width`).
//!
//! Export writes every band in mode `APO (DR)`, the mode in which EasyEffects'
//! (LSP's) equalizer uses the same RBJ cookbook designs as Equalizer APO and
//! klang, so the response is the same. At most 32 bands; no crossover; trims
//! must be equal (they go into `output-gain`); no first-order low/high/all pass.
//!
//! Import accepts `output` or `input` presets and `equalizer#0` or the older
//! `equalizer` key. Fields EasyEffects added over the years that do not change
//! the response (`balance`, `pitch-*`, `width`, …) are accepted and ignored, so
//! presets from every EasyEffects version load. Bands in the other modes
//! (`RLC`, `BWC`, `LRX`) are imported with the cookbook design too, which is
//! close to but not exactly what LSP computes; slopes other than `x1`,
//! `Resonance` and ladder types, and channels that differ are errors.

use std::collections::BTreeMap;

use klang_dsp::config::{Config, EqBand, FilterType};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{FormatError, cannot, parse_err};
use crate::plan::Plan;

const FORMAT: &str = "EasyEffects";
/// The most bands EasyEffects' equalizer has.
pub const MAX_BANDS: usize = 32;

fn type_name(kind: FilterType, origin: &str) -> Result<&'static str, FormatError> {
    Ok(match kind {
        FilterType::Peak => "Bell",
        FilterType::Lowshelf => "Lo-shelf",
        FilterType::Highshelf => "Hi-shelf",
        FilterType::Lowpass => "Lo-pass",
        FilterType::Highpass => "Hi-pass",
        FilterType::Notch => "Notch",
        FilterType::Bandpass => "Bandpass",
        FilterType::Allpass => "Allpass",
        other => {
            return Err(cannot(
                FORMAT,
                format!("the first-order {other:?} filter {origin}"),
                "use a second-order type",
            ));
        }
    })
}

/// Rounds to 6 decimals so the JSON stays readable (well inside 0.01 dB).
fn r6(x: f64) -> f64 {
    let v = (x * 1e6).round() / 1e6;
    if v == 0.0 { 0.0 } else { v }
}

/// The preset file (pretty JSON) for a consumer at `sample_rate`.
pub fn export(config: &Config, sample_rate: u32) -> Result<String, FormatError> {
    let plan = Plan::new(config, sample_rate);
    let trim = plan.single_chain(FORMAT, "output-gain")?;
    if plan.shared.len() > MAX_BANDS {
        return Err(cannot(
            FORMAT,
            format!(
                "{} filters (the graphic EQ counts one per non-zero band)",
                plan.shared.len()
            ),
            "EasyEffects has at most 32 bands: use fewer eq bands or graphic EQ sliders",
        ));
    }
    let mut bands = serde_json::Map::new();
    for (i, s) in plan.shared.iter().enumerate() {
        bands.insert(
            format!("band{i}"),
            json!({
                "type": type_name(s.kind, &s.origin)?,
                "mode": "APO (DR)",
                "frequency": r6(s.freq),
                "gain": r6(if s.kind.uses_gain() { s.gain_db } else { 0.0 }),
                "q": r6(s.q),
                "slope": "x1",
                "solo": false,
                "mute": false,
                "width": 4.0,
            }),
        );
    }
    let eq = json!({
        "balance": 0.0,
        "bypass": false,
        "input-gain": r6(plan.preamp_db),
        "output-gain": r6(trim),
        "left": Value::Object(bands.clone()),
        "right": Value::Object(bands),
        "mode": "IIR",
        "num-bands": plan.shared.len(),
        "pitch-left": 0.0,
        "pitch-right": 0.0,
        "split-channels": false,
    });
    let doc = json!({
        "output": {
            "blocklist": [],
            "equalizer#0": eq,
            "plugins_order": ["equalizer#0"],
        }
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    Ok(text)
}

#[derive(Debug, Deserialize)]
struct Root {
    #[serde(alias = "input")]
    output: Pipeline,
}

#[derive(Debug, Deserialize)]
struct Pipeline {
    #[serde(rename = "equalizer#0", alias = "equalizer")]
    equalizer: Equalizer,
}

#[derive(Debug, Deserialize)]
struct Equalizer {
    #[serde(rename = "input-gain", default)]
    input_gain: f64,
    #[serde(rename = "output-gain", default)]
    output_gain: f64,
    #[serde(rename = "num-bands")]
    num_bands: usize,
    #[serde(rename = "split-channels", default)]
    split_channels: bool,
    #[serde(default)]
    bypass: bool,
    left: BTreeMap<String, Band>,
    right: BTreeMap<String, Band>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Band {
    #[serde(rename = "type")]
    kind: BandType,
    #[serde(default)]
    mode: Option<String>,
    frequency: f64,
    #[serde(default)]
    gain: f64,
    #[serde(default = "default_q")]
    q: f64,
    #[serde(default = "default_slope")]
    slope: String,
    #[serde(default)]
    solo: bool,
    #[serde(default)]
    mute: bool,
}

fn default_q() -> f64 {
    std::f64::consts::FRAC_1_SQRT_2
}

fn default_slope() -> String {
    "x1".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
enum BandType {
    Off,
    Bell,
    #[serde(rename = "Hi-pass")]
    HiPass,
    #[serde(rename = "Hi-shelf")]
    HiShelf,
    #[serde(rename = "Lo-pass")]
    LoPass,
    #[serde(rename = "Lo-shelf")]
    LoShelf,
    Notch,
    Resonance,
    Allpass,
    Bandpass,
    #[serde(rename = "Ladder-pass")]
    LadderPass,
    #[serde(rename = "Ladder-rej")]
    LadderRej,
}

/// 1-based line of the first `"key"` after byte `from`.
fn line_of(text: &str, key: &str, from: usize) -> usize {
    let needle = format!("\"{key}\"");
    let at = text[from.min(text.len())..]
        .find(&needle)
        .map_or(0, |p| p + from);
    text[..at].matches('\n').count() + 1
}

/// Imports an EasyEffects preset's equalizer into a klang [`Config`] (default
/// settings plus the bands as `eq`, input + output gain as `input_gain_db`).
pub fn import(text: &str) -> Result<Config, FormatError> {
    let root: Root = serde_json::from_str(text).map_err(|e| {
        parse_err(
            e.line().max(1),
            format!("column {}: {e}", e.column()),
            "an EasyEffects preset has output.\"equalizer#0\" with num-bands, left and right",
        )
    })?;
    let eq = root.output.equalizer;
    let left_at = text.find("\"left\"").unwrap_or(0);
    let mut config = Config {
        input_gain_db: eq.input_gain + eq.output_gain,
        ..Config::default()
    };
    if eq.bypass {
        return Ok(config);
    }
    let bands_of = |m: &BTreeMap<String, Band>| -> Vec<(usize, Band)> {
        (0..eq.num_bands)
            .filter_map(|i| m.get(&format!("band{i}")).map(|b| (i, b.clone())))
            .collect()
    };
    let left = bands_of(&eq.left);
    if left.len() != eq.num_bands {
        return Err(parse_err(
            line_of(text, "num-bands", 0),
            format!(
                "num-bands is {} but left has {} of band0..band{}",
                eq.num_bands,
                left.len(),
                eq.num_bands.saturating_sub(1)
            ),
            "make num-bands match the bands present",
        ));
    }
    if eq.split_channels && bands_of(&eq.right) != left {
        return Err(parse_err(
            line_of(text, "split-channels", 0),
            "the left and right channels have different bands",
            "klang applies one set of filters to both channels: set split-channels to false",
        ));
    }
    let any_solo = left.iter().any(|(_, b)| b.solo);
    let mut band_lines = Vec::new();
    for (i, b) in &left {
        let line = line_of(text, &format!("band{i}"), left_at);
        if b.mute || (any_solo && !b.solo) || b.kind == BandType::Off {
            continue;
        }
        if b.slope != "x1" {
            return Err(parse_err(
                line,
                format!("band{i} has slope `{}`", b.slope),
                "klang imports single sections only: use slope x1 (add bands for steeper slopes)",
            ));
        }
        let kind = match b.kind {
            BandType::Bell => FilterType::Peak,
            BandType::HiPass => FilterType::Highpass,
            BandType::HiShelf => FilterType::Highshelf,
            BandType::LoPass => FilterType::Lowpass,
            BandType::LoShelf => FilterType::Lowshelf,
            BandType::Notch => FilterType::Notch,
            BandType::Allpass => FilterType::Allpass,
            BandType::Bandpass => FilterType::Bandpass,
            BandType::Off => continue,
            other => {
                return Err(parse_err(
                    line,
                    format!("band{i} has type {other:?}, which klang has no filter for"),
                    "use Bell, Lo-shelf, Hi-shelf, Lo-pass, Hi-pass, Notch, Bandpass or Allpass",
                ));
            }
        };
        let _ = &b.mode;
        config.eq.push(EqBand {
            kind,
            freq: b.frequency,
            gain_db: if kind.uses_gain() { b.gain } else { 0.0 },
            q: b.q,
            slope: None,
        });
        band_lines.push(line);
    }
    if let Err(source) = config.validate(None) {
        let line = source
            .field
            .strip_prefix("eq[")
            .and_then(|r| r.split(']').next())
            .and_then(|k| k.parse::<usize>().ok())
            .and_then(|k| band_lines.get(k).copied())
            .unwrap_or_else(|| line_of(text, "input-gain", 0));
        return Err(FormatError::Invalid { line, source });
    }
    Ok(config)
}
