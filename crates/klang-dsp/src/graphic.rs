//! The 15-band graphic EQ at PulseAudio mbeq's frequencies, with zero latency:
//! one RBJ peaking section per band, whose gains are solved so that the
//! *combined* response at every band centre equals its setting (neighbouring
//! bands overlap; without compensation a +12 dB slider among others reads high).

use crate::biquad::BiquadCoefficients;
use crate::config::GRAPHIC_EQ_FREQS;
use crate::fit::{Shape, fit_gains};

/// Bandwidth of band `i` in octaves: `WIDTH` times the larger log-distance to
/// a neighbour (mbeq's spacing is uneven: octaves at the ends, half octaves in
/// the middle).
pub fn band_octaves(i: usize) -> f64 {
    let f = &GRAPHIC_EQ_FREQS;
    let n = f.len();
    // The larger gap to a neighbour, so a band next to an octave gap reaches
    // across it (5 kHz towards 10 kHz, 100 Hz towards 50 Hz).
    let left = if i > 0 { (f[i] / f[i - 1]).log2() } else { 0.0 };
    let right = if i + 1 < n {
        (f[i + 1] / f[i]).log2()
    } else {
        0.0
    };
    let spacing = left.max(right);
    spacing * WIDTH
}

/// How much wider than the band spacing each band is. 1.5 keeps all sliders
/// at +12 dB flat within 0.6 dB between the centres (1.0 dips by 3 dB), while
/// alternating ±12 dB settings still solve exactly (from 1.75 up the solve
/// runs into its gain bound); both are tested.
pub const WIDTH: f64 = 1.5;

/// Q of band `i` at rate `fs`, from its bandwidth with the cookbook's
/// bilinear-warping correction (`alpha = sin w0 · sinh(ln2/2 · BW · w0/sin w0)`),
/// so bands near Nyquist (20 kHz at 44.1/48 kHz) keep their width instead of
/// being squeezed and leaving a dip between 10 and 20 kHz.
pub fn band_q(i: usize, fs: f64) -> f64 {
    let w0 = 2.0 * std::f64::consts::PI * GRAPHIC_EQ_FREQS[i] / fs;
    let bw = band_octaves(i);
    1.0 / (2.0 * (std::f64::consts::LN_2 / 2.0 * bw * w0 / w0.sin()).sinh())
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
            let (f, q) = (GRAPHIC_EQ_FREQS[i], band_q(i, fs));
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
