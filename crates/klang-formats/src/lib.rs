//! Import and export between klang's [`Config`] and the
//! formats of other equalizers, so presets move freely between tools.
//!
//! | format | module | import | export | cannot carry |
//! |---|---|---|---|---|
//! | Equalizer APO / AutoEq parametric | [`apo`] (import: [`klang_dsp::apo::parse`]) | yes | yes | crossover, unequal trims, 1st-order LP/HP/AP |
//! | APO / AutoEq `GraphicEQ:` | [`apo`] | yes (onto the 15-band graphic EQ) | yes (sampled response) | crossover, unequal trims |
//! | EasyEffects equalizer (JSON) | [`easyeffects`] | yes | yes | crossover, unequal trims, 1st-order types, > 32 bands |
//! | PipeWire filter-chain | [`pipewire`] | – | yes | 1st-order types (LR2), sub delay, LP/HP Q < 0.7071 (BW4/LR8) |
//! | CamillaDSP YAML | [`camilla`] | – | yes | (everything linear) |
//!
//! No format carries loudness, the volume control or the limiter (they are not
//! fixed filters); exports list them in a comment when they are set. Every
//! exporter works from one [`plan::Plan`]: klang's linear processing as plain
//! cookbook sections, which all these tools design with the same formulas, so
//! a round trip keeps the response (tested within 0.01 dB).
//!
//! ```
//! use klang_dsp::Config;
//! let mut config = Config::default();
//! config.tone.bass_db = 4.0;
//! let text = klang_formats::apo::export_parametric(&config, 48_000).unwrap();
//! assert!(text.contains("Filter 1: ON LSC Fc 100.0 Hz Gain 4.0 dB Q 0.707107"));
//! let back = klang_dsp::apo::parse(&text).unwrap();
//! assert_eq!(back.eq.len(), 1);
//! ```
//!
//! For a CLI: [`import`] detects the format of a file's text, [`export`]
//! writes one by [`Format`] (`Format::from_name("easyeffects")`).
//!
//! Boundary: pure (text in, text out), no I/O, no `unsafe`.

#![forbid(unsafe_code)]

pub mod apo;
pub mod camilla;
pub mod easyeffects;
mod error;
pub mod pipewire;
pub mod plan;

pub use error::FormatError;

use klang_dsp::Config;

/// Every format klang can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// klang's own TOML.
    Klang,
    /// Equalizer APO / AutoEq parametric (`Preamp:` / `Filter N:`).
    ApoParametric,
    /// Equalizer APO / AutoEq `GraphicEQ:`.
    ApoGraphic,
    /// EasyEffects equalizer preset (JSON).
    EasyEffects,
    /// PipeWire filter-chain configuration (export only).
    PipeWire,
    /// CamillaDSP YAML (export only).
    CamillaDsp,
}

impl Format {
    /// All formats, with the names [`Format::from_name`] accepts.
    pub const NAMES: [(&'static str, Format); 6] = [
        ("klang", Format::Klang),
        ("apo", Format::ApoParametric),
        ("graphiceq", Format::ApoGraphic),
        ("easyeffects", Format::EasyEffects),
        ("pipewire", Format::PipeWire),
        ("camilladsp", Format::CamillaDsp),
    ];

    /// The format called `name` (see [`Format::NAMES`]).
    pub fn from_name(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        Format::NAMES
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, f)| *f)
    }
}

/// What [`import`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The settings.
    pub config: Config,
    /// The format the text was in.
    pub format: Format,
    /// For `GraphicEQ:` imports: the largest deviation of klang's graphic EQ
    /// from the file's curve (see [`apo::GraphicImport`]).
    pub fit_error_db: Option<f64>,
}

/// Imports text of any importable format, detected by content: JSON (`{`) is
/// EasyEffects, a `GraphicEQ:` line is AutoEq's graphic EQ, `Preamp:` /
/// `Filter N:` lines are APO parametric, anything else klang TOML.
pub fn import(text: &str) -> Result<Imported, FormatError> {
    let has_graphic = text.lines().any(|l| {
        l.trim_start()
            .split_once(':')
            .is_some_and(|(c, _)| c.trim().eq_ignore_ascii_case("graphiceq"))
    });
    if text.trim_start().starts_with('{') {
        Ok(Imported {
            config: easyeffects::import(text)?,
            format: Format::EasyEffects,
            fit_error_db: None,
        })
    } else if has_graphic {
        let g = apo::import_graphic(text)?;
        Ok(Imported {
            config: g.config,
            format: Format::ApoGraphic,
            fit_error_db: Some(g.max_error_db),
        })
    } else if klang_dsp::apo::looks_like_apo(text) {
        let config = klang_dsp::apo::parse(text).map_err(|e| FormatError::Parse {
            line: e.line,
            message: e.message,
            help: e.help,
        })?;
        Ok(Imported {
            config,
            format: Format::ApoParametric,
            fit_error_db: None,
        })
    } else {
        let config = Config::from_toml(text).map_err(|source| FormatError::Invalid {
            line: source.line.unwrap_or(1),
            source,
        })?;
        Ok(Imported {
            config,
            format: Format::Klang,
            fit_error_db: None,
        })
    }
}

/// Writes `config` in `format` for a consumer at `sample_rate` (PipeWire with
/// default [`pipewire::Options`]).
pub fn export(config: &Config, format: Format, sample_rate: u32) -> Result<String, FormatError> {
    match format {
        Format::Klang => Ok(config.to_toml()),
        Format::ApoParametric => apo::export_parametric(config, sample_rate),
        Format::ApoGraphic => apo::export_graphic(config, sample_rate),
        Format::EasyEffects => easyeffects::export(config, sample_rate),
        Format::PipeWire => pipewire::export(config, sample_rate, &pipewire::Options::default()),
        Format::CamillaDsp => camilla::export(config, sample_rate),
    }
}
