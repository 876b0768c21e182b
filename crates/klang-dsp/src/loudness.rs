//! Loudness compensation from the ISO 226:2003 equal-loudness contours.
//!
//! At a listening level of `L` phon the ear needs `contour(L)(f) − L` dB more
//! at `f` than at 1 kHz. Music balanced at the reference level `R` therefore
//! needs, at level `L < R`, the boost
//! `C(f) = [contour(L)(f) − L] − [contour(R)(f) − R]`, normalised to 0 dB at
//! 1 kHz. A fixed set of filter shapes (shelves and peaks) approximates `C`;
//! their gains are fitted by least squares at design time for every whole dB
//! of attenuation below the reference, and interpolated in between while the
//! volume moves, so following the volume costs a few coefficient updates.

use crate::biquad::BiquadCoefficients;
use crate::fit::{Shape, fit_gains};

/// ISO 226:2003 table 1: the 29 preferred frequencies (Hz).
pub const ISO_FREQS: [f64; 29] = [
    20.0, 25.0, 31.5, 40.0, 50.0, 63.0, 80.0, 100.0, 125.0, 160.0, 200.0, 250.0, 315.0, 400.0,
    500.0, 630.0, 800.0, 1000.0, 1250.0, 1600.0, 2000.0, 2500.0, 3150.0, 4000.0, 5000.0, 6300.0,
    8000.0, 10000.0, 12500.0,
];
/// Exponent for loudness perception, `α_f`.
const AF: [f64; 29] = [
    0.532, 0.506, 0.480, 0.455, 0.432, 0.409, 0.387, 0.367, 0.349, 0.330, 0.315, 0.301, 0.288,
    0.276, 0.267, 0.259, 0.253, 0.250, 0.246, 0.244, 0.243, 0.243, 0.243, 0.242, 0.242, 0.245,
    0.254, 0.271, 0.301,
];
/// Magnitude of the linear transfer function normalised at 1 kHz, `L_U` (dB).
const LU: [f64; 29] = [
    -31.6, -27.2, -23.0, -19.1, -15.9, -13.0, -10.3, -8.1, -6.2, -4.5, -3.1, -2.0, -1.1, -0.4, 0.0,
    0.3, 0.5, 0.0, -2.7, -4.1, -1.0, 1.7, 2.5, 1.2, -2.1, -7.1, -11.2, -10.7, -3.1,
];
/// Threshold of hearing, `T_f` (dB SPL).
const TF: [f64; 29] = [
    78.5, 68.7, 59.5, 51.1, 44.0, 37.5, 31.5, 26.5, 22.1, 17.9, 14.4, 11.4, 8.6, 6.2, 4.4, 3.0,
    2.2, 2.4, 3.5, 1.7, -1.3, -4.2, -6.0, -5.4, -1.5, 6.0, 12.6, 13.9, 12.3,
];

/// Lowest loudness level the compensation follows down to (the standard's
/// formula is normative from 20 phon); quieter settings keep the 20-phon curve.
pub const MIN_PHON: f64 = 20.0;

/// ISO 226:2003 formula (1): sound pressure level in dB at `ISO_FREQS[i]` for a
/// loudness level of `phon`.
pub fn spl_at(phon: f64, i: usize) -> f64 {
    let af = 4.47e-3 * (10f64.powf(0.025 * phon) - 1.15)
        + (0.4 * 10f64.powf((TF[i] + LU[i]) / 10.0 - 9.0)).powf(AF[i]);
    10.0 / AF[i] * af.log10() - LU[i] + 94.0
}

/// The compensation the standard asks for at `ISO_FREQS[i]` when listening at
/// `listen_phon` instead of `ref_phon`, normalised to 0 dB at 1 kHz. Zero when
/// `listen_phon >= ref_phon`.
pub fn iso_compensation(listen_phon: f64, ref_phon: f64, i: usize) -> f64 {
    if listen_phon >= ref_phon {
        return 0.0;
    }
    let k = 17; // 1 kHz
    let c = |j: usize| (spl_at(listen_phon, j) - listen_phon) - (spl_at(ref_phon, j) - ref_phon);
    c(i) - c(k)
}

/// Index range of the frequencies the compensation is held to (31.5 Hz to 12.5 kHz).
pub const FIT_RANGE: std::ops::RangeInclusive<usize> = 2..=28;

/// Number of filter sections loudness uses.
pub const SECTIONS: usize = 11;

#[derive(Debug, Clone, Copy)]
enum Kind {
    LowShelf,
    HighShelf,
    Peak,
}

/// The fixed shapes: (kind, frequency, Q). Two low shelves and three peaks
/// follow the contours' low rise; a high shelf and a peak the step between 1
/// and 2 kHz; two peaks the ear-canal region (4 and 8 kHz); a high shelf and a
/// peak the top octave. Chosen by trying placements against the test below:
/// the worst deviation from ISO 226 is about 0.35 dB (31.5 Hz–12.5 kHz, 20–80
/// phon, every supported rate).
const SHAPES: [(Kind, f64, f64); SECTIONS] = [
    (Kind::LowShelf, 200.0, 0.5),
    (Kind::LowShelf, 50.0, 0.6),
    (Kind::Peak, 100.0, 0.9),
    (Kind::Peak, 300.0, 1.0),
    (Kind::Peak, 700.0, 1.2),
    (Kind::HighShelf, 1300.0, 1.0),
    (Kind::Peak, 1700.0, 2.0),
    (Kind::Peak, 4000.0, 1.0),
    (Kind::Peak, 8000.0, 1.4),
    (Kind::HighShelf, 11000.0, 0.9),
    (Kind::Peak, 12500.0, 2.0),
];

fn shape(fs: f64, k: usize, gain_db: f64) -> BiquadCoefficients {
    let (kind, f, q) = SHAPES[k];
    match kind {
        Kind::LowShelf => BiquadCoefficients::low_shelf(fs, f, q, gain_db),
        Kind::HighShelf => BiquadCoefficients::high_shelf(fs, f, q, gain_db),
        Kind::Peak => BiquadCoefficients::peak(fs, f, q, gain_db),
    }
}

/// Fitted section gains for every whole dB of attenuation below the reference.
#[derive(Debug, Clone)]
pub struct LoudnessTable {
    fs: f64,
    ref_phon: f64,
    /// `gains[a]`: section gains at `a` dB below the reference.
    gains: Vec<[f64; SECTIONS]>,
}

impl LoudnessTable {
    /// Fits the table for rate `fs` and reference loudness `ref_phon`.
    pub fn new(fs: f64, ref_phon: f64) -> Self {
        let steps = (ref_phon - MIN_PHON).ceil().max(0.0) as usize;
        let freqs: Vec<f64> = FIT_RANGE.map(|i| ISO_FREQS[i]).collect();
        // 1 kHz weighted so the normalisation point is met (almost) exactly.
        let weights: Vec<f64> = FIT_RANGE
            .map(|i| if i == 17 { 100.0 } else { 1.0 })
            .collect();
        let closures: Vec<Box<dyn Fn(f64) -> BiquadCoefficients>> = (0..SECTIONS)
            .map(|k| Box::new(move |g| shape(fs, k, g)) as Box<dyn Fn(f64) -> BiquadCoefficients>)
            .collect();
        let shapes: Vec<Shape<'_>> = closures.iter().map(|b| b.as_ref()).collect();
        let mut gains = Vec::with_capacity(steps + 1);
        let mut prev = vec![0.0; SECTIONS];
        for a in 0..=steps {
            let listen = (ref_phon - a as f64).max(MIN_PHON);
            let target: Vec<f64> = FIT_RANGE
                .map(|i| iso_compensation(listen, ref_phon, i))
                .collect();
            let g = if a == 0 {
                vec![0.0; SECTIONS]
            } else {
                fit_gains(fs, &shapes, &freqs, &target, &weights, &prev, 40.0)
            };
            let mut row = [0.0; SECTIONS];
            row.copy_from_slice(&g);
            gains.push(row);
            prev = g;
        }
        LoudnessTable {
            fs,
            ref_phon,
            gains,
        }
    }

    /// The reference loudness level in phon.
    pub fn reference_phon(&self) -> f64 {
        self.ref_phon
    }

    /// Section gains at `attenuation_db` below the reference (≤ 0: none),
    /// linearly interpolated between the fitted whole-dB steps. Does not allocate.
    pub fn gains(&self, attenuation_db: f64) -> [f64; SECTIONS] {
        if attenuation_db.is_nan() || attenuation_db <= 0.0 {
            return [0.0; SECTIONS];
        }
        let last = self.gains.len() - 1;
        let pos = attenuation_db.min(last as f64);
        let i = (pos.floor() as usize).min(last);
        let j = (i + 1).min(last);
        let t = pos - i as f64;
        std::array::from_fn(|k| self.gains[i][k] * (1.0 - t) + self.gains[j][k] * t)
    }

    /// The sections at `attenuation_db` below the reference. Does not allocate.
    pub fn sections(&self, attenuation_db: f64) -> [BiquadCoefficients; SECTIONS] {
        let g = self.gains(attenuation_db);
        std::array::from_fn(|k| {
            if g[k] == 0.0 {
                BiquadCoefficients::IDENTITY
            } else {
                shape(self.fs, k, g[k])
            }
        })
    }
}
