//! Analytic frequency responses, for plots and tests.

use crate::chain::{Chain, ChainError};
use crate::config::Config;

/// The response of one output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputResponse {
    /// Output name (`L`, `R`, `SUB`).
    pub name: &'static str,
    /// Magnitude in dB at each frequency.
    pub magnitude_db: Vec<f64>,
    /// Phase in degrees, wrapped to (−180, 180], at each frequency.
    pub phase_deg: Vec<f64>,
}

/// Analytic response of the whole chain (small-signal, limiter inactive) at
/// `volume_db` (clamped to the configured maximum, loudness following it), per
/// output, at each frequency, for a signal present equally in L and R.
pub fn chain_response(
    config: &Config,
    sample_rate: u32,
    volume_db: f64,
    freqs_hz: &[f64],
) -> Result<Vec<OutputResponse>, ChainError> {
    let mut chain = Chain::new(config, sample_rate)?;
    chain.set_volume_db_now(volume_db);
    let mut out: Vec<OutputResponse> = chain
        .output_names()
        .iter()
        .map(|&name| OutputResponse {
            name,
            magnitude_db: Vec::with_capacity(freqs_hz.len()),
            phase_deg: Vec::with_capacity(freqs_hz.len()),
        })
        .collect();
    for &f in freqs_hz {
        for (o, h) in out.iter_mut().zip(chain.response(f)) {
            o.magnitude_db.push(h.db());
            o.phase_deg.push(h.arg().to_degrees());
        }
    }
    Ok(out)
}

/// `n` log-spaced frequencies from `lo` to `hi` Hz (both included).
pub fn log_frequencies(n: usize, lo: f64, hi: f64) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![lo],
        _ => {
            let (a, b) = (lo.ln(), hi.ln());
            (0..n)
                .map(|i| (a + (b - a) * i as f64 / (n - 1) as f64).exp())
                .collect()
        }
    }
}
