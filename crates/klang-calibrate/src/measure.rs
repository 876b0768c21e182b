//! Deconvolution of a recording to an impulse response, with the checks that
//! turn a bad recording into a clear error.

use realfft::RealFftPlanner;
use realfft::num_complex::Complex64;

use crate::error::CalibrateError;
use crate::sweep::Sweep;

/// Any sample at or above this magnitude counts as clipped (−0.01 dBFS).
pub const CLIP_LEVEL: f32 = 0.999;
/// A recording whose loudest sample is below this is silent.
pub const SILENCE_DBFS: f64 = -70.0;
/// The impulse peak must stand this far above the noise (dB) for the sweep to
/// count as found. Deconvolved noise or music reaches about 30 dB (the
/// whitened noise is heavy-tailed); a real sweep, with its ~50 dB processing
/// gain, reaches 60 dB or more even in a noisy room.
pub const MIN_PEAK_TO_NOISE_DB: f64 = 40.0;

/// How much of the impulse response to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureOptions {
    /// Kept before the peak, ms.
    pub pre_ms: f64,
    /// Kept after the peak, ms (the longest window the response may use).
    pub post_ms: f64,
    /// Highest harmonic order separated (2 = second harmonic).
    pub max_harmonic: usize,
}

impl Default for MeasureOptions {
    fn default() -> Self {
        MeasureOptions {
            pre_ms: 20.0,
            post_ms: 1000.0,
            max_harmonic: 5,
        }
    }
}

/// The impulse response of one harmonic. Its spectrum at `f` belongs to an
/// excitation at `f / order`.
#[derive(Debug, Clone, PartialEq)]
pub struct Harmonic {
    /// 2 for the second harmonic, and so on.
    pub order: usize,
    /// The impulse response, its expected peak at `pre` samples.
    pub ir: Vec<f64>,
    /// Its level relative to the fundamental's at 1 kHz excitation (lower if
    /// the harmonic would pass 0.45 × the rate), dB: −40 dB is 1 % distortion.
    pub level_db: f64,
}

/// A deconvolved measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// The linear impulse response, from `peak_index` samples before its peak.
    pub ir: Vec<f64>,
    /// Index of the peak in `ir`.
    pub peak_index: usize,
    /// Where the peak lies in the recording, relative to where the sweep
    /// file's first sample would be if played at the recording's start: the
    /// recording's delay plus the system's latency and the sound's flight, s.
    pub delay_s: f64,
    /// The band the sweep excited; the response is valid only inside it.
    pub band_hz: (f64, f64),
    /// Peak of the impulse response over the noise, dB.
    pub peak_to_noise_db: f64,
    /// Harmonic distortion, separated from the linear response.
    pub harmonics: Vec<Harmonic>,
}

/// Checks a recording and deconvolves it with the sweep. `recording` is one
/// channel (the microphone's), as f32 full scale ±1.
pub fn measure(
    sweep: &Sweep,
    recording: &[f32],
    recording_rate: u32,
    options: &MeasureOptions,
) -> Result<Measurement, CalibrateError> {
    let rate = sweep.sample_rate();
    if recording_rate != rate {
        return Err(CalibrateError::SampleRateMismatch {
            sweep: rate,
            recording: recording_rate,
        });
    }
    let fs = f64::from(rate);
    let active = sweep.active();
    let rec_s = recording.len() as f64 / fs;
    if recording.len() < active.len() {
        return Err(CalibrateError::TooShort {
            recording_s: rec_s,
            needed_s: active.len() as f64 / fs,
        });
    }
    let peak = recording.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let peak_dbfs = 20.0 * f64::from(peak).max(1e-12).log10();
    if peak_dbfs < SILENCE_DBFS {
        return Err(CalibrateError::Silent { peak_dbfs });
    }
    let clipped = recording.iter().filter(|s| s.abs() >= CLIP_LEVEL).count();
    if clipped > 0 {
        let first = recording
            .iter()
            .position(|s| s.abs() >= CLIP_LEVEL)
            .unwrap_or(0);
        return Err(CalibrateError::Clipped {
            samples: clipped,
            first_s: first as f64 / fs,
        });
    }

    let reference = sweep.samples();
    let h = deconvolve(reference, recording, fs, sweep.band_hz());
    let n = h.len();
    let (p, hp) = h.iter().enumerate().fold((0, 0.0f64), |(bi, bv), (i, &v)| {
        if v.abs() > bv { (i, v.abs()) } else { (bi, bv) }
    });
    // The noise floor from the span the recording and the negative times
    // cover: outside them the circular result is near zero for any input and
    // would flatter the ratio.
    let mut mags: Vec<f64> = h[..recording.len()]
        .iter()
        .chain(&h[n - reference.len()..])
        .map(|v| v.abs())
        .collect();
    let mid = mags.len() / 2;
    let median = *mags.select_nth_unstable_by(mid, f64::total_cmp).1;
    let sigma = median * 1.4826;
    let peak_to_noise_db = if sigma > 0.0 {
        20.0 * (hp / sigma).log10()
    } else {
        f64::INFINITY
    };
    if peak_to_noise_db.is_nan() || peak_to_noise_db < MIN_PEAK_TO_NOISE_DB {
        return Err(CalibrateError::NoSweep {
            peak_to_noise_db,
            needed_db: MIN_PEAK_TO_NOISE_DB,
        });
    }
    // Peaks past the recording's end are negative delays (circular wrap).
    let start = if p < recording.len() {
        p as f64
    } else {
        p as f64 - n as f64
    };
    if start < 0.0 || p + active.end > recording.len() {
        return Err(CalibrateError::Truncated {
            start_s: (start + active.start as f64) / fs,
            sweep_s: active.len() as f64 / fs,
            recording_s: rec_s,
        });
    }
    let pre = ((options.pre_ms * 1e-3 * fs) as usize).max(1);
    let post = ((options.post_ms * 1e-3 * fs) as usize).max(1);
    let take = |centre: isize, before: usize, after: usize| -> Vec<f64> {
        (0..before + after)
            .map(|i| h[(centre - before as isize + i as isize).rem_euclid(n as isize) as usize])
            .collect()
    };
    let ir = take(p as isize, pre, post);
    // Harmonic levels are read at 1 kHz excitation (lower if the harmonic
    // would pass 0.45 fs), like a THD figure.
    let level_at = |x: &[f64], f: f64| {
        let w = 2.0 * std::f64::consts::PI * f / fs;
        let (re, im) = x.iter().enumerate().fold((0.0, 0.0), |(re, im), (i, v)| {
            (re + v * (w * i as f64).cos(), im - v * (w * i as f64).sin())
        });
        (re * re + im * im).sqrt()
    };
    let l = sweep.rate_constant_s();
    let harmonics = (2..=options.max_harmonic)
        .map(|k| {
            let off = l * (k as f64).ln() * fs;
            let gap = (l * (k as f64 / (k - 1) as f64).ln() * fs) as usize;
            let after = gap.saturating_sub(pre).clamp(1, post);
            let before = pre.min(gap / 2).max(1);
            let hir = take(p as isize - off.round() as isize, before, after);
            let f0 = 1000f64.min(0.45 * fs / k as f64);
            let ratio = level_at(&hir, k as f64 * f0) / level_at(&ir, f0).max(1e-300);
            let level_db = 20.0 * ratio.max(1e-15).log10();
            Harmonic {
                order: k,
                ir: hir,
                level_db,
            }
        })
        .collect();
    Ok(Measurement {
        sample_rate: rate,
        ir,
        peak_index: pre,
        delay_s: p as f64 / fs,
        band_hz: sweep.band_hz(),
        peak_to_noise_db,
        harmonics,
    })
}

/// `recording / reference` by spectral division, regularised (Kirkeby) so
/// nothing outside the swept band is amplified. Circular over a length that
/// holds both, so negative times (the harmonics) wrap to the end.
fn deconvolve(reference: &[f32], recording: &[f32], fs: f64, band: (f64, f64)) -> Vec<f64> {
    let n = (reference.len() + recording.len()).next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let spectrum = |x: &[f32]| {
        let mut buf = vec![0.0f64; n];
        for (b, &s) in buf.iter_mut().zip(x) {
            *b = f64::from(s);
        }
        let mut out = fwd.make_output_vec();
        fwd.process(&mut buf, &mut out)
            .expect("lengths match the plan");
        out
    };
    let x = spectrum(reference);
    // 5 ms fades at the recording's edges: an abrupt start of background
    // noise would otherwise deconvolve to a loud high-frequency burst.
    let fade = ((0.005 * fs) as usize).min(recording.len() / 4).max(1);
    let mut faded = recording.to_vec();
    let len = faded.len();
    for i in 0..fade {
        let g = (0.5 - 0.5 * (std::f64::consts::PI * i as f64 / fade as f64).cos()) as f32;
        faded[i] *= g;
        faded[len - 1 - i] *= g;
    }
    let mut y = spectrum(&faded);
    let max_power = x.iter().map(|c| c.norm_sqr()).fold(0.0, f64::max);
    // Regularisation: negligible inside the band, dominant outside, with a
    // one-octave raised-cosine transition below the band and an eighth of
    // an octave inside its top (where the fade-out leaves little energy). `weight` = |X|² / (|X|² + ε) is the band limit this imposes.
    let (lo, hi) = (band.0, band.1 * 2f64.powf(-0.125));
    let mut weight = Vec::with_capacity(x.len());
    for (k, (yk, xk)) in y.iter_mut().zip(&x).enumerate() {
        let f = k as f64 * fs / n as f64;
        let inside = edge(f / lo, 1.0) * edge(hi / f.max(1e-9), 0.125);
        let eps = max_power * (1e-9 + (1.0 - inside));
        let p = xk.norm_sqr();
        *yk = *yk * xk.conj() / (p + eps);
        // Only the low edge matters: the high one rings for a fraction of a ms.
        weight.push(if f * f < lo * hi { p / (p + eps) } else { 1.0 });
    }
    // That band limit is zero-phase: its low edge would ring for hundreds of
    // ms before the peak, where a window cuts it and spoils the bass. Give
    // the low edge minimum phase instead (the high edge stays zero-phase, so
    // the peak stays on the true delay).
    let phase = minimum_phase(&weight, &mut planner);
    for (yk, ph) in y.iter_mut().zip(phase) {
        *yk *= Complex64::from_polar(1.0, ph);
    }
    y[0] = Complex64::new(y[0].re, 0.0);
    let last = y.len() - 1;
    y[last] = Complex64::new(y[last].re, 0.0);
    let mut out = inv.make_output_vec();
    inv.process(&mut y, &mut out)
        .expect("lengths match the plan");
    let scale = 1.0 / n as f64;
    out.iter_mut().for_each(|v| *v *= scale);
    out
}

/// 1 at ratio ≥ 1, 0 at `octaves` below, raised cosine in between.
fn edge(ratio: f64, octaves: f64) -> f64 {
    let oct = ratio.max(1e-12).log2();
    if oct >= 0.0 {
        1.0
    } else if oct <= -octaves {
        0.0
    } else {
        0.5 + 0.5 * (std::f64::consts::PI * oct / octaves).cos()
    }
}

/// The phase of the minimum-phase filter whose magnitude is `magnitude`
/// (bins 0..=n/2 of a length-n real FFT), by the folded real cepstrum.
fn minimum_phase(magnitude: &[f64], planner: &mut RealFftPlanner<f64>) -> Vec<f64> {
    let n = (magnitude.len() - 1) * 2;
    let inv = planner.plan_fft_inverse(n);
    let fwd = planner.plan_fft_forward(n);
    let mut logm: Vec<Complex64> = magnitude
        .iter()
        .map(|&m| Complex64::new(m.max(1e-30).ln(), 0.0))
        .collect();
    let mut cep = inv.make_output_vec();
    inv.process(&mut logm, &mut cep)
        .expect("lengths match the plan");
    let scale = 1.0 / n as f64;
    for (i, c) in cep.iter_mut().enumerate() {
        *c *= scale
            * match i {
                0 => 1.0,
                i if i == n / 2 => 1.0,
                i if i < n / 2 => 2.0,
                _ => 0.0,
            };
    }
    let mut spec = fwd.make_output_vec();
    fwd.process(&mut cep, &mut spec)
        .expect("lengths match the plan");
    spec.iter().map(|c| c.im).collect()
}
