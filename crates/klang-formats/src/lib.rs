//! Import and export between klang's [`Config`](klang_dsp::Config) and the
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
//! Boundary: pure (text in, text out), no I/O, no `unsafe`.

#![forbid(unsafe_code)]

pub mod apo;
pub mod camilla;
pub mod easyeffects;
mod error;
pub mod pipewire;
pub mod plan;

pub use error::FormatError;
