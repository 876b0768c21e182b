//! Equalizer APO / AutoEq / REW parametric filter files.
//!
//! ```text
//! Preamp: -6.2 dB
//! Filter 1: ON PK Fc 105 Hz Gain -4.1 dB Q 0.70
//! Filter 2: ON LSC Fc 105 Hz Gain 5.5 dB Q 0.70
//! Filter  3: ON  HP       Fc   20.0 Hz
//! ```
//! Types: `PK`/`PEQ`/`Modal` (peak), `LS`/`LSC` and `HS`/`HSC` (shelves;
//! `LS 6dB` / `HS 6dB` first order, `LSC 12dB` style slopes in dB/octave mapped
//! to the cookbook's `S = dB/12`), `LP`/`HP` (Butterworth, Q 0.71), `LPQ`/`HPQ`
//! (with Q), `BP`, `NO` (notch), `AP` (all pass); `BW Oct N` in place of `Q`.
//! Bands that are `OFF` or of type `None` (REW's unused slots) are skipped. The
//! preamp becomes the input gain. Lines APO would ignore (REW's header lines,
//! comments) are ignored; commands klang cannot honour (per-channel filters,
//! includes, convolution, ...) are errors rather than silently misapplied.

use crate::config::{Config, EqBand, FilterType};

/// A problem in an APO file, with its 1-based line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message} (help: {help})")]
pub struct ApoError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

fn err(line: usize, message: impl Into<String>, help: impl Into<String>) -> ApoError {
    ApoError {
        line,
        message: message.into(),
        help: help.into(),
    }
}

/// The command of a line (`Preamp`, `Filter 3`) and the rest, if it has one.
fn command(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.starts_with('#') {
        return None;
    }
    let (cmd, rest) = line.split_once(':')?;
    Some((cmd.trim(), rest.trim()))
}

fn is_filter_command(cmd: &str) -> bool {
    let lower = cmd.to_ascii_lowercase();
    match lower.strip_prefix("filter") {
        Some(n) => n.trim().chars().all(|c| c.is_ascii_digit()),
        None => false,
    }
}

/// Whether the text is an APO parametric file rather than TOML: it has a
/// `Preamp:` or `Filter N:` line (which is never valid TOML).
pub fn looks_like_apo(text: &str) -> bool {
    text.lines().any(|l| match command(l) {
        Some((cmd, _)) => cmd.eq_ignore_ascii_case("preamp") || is_filter_command(cmd),
        None => false,
    })
}

/// Commands APO has that klang cannot apply faithfully.
const UNSUPPORTED: [&str; 12] = [
    "channel",
    "device",
    "include",
    "copy",
    "convolution",
    "graphiceq",
    "delay",
    "stage",
    "if",
    "elseif",
    "eval",
    "loudnesscorrection",
];

/// Parses a number with an optional unit glued on (`105Hz`, `-4.1dB`).
fn number(tok: &str) -> Option<f64> {
    let t = tok.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let t = t.replace(',', ".");
    let v: f64 = t.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Parses an APO file into a [`Config`] (default settings plus the preamp as
/// input gain and the filters as `eq` bands), validated like a TOML config.
pub fn parse(text: &str) -> Result<Config, ApoError> {
    let mut config = Config::default();
    let mut preamp = 0.0;
    let mut band_lines = Vec::new();
    let mut preamp_line = None;
    for (i, raw) in text.lines().enumerate() {
        let ln = i + 1;
        let Some((cmd, rest)) = command(raw) else {
            continue;
        };
        let lower = cmd.to_ascii_lowercase();
        if lower == "preamp" {
            preamp_line = Some(ln);
            let tok = rest.split_whitespace().next().unwrap_or("");
            preamp += number(tok).ok_or_else(|| {
                err(
                    ln,
                    format!("cannot read the preamp `{rest}`"),
                    "write it as `Preamp: -6.2 dB`",
                )
            })?;
        } else if is_filter_command(cmd) {
            if let Some(band) = parse_filter(rest, ln)? {
                config.eq.push(band);
                band_lines.push(ln);
            }
        } else if UNSUPPORTED.contains(&lower.as_str()) {
            return Err(err(
                ln,
                format!("the Equalizer APO command `{cmd}` is not supported"),
                "klang applies one set of filters to both channels; remove the line or convert the preset by hand",
            ));
        }
    }
    config.input_gain_db = preamp;
    if let Err(e) = config.validate(None) {
        // Map `eq[k].field` back to the line the band came from.
        let line = if e.field == "input_gain_db" {
            preamp_line.unwrap_or(1)
        } else {
            e.field
                .strip_prefix("eq[")
                .and_then(|r| r.split(']').next())
                .and_then(|k| k.parse::<usize>().ok())
                .and_then(|k| band_lines.get(k).copied())
                .unwrap_or(1)
        };
        // Name the field as the APO file does.
        let name = match e.field.rsplit('.').next().unwrap_or("") {
            "q" => "Q",
            "freq" => "Fc",
            "gain_db" => "Gain",
            "slope" => "slope",
            "input_gain_db" => "Preamp",
            other => other,
        };
        return Err(err(line, format!("{name}: {}", e.message), e.help));
    }
    Ok(config)
}

fn parse_filter(rest: &str, ln: usize) -> Result<Option<EqBand>, ApoError> {
    let toks: Vec<&str> = rest.split_whitespace().collect();
    let mut it = 0;
    match toks.first().map(|t| t.to_ascii_uppercase()) {
        Some(s) if s == "ON" => it += 1,
        Some(s) if s == "OFF" => return Ok(None),
        _ => {}
    }
    let Some(kind_tok) = toks.get(it) else {
        return Err(err(
            ln,
            "the filter has no type",
            "write e.g. `Filter 1: ON PK Fc 100 Hz Gain -3 dB Q 1.0`",
        ));
    };
    let kind_up = kind_tok.to_ascii_uppercase();
    it += 1;
    if kind_up == "NONE" {
        return Ok(None);
    }
    // Optional "<n> dB" right after shelf types: a slope in dB/octave (`LS 6dB`, `LSC 12 dB`).
    let mut slope_db: Option<f64> = None;
    if matches!(kind_up.as_str(), "LS" | "HS" | "LSC" | "HSC")
        && let Some(t) = toks.get(it)
        && let Some(v) = number(t)
        && !t.eq_ignore_ascii_case("fc")
    {
        slope_db = Some(v);
        it += 1;
        if toks.get(it).is_some_and(|t| t.eq_ignore_ascii_case("db")) {
            it += 1;
        }
    }
    let (mut fc, mut gain, mut q, mut bw) = (None, None, None, None);
    while it < toks.len() {
        let key = toks[it].to_ascii_lowercase();
        let value = |k: usize| -> Result<f64, ApoError> {
            toks.get(k).and_then(|t| number(t)).ok_or_else(|| {
                err(
                    ln,
                    format!("`{}` needs a number after it", toks[it]),
                    "write e.g. `Fc 100 Hz`, `Gain -3 dB`, `Q 0.7`",
                )
            })
        };
        match key.as_str() {
            "fc" => {
                let mut v = value(it + 1)?;
                it += 2;
                if toks.get(it).is_some_and(|t| t.eq_ignore_ascii_case("khz")) {
                    v *= 1000.0;
                }
                fc = Some(v);
            }
            "gain" => {
                gain = Some(value(it + 1)?);
                it += 2;
            }
            "q" => {
                q = Some(value(it + 1)?);
                it += 2;
            }
            "bw" => {
                // "BW Oct 0.167"
                if toks
                    .get(it + 1)
                    .is_some_and(|t| t.eq_ignore_ascii_case("oct"))
                {
                    bw = Some(value(it + 2)?);
                    it += 3;
                } else {
                    return Err(err(
                        ln,
                        "only `BW Oct <octaves>` bandwidths are supported",
                        "give the bandwidth in octaves or use `Q`",
                    ));
                }
            }
            "hz" | "db" | "khz" => it += 1,
            other => {
                return Err(err(
                    ln,
                    format!("unexpected `{other}` in a filter line"),
                    "filter lines look like `Filter 1: ON PK Fc 100 Hz Gain -3 dB Q 1.0`",
                ));
            }
        }
    }
    let Some(freq) = fc else {
        return Err(err(
            ln,
            "the filter has no `Fc`",
            "add the frequency, e.g. `Fc 100 Hz`",
        ));
    };
    let q_given = q.or(bw.map(crate::biquad::q_from_bandwidth));
    let butter = std::f64::consts::FRAC_1_SQRT_2;
    let (kind, q, slope) = match kind_up.as_str() {
        "PK" | "PEQ" | "MODAL" => (FilterType::Peak, q_given.unwrap_or(butter), None),
        "LP" => (FilterType::Lowpass, butter, None),
        "HP" => (FilterType::Highpass, butter, None),
        "LPQ" => (FilterType::Lowpass, q_given.unwrap_or(butter), None),
        "HPQ" => (FilterType::Highpass, q_given.unwrap_or(butter), None),
        "BP" => (FilterType::Bandpass, q_given.unwrap_or(butter), None),
        "NO" => (FilterType::Notch, q_given.unwrap_or(30.0), None),
        "AP" => (FilterType::Allpass, q_given.unwrap_or(butter), None),
        "LS" | "LSC" | "HS" | "HSC" => {
            let low = kind_up.starts_with('L');
            match slope_db {
                Some(s) if (s - 6.0).abs() < 1e-9 && q_given.is_none() => {
                    let k = if low {
                        FilterType::Lowshelf1
                    } else {
                        FilterType::Highshelf1
                    };
                    (k, butter, None)
                }
                _ => {
                    let k = if low {
                        FilterType::Lowshelf
                    } else {
                        FilterType::Highshelf
                    };
                    let slope = if q_given.is_some() {
                        None
                    } else {
                        slope_db.map(|s| s / 12.0)
                    };
                    (k, q_given.unwrap_or(butter), slope)
                }
            }
        }
        other => {
            return Err(err(
                ln,
                format!("unknown filter type `{other}`"),
                "use PK, LSC, HSC, LS, HS, LP, HP, LPQ, HPQ, BP, NO or AP",
            ));
        }
    };
    let gain_db = match (kind.uses_gain(), gain) {
        (true, Some(g)) => g,
        (true, None) => {
            return Err(err(
                ln,
                format!("a `{kind_tok}` filter needs a `Gain`"),
                "add e.g. `Gain -3 dB`",
            ));
        }
        (false, _) => 0.0,
    };
    Ok(Some(EqBand {
        kind,
        freq,
        gain_db,
        q,
        slope,
    }))
}
