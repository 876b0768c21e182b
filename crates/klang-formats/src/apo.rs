//! Equalizer APO / AutoEq: parametric export (`Preamp:` and `Filter N: ON PK …`
//! lines, read back by [`klang_dsp::apo::parse`]) and `GraphicEQ:` import and export.
//!
//! APO applies one chain to both channels here, so a crossover (an extra
//! output) and different left/right trims cannot be carried; equal trims are
//! folded into the preamp. First-order low/high/all passes have no APO type.
//!
//! # `GraphicEQ:` import
//! A `GraphicEQ:` curve (frequency/gain pairs, which APO interpolates linearly
//! in dB over log frequency) is mapped onto klang's 15-band graphic EQ: each
//! slider is set to the curve's value at its centre (clamped to ±12 dB), and
//! klang's solver then hits those values exactly at the centres. Between the
//! centres klang's response is smooth, so detail finer than the band spacing
//! (half to one octave) is lost: [`GraphicImport::max_error_db`] reports the
//! largest deviation from the curve over the file's points from 20 Hz to
//! 20 kHz, and [`GraphicImport::clamped`] the bands that hit the slider range.

use klang_dsp::config::{Config, FilterType, GRAPHIC_EQ_FREQS, MAX_GRAPHIC_GAIN_DB};

use crate::error::{FormatError, cannot, parse_err};
use crate::plan::{Plan, Section, num};

const FORMAT: &str = "Equalizer APO";

fn header(out: &mut String, plan: &Plan, sample_rate: u32) {
    out.push_str(&format!(
        "# exported by klang for {sample_rate} Hz (the graphic EQ's sections are rate-specific)\n"
    ));
    for n in &plan.not_carried {
        out.push_str(&format!("# not carried: {n}\n"));
    }
}

fn filter_line(s: &Section) -> Result<String, FormatError> {
    let (f, g, q) = (num(s.freq), num(s.gain_db), num(s.q));
    Ok(match s.kind {
        FilterType::Peak => format!("PK Fc {f} Hz Gain {g} dB Q {q}"),
        FilterType::Lowshelf => format!("LSC Fc {f} Hz Gain {g} dB Q {q}"),
        FilterType::Highshelf => format!("HSC Fc {f} Hz Gain {g} dB Q {q}"),
        FilterType::Lowpass => format!("LPQ Fc {f} Hz Q {q}"),
        FilterType::Highpass => format!("HPQ Fc {f} Hz Q {q}"),
        FilterType::Bandpass => format!("BP Fc {f} Hz Q {q}"),
        FilterType::Notch => format!("NO Fc {f} Hz Q {q}"),
        FilterType::Allpass => format!("AP Fc {f} Hz Q {q}"),
        FilterType::Lowshelf1 => format!("LS 6dB Fc {f} Hz Gain {g} dB"),
        FilterType::Highshelf1 => format!("HS 6dB Fc {f} Hz Gain {g} dB"),
        FilterType::Lowpass1 | FilterType::Highpass1 | FilterType::Allpass1 => {
            return Err(cannot(
                FORMAT,
                format!("the first-order {:?} filter {}", s.kind, s.origin),
                "use the second-order type (lowpass/highpass/allpass with q = 0.5 is close)",
            ));
        }
    })
}

/// The parametric export: `Preamp:` (input gain plus equal trims) and one
/// `Filter N:` line per section, for a consumer at `sample_rate`.
pub fn export_parametric(config: &Config, sample_rate: u32) -> Result<String, FormatError> {
    let plan = Plan::new(config, sample_rate);
    let trim = plan.single_chain(FORMAT, "the preamp")?;
    let mut out = String::new();
    header(&mut out, &plan, sample_rate);
    out.push_str(&format!("Preamp: {} dB\n", num(plan.preamp_db + trim)));
    for (i, s) in plan.shared.iter().enumerate() {
        out.push_str(&format!("Filter {}: ON {}\n", i + 1, filter_line(s)?));
    }
    Ok(out)
}

/// The frequencies of an exported `GraphicEQ:` line: 128 log-spaced points
/// from 20 Hz to 20 kHz, rounded to 0.1 Hz.
pub fn graphic_frequencies() -> Vec<f64> {
    klang_dsp::response::log_frequencies(128, 20.0, 20_000.0)
        .into_iter()
        .map(|f| (f * 10.0).round() / 10.0)
        .collect()
}

/// The `GraphicEQ:` export: a `Preamp:` line with the input gain and equal
/// trims, and the filters' magnitude response at [`graphic_frequencies`] as
/// computed at `sample_rate` (gains rounded to 0.01 dB).
pub fn export_graphic(config: &Config, sample_rate: u32) -> Result<String, FormatError> {
    let plan = Plan::new(config, sample_rate);
    let trim = plan.single_chain(FORMAT, "the preamp")?;
    let fs = f64::from(sample_rate);
    let mut out = String::new();
    header(&mut out, &plan, sample_rate);
    out.push_str(&format!("Preamp: {} dB\n", num(plan.preamp_db + trim)));
    let points: Vec<String> = graphic_frequencies()
        .into_iter()
        .map(|f| {
            let db = plan.response_db(fs, f).0 - plan.preamp_db - trim;
            format!("{} {:.2}", num(f).trim_end_matches(".0"), db)
        })
        .collect();
    out.push_str(&format!("GraphicEQ: {}\n", points.join("; ")));
    Ok(out)
}

/// A `GraphicEQ:` curve mapped onto klang's graphic EQ (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct GraphicImport {
    /// Default settings, the preamp as input gain, the curve in `graphic_eq`.
    pub config: Config,
    /// The curve's points as read (Hz, dB).
    pub points: Vec<(f64, f64)>,
    /// Largest |klang's response − curve| over the points in 20 Hz..=20 kHz, at 48 kHz.
    pub max_error_db: f64,
    /// Bands whose value was outside ±12 dB and was clamped.
    pub clamped: Vec<usize>,
}

/// Parses the `GraphicEQ:` points of a line's text after the colon.
fn parse_points(rest: &str, line: usize) -> Result<Vec<(f64, f64)>, FormatError> {
    let mut points = Vec::new();
    for (k, pair) in rest.split(';').enumerate() {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let mut it = pair.split_whitespace();
        let parsed = match (it.next(), it.next(), it.next()) {
            (Some(f), Some(g), None) => f.parse::<f64>().ok().zip(g.parse::<f64>().ok()),
            _ => None,
        };
        let Some((f, g)) = parsed.filter(|(f, g)| f.is_finite() && g.is_finite() && *f > 0.0)
        else {
            return Err(parse_err(
                line,
                format!("point {} `{pair}` is not `<frequency> <gain>`", k + 1),
                "write the points as `GraphicEQ: 20 -1.5; 25 -1.2; ...` with positive frequencies",
            ));
        };
        if let Some(&(prev, _)) = points.last()
            && f <= prev
        {
            return Err(parse_err(
                line,
                format!(
                    "point {} ({f} Hz) is not above the one before ({prev} Hz)",
                    k + 1
                ),
                "list the points in increasing frequency",
            ));
        }
        points.push((f, g));
    }
    if points.is_empty() {
        return Err(parse_err(
            line,
            "the GraphicEQ line has no points",
            "add `<frequency> <gain>` pairs separated by `;`",
        ));
    }
    Ok(points)
}

/// The curve's value at `f`: linear in dB over log frequency, flat beyond the ends (as APO does).
pub fn interpolate(points: &[(f64, f64)], f: f64) -> f64 {
    let first = points[0];
    let last = points[points.len() - 1];
    if f <= first.0 {
        return first.1;
    }
    if f >= last.0 {
        return last.1;
    }
    let k = points.partition_point(|p| p.0 <= f);
    let (f0, g0) = points[k - 1];
    let (f1, g1) = points[k];
    let t = (f.ln() - f0.ln()) / (f1.ln() - f0.ln());
    g0 + t * (g1 - g0)
}

/// Imports an AutoEq / APO `GraphicEQ:` file (with an optional `Preamp:` line;
/// comments and blank lines are ignored, other commands are errors).
pub fn import_graphic(text: &str) -> Result<GraphicImport, FormatError> {
    let mut points = None;
    let mut preamp = 0.0;
    let mut preamp_line = 1;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some((cmd, rest)) = t.split_once(':') else {
            return Err(parse_err(
                line,
                format!("`{t}` is not an Equalizer APO command"),
                "lines look like `Preamp: -6 dB` or `GraphicEQ: 20 -1; 25 -1.5`",
            ));
        };
        match cmd.trim().to_ascii_lowercase().as_str() {
            "graphiceq" => {
                if points.is_some() {
                    return Err(parse_err(
                        line,
                        "a second GraphicEQ line",
                        "keep one GraphicEQ line per file",
                    ));
                }
                points = Some(parse_points(rest, line)?);
            }
            "preamp" => {
                let tok = rest.split_whitespace().next().unwrap_or("");
                preamp += tok
                    .trim_end_matches("dB")
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        parse_err(
                            line,
                            format!("cannot read the preamp `{}`", rest.trim()),
                            "write it as `Preamp: -6.2 dB`",
                        )
                    })?;
                preamp_line = line;
            }
            other => {
                return Err(parse_err(
                    line,
                    format!("the command `{other}` is not part of a GraphicEQ file"),
                    "import parametric files with klang_dsp::apo::parse; remove other commands",
                ));
            }
        }
    }
    let Some(points) = points else {
        return Err(parse_err(
            1,
            "no `GraphicEQ:` line",
            "the file needs a line like `GraphicEQ: 20 -1; 25 -1.5; ...`",
        ));
    };
    let mut config = Config {
        input_gain_db: preamp,
        ..Config::default()
    };
    let mut clamped = Vec::new();
    for (i, &f) in GRAPHIC_EQ_FREQS.iter().enumerate() {
        let g = interpolate(&points, f);
        if g.abs() > MAX_GRAPHIC_GAIN_DB {
            clamped.push(i);
        }
        config.graphic_eq.gains_db[i] = (g * 1000.0).round() / 1000.0;
        config.graphic_eq.gains_db[i] =
            config.graphic_eq.gains_db[i].clamp(-MAX_GRAPHIC_GAIN_DB, MAX_GRAPHIC_GAIN_DB);
    }
    config
        .validate(None)
        .map_err(|source| FormatError::Invalid {
            line: preamp_line,
            source,
        })?;
    let plan = Plan::new(&config, 48_000);
    let max_error_db = points
        .iter()
        .filter(|p| (20.0..=20_000.0).contains(&p.0))
        .map(|&(f, g)| (plan.response_db(48_000.0, f).0 - preamp - g).abs())
        .fold(0.0, f64::max);
    Ok(GraphicImport {
        config,
        points,
        max_error_db,
        clamped,
    })
}
