//! Measurements on recordings: where the signal is, and the level of a tone in it.

use std::ops::Range;

/// `20·log10(x)`.
pub fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

/// The part of `x` where the played signal is steady: from the first to the last sample
/// above a tenth of the peak, minus a quarter second at each end (start-up of the player,
/// filter transients, the fade of the end). Empty if there is no signal.
pub fn active_range(x: &[f32], rate: u32) -> Range<usize> {
    let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if peak == 0.0 {
        return 0..0;
    }
    let loud = |v: &&f32| v.abs() > peak * 0.1;
    let first = x.iter().position(|v| loud(&v)).unwrap_or(0);
    let last = x.iter().rposition(|v| loud(&v)).unwrap_or(0);
    let trim = rate as usize / 4;
    let (a, b) = (first + trim, last.saturating_sub(trim));
    if a < b { a..b } else { 0..0 }
}

/// The peak amplitude of the `freq` component of `x` (a single-bin DFT over the longest
/// prefix holding a whole number of periods, which is exact for a steady sine whose period
/// is a whole number of samples, e.g. 50 Hz, 1 kHz and 3 kHz at 48 and 96 kHz).
pub fn tone_amplitude(x: &[f32], rate: u32, freq: f64) -> f64 {
    let period = f64::from(rate) / freq;
    let periods = (x.len() as f64 / period).floor();
    let n = (periods * period).round() as usize;
    if n == 0 {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for (i, &v) in x[..n].iter().enumerate() {
        let (s, c) = (w * i as f64).sin_cos();
        re += f64::from(v) * c;
        im += f64::from(v) * s;
    }
    2.0 * re.hypot(im) / n as f64
}

/// The median of [`tone_amplitude`] over consecutive chunks of about 20 ms (a whole
/// number of periods each). A scheduling hiccup of a loaded test machine (a dropped
/// quantum in the recording) spoils a few chunks, not the measurement. Short chunks keep
/// it so when the hiccups are frequent: one lost 256-frame quantum at 96 kHz lowers a
/// 100 ms chunk by 0.24 dB, and on a busy two-core CI machine one came every ~100 ms.
pub fn tone_amplitude_median(x: &[f32], rate: u32, freq: f64) -> f64 {
    let period = f64::from(rate) / freq;
    let chunk = ((0.02 * f64::from(rate) / period).ceil().max(1.0) * period).round() as usize;
    let mut levels: Vec<f64> = x
        .chunks_exact(chunk.max(1))
        .map(|c| tone_amplitude(c, rate, freq))
        .collect();
    if levels.is_empty() {
        return tone_amplitude(x, rate, freq);
    }
    levels.sort_by(f64::total_cmp);
    levels[levels.len() / 2]
}

/// Root mean square of `x`.
pub fn rms(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tone;

    #[test]
    fn a_two_tone_signal_measures_each_partial_exactly() {
        let tone = Tone::new(48_000, 1.0).with(50.0, 0.2).with(3000.0, 0.05);
        let x: Vec<f32> = (0..48_000).map(|i| tone.sample(i)).collect();
        assert!((tone_amplitude(&x[1000..40_000], 48_000, 50.0) - 0.2).abs() < 1e-4);
        assert!((tone_amplitude(&x[1000..40_000], 48_000, 3000.0) - 0.05).abs() < 1e-4);
        assert!(tone_amplitude(&x, 48_000, 1000.0) < 1e-4);
    }

    #[test]
    fn the_median_level_ignores_a_dropout() {
        let tone = Tone::new(96_000, 1.0).with(50.0, 0.2).with(3000.0, 0.05);
        let mut x: Vec<f32> = (0..96_000).map(|i| tone.sample(i)).collect();
        x[30_000..30_064].fill(0.0); // one lost 64-frame quantum
        assert!((tone_amplitude_median(&x, 96_000, 50.0) - 0.2).abs() < 1e-4);
        assert!((tone_amplitude(&x, 96_000, 50.0) - 0.2).abs() > 1e-4);
    }

    #[test]
    fn the_median_level_ignores_a_lost_quantum_every_100_ms() {
        let tone = Tone::new(96_000, 2.0).with(50.0, 0.25).with(3000.0, 0.25);
        let mut x: Vec<f32> = (0..192_000).map(|i| tone.sample(i)).collect();
        for start in (5_000..190_000).step_by(9_600) {
            x[start..start + 256].fill(0.0);
        }
        for f in [50.0, 3000.0] {
            let got = db(tone_amplitude_median(&x, 96_000, f) / 0.25);
            assert!(got.abs() < 0.02, "{f} Hz: {got:.3} dB");
        }
    }

    #[test]
    fn the_active_range_skips_silence_and_the_edges() {
        let mut x = vec![0.0f32; 48_000];
        x.extend((0..96_000).map(|i| (i as f32 * 0.1).sin() * 0.5));
        x.extend(vec![0.0f32; 48_000]);
        let r = active_range(&x, 48_000);
        assert!(
            r.start >= 48_000 + 12_000 && r.start < 48_000 + 12_100,
            "{r:?}"
        );
        assert!(
            r.end <= 144_000 - 12_000 && r.end > 144_000 - 12_100,
            "{r:?}"
        );
        assert_eq!(active_range(&[0.0; 100], 48_000), 0..0);
    }
}
