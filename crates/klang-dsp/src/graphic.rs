//! The 15-band graphic EQ at PulseAudio mbeq's frequencies, with zero latency:
//! one RBJ peaking section per band, whose gains are solved so that the
//! *combined* response at every band centre equals its setting (neighbouring
//! bands overlap; without compensation a +12 dB slider among others reads high).

use crate::biquad::BiquadCoefficients;
use crate::config::GRAPHIC_EQ_FREQS;
use crate::fit::{Shape, fit_gains};

/// Q of band `i`: its bandwidth is the mean log-distance to its neighbours,
/// so bands tile the spectrum (mbeq's spacing is uneven: octaves at the ends,
/// half octaves in the middle).
pub fn band_q(i: usize) -> f64 {
    let f = &GRAPHIC_EQ_FREQS;
    let n = f.len();
    let octaves = if i == 0 {
        (f[1] / f[0]).log2()
    } else if i == n - 1 {
        (f[n - 1] / f[n - 2]).log2()
    } else {
        (f[i + 1] / f[i - 1]).log2() / 2.0
    };
    crate::biquad::q_from_bandwidth(octaves)
}

/// The sections realising `gains_db` at rate `fs` (bands at or above Nyquist,
/// impossible at supported rates, are left out). All-zero settings give no
/// sections, so a flat graphic EQ costs nothing.
pub fn design(gains_db: &[f64; 15], fs: f64) -> Vec<BiquadCoefficients> {
    if gains_db.iter().all(|&g| g == 0.0) {
        return Vec::new();
    }
    let idx: Vec<usize> = (0..15)
        .filter(|&i| GRAPHIC_EQ_FREQS[i] < 0.5 * fs)
        .collect();
    let freqs: Vec<f64> = idx.iter().map(|&i| GRAPHIC_EQ_FREQS[i]).collect();
    let target: Vec<f64> = idx.iter().map(|&i| gains_db[i]).collect();
    let shapes_owned: Vec<Box<dyn Fn(f64) -> BiquadCoefficients>> = idx
        .iter()
        .map(|&i| {
            let (f, q) = (GRAPHIC_EQ_FREQS[i], band_q(i));
            Box::new(move |g| BiquadCoefficients::peak(fs, f, q, g))
                as Box<dyn Fn(f64) -> BiquadCoefficients>
        })
        .collect();
    let shapes: Vec<Shape<'_>> = shapes_owned.iter().map(|b| b.as_ref()).collect();
    let weights = vec![1.0; freqs.len()];
    let gains = fit_gains(fs, &shapes, &freqs, &target, &weights, &target, 40.0);
    shapes
        .iter()
        .zip(&gains)
        .filter(|&(_, &g)| g.abs() > 1e-9)
        .map(|(s, &g)| s(g))
        .collect()
}
