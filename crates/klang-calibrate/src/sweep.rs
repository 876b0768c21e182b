//! The exponential sine sweep (Farina) and its inverse filter.

use std::f64::consts::PI;
use std::ops::Range;

use crate::error::{CalibrateError, check};

/// How to make a sweep. `SweepParams::new(rate)` gives klang's defaults: 10 s
/// from 10 Hz to 22 kHz (or 0.46 × the rate, whichever is lower) at −20 dBFS,
/// 0.5 s of silence before and 2 s after (for the room's decay).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepParams {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Frequency at the start, Hz.
    pub start_hz: f64,
    /// Frequency at the end, Hz.
    pub end_hz: f64,
    /// Length of the sweep itself (without the silences), s.
    pub duration_s: f64,
    /// Peak level in dBFS (at most 0).
    pub level_dbfs: f64,
    /// Raised-cosine fade-in, s (it covers the lowest part of the band).
    pub fade_in_s: f64,
    /// Raised-cosine fade-out, s.
    pub fade_out_s: f64,
    /// Silence before the sweep, s.
    pub silence_before_s: f64,
    /// Silence after the sweep, s, so the recording catches the room's decay.
    pub silence_after_s: f64,
}

impl SweepParams {
    /// klang's defaults at `sample_rate`.
    pub fn new(sample_rate: u32) -> SweepParams {
        SweepParams {
            sample_rate,
            start_hz: 10.0,
            end_hz: (0.46 * f64::from(sample_rate)).min(22_000.0),
            duration_s: 10.0,
            level_dbfs: -20.0,
            fade_in_s: 0.1,
            fade_out_s: 0.01,
            silence_before_s: 0.5,
            silence_after_s: 2.0,
        }
    }

    fn validate(&self) -> Result<(), CalibrateError> {
        let fs = f64::from(self.sample_rate);
        check(
            (8_000.0..=768_000.0).contains(&fs),
            "sample rate",
            fs,
            "must be 8000 to 768000 Hz",
        )?;
        check(
            self.start_hz >= 1.0,
            "start frequency",
            self.start_hz,
            "must be at least 1 Hz",
        )?;
        check(
            self.end_hz > 2.0 * self.start_hz && self.end_hz < 0.5 * fs,
            "end frequency",
            self.end_hz,
            format!(
                "must be above twice the start frequency and below half the sample rate ({} Hz)",
                fs / 2.0
            ),
        )?;
        check(
            (0.5..=120.0).contains(&self.duration_s),
            "sweep length",
            self.duration_s,
            "must be 0.5 to 120 s",
        )?;
        check(
            (-100.0..=0.0).contains(&self.level_dbfs),
            "sweep level",
            self.level_dbfs,
            "must be -100 to 0 dBFS",
        )?;
        check(
            self.fade_in_s >= 0.0 && self.fade_out_s >= 0.0,
            "fade",
            self.fade_in_s.min(self.fade_out_s),
            "fades must not be negative",
        )?;
        check(
            self.fade_in_s + self.fade_out_s <= 0.5 * self.duration_s,
            "fade",
            self.fade_in_s + self.fade_out_s,
            "fades together must take at most half the sweep",
        )?;
        check(
            (0.0..=60.0).contains(&self.silence_before_s)
                && (0.0..=60.0).contains(&self.silence_after_s),
            "silence",
            self.silence_before_s.max(self.silence_after_s),
            "silences must be 0 to 60 s",
        )
    }
}

/// A sweep: its samples (with the silences) and what the analysis needs to
/// know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    sample_rate: u32,
    samples: Vec<f32>,
    active: Range<usize>,
    start_hz: f64,
    end_hz: f64,
    /// Farina's rate constant `L = T / ln(f2 / f1)`, s: frequency rises by e every `L` seconds.
    rate_constant_s: f64,
}

impl Sweep {
    /// Generates the sweep `x(t) = A sin(2π f1 L (e^(t/L) − 1))`, faded in and out.
    pub fn generate(params: &SweepParams) -> Result<Sweep, CalibrateError> {
        params.validate()?;
        let fs = f64::from(params.sample_rate);
        let n = (params.duration_s * fs).round() as usize;
        let before = (params.silence_before_s * fs).round() as usize;
        let after = (params.silence_after_s * fs).round() as usize;
        let l = params.duration_s / (params.end_hz / params.start_hz).ln();
        let amp = 10f64.powf(params.level_dbfs / 20.0);
        let fade_in = (params.fade_in_s * fs).round() as usize;
        let fade_out = (params.fade_out_s * fs).round() as usize;
        let mut samples = vec![0.0f32; before + n + after];
        for (i, s) in samples[before..before + n].iter_mut().enumerate() {
            let t = i as f64 / fs;
            let phase = 2.0 * PI * params.start_hz * l * ((t / l).exp() - 1.0);
            let mut g = amp;
            if i < fade_in {
                g *= 0.5 - 0.5 * (PI * i as f64 / fade_in as f64).cos();
            }
            let from_end = n - 1 - i;
            if from_end < fade_out {
                g *= 0.5 - 0.5 * (PI * from_end as f64 / fade_out as f64).cos();
            }
            *s = (g * phase.sin()) as f32;
        }
        Ok(Sweep {
            sample_rate: params.sample_rate,
            samples,
            active: before..before + n,
            start_hz: params.start_hz,
            end_hz: params.end_hz,
            rate_constant_s: l,
        })
    }

    /// Recognises a sweep read back from a file (e.g. one `klang sweep`
    /// wrote, or another tool's exponential sweep): finds where it plays and
    /// estimates its band and rate from its zero crossings. The samples
    /// themselves stay the reference for the deconvolution, so the estimate
    /// only places the harmonics and the valid band.
    pub fn from_samples(samples: &[f32], sample_rate: u32) -> Result<Sweep, CalibrateError> {
        let fs = f64::from(sample_rate);
        let not = |reason: &str| CalibrateError::NotASweep {
            reason: reason.to_owned(),
        };
        let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        if peak <= 1e-5 {
            return Err(not("it is silent"));
        }
        let thr = peak * 0.01;
        let first = samples.iter().position(|s| s.abs() > thr).unwrap_or(0);
        let last = samples.iter().rposition(|s| s.abs() > thr).unwrap_or(0) + 1;
        if ((last - first) as f64) < 0.25 * fs {
            return Err(not("it plays for less than 0.25 s"));
        }
        // Local frequency from zero crossings in 50 ms blocks of the middle 80 %.
        let block = (0.05 * fs) as usize;
        let (lo, hi) = (first + (last - first) / 10, last - (last - first) / 10);
        let mut pts = Vec::new();
        let mut i = lo;
        while i + block <= hi {
            let crossings = samples[i..i + block]
                .windows(2)
                .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
                .count();
            let f = crossings as f64 / (2.0 * 0.05);
            if crossings >= 20 && f < 0.4 * fs {
                pts.push(((i - first) as f64 / fs + 0.025, f.ln()));
            }
            i += block;
        }
        if pts.len() < 4 {
            return Err(not("too few cycles to follow its frequency"));
        }
        let n = pts.len() as f64;
        let (mt, my) = (
            pts.iter().map(|p| p.0).sum::<f64>() / n,
            pts.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let sxy: f64 = pts.iter().map(|p| (p.0 - mt) * (p.1 - my)).sum();
        let sxx: f64 = pts.iter().map(|p| (p.0 - mt).powi(2)).sum();
        let slope = sxy / sxx;
        let resid = (pts
            .iter()
            .map(|p| (p.1 - my - slope * (p.0 - mt)).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        let dur = (last - first) as f64 / fs;
        if slope.is_nan() || slope * dur < 2f64.ln() || resid > 0.1 {
            return Err(not(
                "its frequency does not rise exponentially over an octave or more",
            ));
        }
        let start_hz = (my - slope * mt).exp().max(1.0);
        let end_hz = (my + slope * (dur - mt)).exp().min(0.5 * fs);
        Ok(Sweep {
            sample_rate,
            samples: samples.to_vec(),
            active: first..last,
            start_hz,
            end_hz,
            rate_constant_s: 1.0 / slope,
        })
    }

    /// The samples to play, silences included (mono; play it on every channel
    /// that should be measured).
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The samples where the sweep plays (without the silences).
    pub fn active(&self) -> Range<usize> {
        self.active.clone()
    }

    /// The swept band in Hz.
    pub fn band_hz(&self) -> (f64, f64) {
        (self.start_hz, self.end_hz)
    }

    /// Farina's `L`: the k-th harmonic's impulse response lies `L ln k` seconds
    /// before the linear one.
    pub fn rate_constant_s(&self) -> f64 {
        self.rate_constant_s
    }

    /// Farina's inverse filter: the sweep reversed in time, its amplitude
    /// falling 6 dB per octave so that sweep ∗ inverse is flat, scaled to unit
    /// gain at the band's geometric centre. [`crate::measure()`] divides spectra
    /// instead (exact in band); this is for tools that convolve.
    pub fn inverse_filter(&self) -> Vec<f32> {
        let fs = f64::from(self.sample_rate);
        let s = &self.samples[self.active.clone()];
        let l = self.rate_constant_s;
        // Amplitude proportional to the original instantaneous frequency.
        let last = s.len() as f64 - 1.0;
        let inv: Vec<f64> = s
            .iter()
            .enumerate()
            .rev()
            .map(|(i, &x)| f64::from(x) * ((i as f64 - last) / fs / l).exp())
            .collect();
        // Gain of sweep ∗ inverse at the centre frequency, by direct DFTs.
        let fc = (self.start_hz * self.end_hz).sqrt();
        let w = 2.0 * PI * fc / fs;
        let dft = |x: &mut dyn Iterator<Item = f64>| {
            let (mut re, mut im) = (0.0, 0.0);
            for (n, v) in x.enumerate() {
                re += v * (w * n as f64).cos();
                im -= v * (w * n as f64).sin();
            }
            (re * re + im * im).sqrt()
        };
        let g = dft(&mut s.iter().map(|&x| f64::from(x))) * dft(&mut inv.iter().copied());
        inv.iter().map(|v| (v / g) as f32).collect()
    }
}
