//! klang's digital signal processing: a pure core with no I/O.
//!
//! It turns a speaker configuration ([`config::Config`], from TOML or an
//! Equalizer APO / AutoEq file) into a [`Chain`] that processes interleaved f32
//! audio without allocating, and computes the chain's analytic response
//! ([`response::chain_response`]) for plots.
//!
//! ```
//! use klang_dsp::{Chain, parse_preset};
//! let config = parse_preset("[tone]\nbass_db = 3.0\n").unwrap();
//! let mut chain = Chain::new(&config, 48_000).unwrap();
//! chain.set_volume_db_now(-6.0);
//! let input = vec![0.1f32; 2 * 480];
//! let mut output = vec![0.0f32; chain.output_channels() * 480];
//! chain.process(&input, &mut output);
//! assert!(output.iter().all(|s| s.abs() <= 0.9));
//! ```
//!
//! # Refinements of the API contract (notes/klang-api.md)
//! - `ConfigError::locate(text)` fills in line and column of an error found
//!   after parsing (e.g. by `validate_for_rate`, or `Chain::new`'s
//!   `ChainError::Config`) by finding its field in the TOML text.
//! - `Config::validate(rate: Option<u32>)` is the one validation function;
//!   `validate_for_rate(r)` = rate range check + `validate(Some(r))`.
//! - `set_volume_db` / `set_volume_db_now` clamp to `[-150, volume.max_db]`;
//!   `Config::default().volume.max_db` is 0 dB, so `--volume-db 0` is allowed
//!   by default (a config may set a lower hard maximum).
//! - `process` handles `min(input.len() / 2, output.len() / output_channels())` frames.
//! - `chain_response` is the response to a signal present equally in L and R
//!   (the sub is fed `(L + R) / 2`); the sub's phase includes its delay and the
//!   LR2 polarity inversion.
//! - Extra for the live engine: `Chain::set_tone_db(bass, treble)` changes
//!   the tone shelves without allocating (the remote's bass/treble); other
//!   changes (graphic EQ, crossover, rate) need a new `Chain` (it allocates).
//! - Extra: `Chain::tone_db`, `Chain::target_volume_db`, `Chain::limiter_reduction_db`,
//!   `Chain::config`, `Chain::response(f)`, `config::SUPPORTED_SAMPLE_RATES`.
//!
//! # Design
//! - [`biquad`]: pure coefficient design (RBJ cookbook, first-order
//!   bilinear sections, Butterworth / Linkwitz-Riley cascades) apart from state.
//! - [`cascade`]: the one processor every filter runs in: transposed direct
//!   form II, f64 state, frames `[f64; C]`, sections in groups of four run
//!   *skewed* (section k works on frame t − k) so their feedback latencies
//!   overlap; filled and drained per block, so there is no latency. State
//!   below 1e-30 is flushed to zero after each block (never subnormal).
//! - [`graphic`]: mbeq's 15 bands as peaking sections whose gains are solved
//!   (Gauss-Newton) so the combined response hits every slider at its centre.
//! - [`loudness`]: ISO 226:2003 contours; 11 fixed shapes fitted per dB of
//!   attenuation below the reference, interpolated as the volume moves.
//! - [`chain`]: the whole processor; [`response`]: its analytic response.
//! - [`config`] and [`apo`]: what users write, validated in one place
//!   ([`config::Config::validate`]).
//!
//! # Boundaries
//! No I/O, no threads, no `unsafe`. The audio path ([`Chain::process`]) does
//! not allocate (checked by a counting-allocator test), flushes decaying filter
//! state before it turns subnormal, turns non-finite input into silence, and
//! cannot exceed the limiter's ceiling (checked by a property test).

#![forbid(unsafe_code)]

pub mod apo;
pub mod biquad;
pub mod cascade;
pub mod chain;
pub mod config;
mod fit;
pub mod graphic;
pub mod loudness;
pub mod response;

pub use chain::{Chain, ChainError};
pub use config::{Config, ConfigError};

/// A preset could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PresetError {
    /// A TOML configuration with a problem.
    #[error("{0}")]
    Toml(#[from] ConfigError),
    /// An Equalizer APO / AutoEq file with a problem.
    #[error("{0}")]
    Apo(#[from] apo::ApoError),
}

impl PresetError {
    /// 1-based line of the problem, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            PresetError::Toml(e) => e.line,
            PresetError::Apo(e) => Some(e.line),
        }
    }
}

/// Detects the format by content (an Equalizer APO / AutoEq parametric file,
/// else klang TOML) and parses it.
pub fn parse_preset(text: &str) -> Result<Config, PresetError> {
    if apo::looks_like_apo(text) {
        Ok(apo::parse(text)?)
    } else {
        Ok(Config::from_toml(text)?)
    }
}
