//! Two small processors that exercise the engine without klang-dsp: a gain (two outputs)
//! and a Linkwitz-Riley 4th-order split (three outputs, SUB = low-passed mono sum). The
//! end-to-end tests use them, and they make a handy "is the wiring right" check.

use crate::Processor;

/// A fixed gain on both channels, in dB. Control: a new gain in dB (applied at once).
#[derive(Debug, Clone)]
pub struct Gain {
    gain: f32,
}

impl Gain {
    /// A gain of `db` decibels.
    pub fn new(db: f32) -> Self {
        Gain {
            gain: db_to_linear(db),
        }
    }
}

impl Processor for Gain {
    type Control = f32;

    fn process(&mut self, input: &[f32], output: &mut [f32]) {
        for (o, i) in output.iter_mut().zip(input) {
            *o = i * self.gain;
        }
    }

    fn output_channels(&self) -> usize {
        2
    }

    fn set_sample_rate(&mut self, _rate: u32) {}

    fn control(&mut self, db: f32) {
        self.gain = db_to_linear(db);
    }
}

/// `10^(db/20)`.
pub fn db_to_linear(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// One second-order section, transposed direct form II, f64 state.
#[derive(Debug, Clone, Copy, Default)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    s: [f64; 2],
}

impl Biquad {
    /// RBJ cookbook Butterworth (Q = 1/√2) low- or high-pass at `f0`.
    fn butterworth(high: bool, f0: f64, rate: f64) -> Self {
        let w0 = 2.0 * std::f64::consts::PI * f0 / rate;
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        let (b0, b1) = if high {
            ((1.0 + cos) / 2.0, -(1.0 + cos))
        } else {
            ((1.0 - cos) / 2.0, 1.0 - cos)
        };
        Biquad {
            b: [b0 / a0, b1 / a0, b0 / a0],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
            s: [0.0; 2],
        }
    }

    fn tick(&mut self, x: f64) -> f64 {
        let y = self.b[0] * x + self.s[0];
        self.s[0] = self.b[1] * x - self.a[0] * y + self.s[1];
        self.s[1] = self.b[2] * x - self.a[1] * y;
        y
    }
}

/// A Linkwitz-Riley 4th-order section: two identical Butterworth biquads in series.
#[derive(Debug, Clone, Copy, Default)]
struct Lr4([Biquad; 2]);

impl Lr4 {
    fn new(high: bool, f0: f64, rate: f64) -> Self {
        let q = Biquad::butterworth(high, f0, rate);
        Lr4([q, q])
    }
    fn tick(&mut self, x: f64) -> f64 {
        let y = self.0[0].tick(x);
        self.0[1].tick(y)
    }
}

/// Control of [`Split`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SplitControl {
    /// Gain of the SUB output in dB.
    SubGainDb(f32),
}

/// A 2.1 crossover: L and R high-passed, SUB the low-passed mono sum `(L + R) / 2`, both
/// Linkwitz-Riley 4th order at the same frequency.
#[derive(Debug, Clone)]
pub struct Split {
    crossover_hz: f64,
    high: [Lr4; 2],
    low: Lr4,
    sub_gain: f32,
}

impl Split {
    /// A split at `crossover_hz`, designed for `rate` Hz.
    pub fn new(crossover_hz: f64, rate: u32) -> Self {
        let mut s = Split {
            crossover_hz,
            high: [Lr4::default(); 2],
            low: Lr4::default(),
            sub_gain: 1.0,
        };
        s.set_sample_rate(rate);
        s
    }

    /// The analytic magnitude (linear) of the SUB and the mains at `freq` for a mono input,
    /// at `rate`: what a measurement of the running engine must show.
    pub fn magnitudes(&self, freq: f64, rate: u32) -> (f64, f64) {
        let resp = |high: bool| {
            let q = Biquad::butterworth(high, self.crossover_hz, f64::from(rate));
            let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
            let (c1, s1, c2, s2) = (w.cos(), -w.sin(), (2.0 * w).cos(), -(2.0 * w).sin());
            let num = (
                q.b[0] + q.b[1] * c1 + q.b[2] * c2,
                q.b[1] * s1 + q.b[2] * s2,
            );
            let den = (1.0 + q.a[0] * c1 + q.a[1] * c2, q.a[0] * s1 + q.a[1] * s2);
            (num.0.hypot(num.1) / den.0.hypot(den.1)).powi(2)
        };
        (resp(false) * f64::from(self.sub_gain), resp(true))
    }
}

impl Processor for Split {
    type Control = SplitControl;

    fn process(&mut self, input: &[f32], output: &mut [f32]) {
        for (i, o) in input.chunks_exact(2).zip(output.chunks_exact_mut(3)) {
            let (l, r) = (f64::from(i[0]), f64::from(i[1]));
            o[0] = self.high[0].tick(l) as f32;
            o[1] = self.high[1].tick(r) as f32;
            o[2] = (self.low.tick((l + r) * 0.5) as f32) * self.sub_gain;
        }
    }

    fn output_channels(&self) -> usize {
        3
    }

    fn set_sample_rate(&mut self, rate: u32) {
        let rate = f64::from(rate);
        self.high = [Lr4::new(true, self.crossover_hz, rate); 2];
        self.low = Lr4::new(false, self.crossover_hz, rate);
    }

    fn control(&mut self, control: SplitControl) {
        match control {
            SplitControl::SubGainDb(db) => self.sub_gain = db_to_linear(db),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone_amplitude(p: &mut Split, freq: f64, rate: u32, channel: usize) -> f64 {
        let n = rate as usize; // one second
        let input: Vec<f32> = (0..n)
            .flat_map(|i| {
                let x = (0.5
                    * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as f32;
                [x, x]
            })
            .collect();
        let mut out = vec![0.0; n * 3];
        p.process(&input, &mut out);
        // Peak of the last half second, after the filters settled.
        out.chunks_exact(3)
            .skip(n / 2)
            .map(|f| f64::from(f[channel]).abs())
            .fold(0.0, f64::max)
            / 0.5
    }

    #[test]
    fn the_crossover_is_minus_six_db_on_both_sides_at_the_corner() {
        let p = Split::new(120.0, 48_000);
        let (sub, mains) = p.magnitudes(120.0, 48_000);
        assert!((20.0 * sub.log10() + 6.02).abs() < 0.05, "{sub}");
        assert!((20.0 * mains.log10() + 6.02).abs() < 0.05, "{mains}");
    }

    #[test]
    fn measured_magnitudes_match_the_analytic_ones() {
        for rate in [48_000, 96_000] {
            for freq in [40.0, 1000.0] {
                let mut p = Split::new(120.0, rate);
                let (sub, mains) = p.magnitudes(freq, rate);
                let got_sub = tone_amplitude(&mut p.clone(), freq, rate, 2);
                let got_mains = tone_amplitude(&mut p, freq, rate, 0);
                assert!(
                    (got_sub - sub).abs() < 2e-3,
                    "{rate} {freq} sub {got_sub} vs {sub}"
                );
                assert!(
                    (got_mains - mains).abs() < 2e-3,
                    "{rate} {freq} mains {got_mains} vs {mains}"
                );
            }
        }
    }
}
