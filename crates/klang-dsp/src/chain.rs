//! The whole speaker processor: input gain → low cut → parametric EQ → graphic
//! EQ → tone → loudness → crossover (mains high pass, mono-summed sub low pass
//! with gain and delay) → per-output trim → volume (ramped, hard maximum) →
//! limiter (ceiling never exceeded).
//!
//! **Invariant:** [`Chain::process`] and the volume setters never allocate, lock
//! or fail; every buffer is allocated in [`Chain::new`].

use crate::biquad::{
    BiquadCoefficients, Complex, PassBand, butterworth, db_to_gain, linkwitz_riley,
};
use crate::cascade::Cascade;
use crate::config::{Config, ConfigError, EqBand, FilterType, MAX_SUB_DELAY_MS, Slope};
use crate::graphic;
use crate::loudness::{self, LoudnessTable};

/// Frames per internal block (buffers are this long).
const BLOCK: usize = 1024;
/// Frames between loudness updates while the volume ramps: 64 frames is
/// 1.3 ms at 48 kHz, so loudness follows a ramp without audible steps.
const CONTROL_BLOCK: usize = 64;
/// Lowest volume; anything below is treated as this (−150 dB is silence for f32).
pub const MIN_VOLUME_DB: f64 = -150.0;

/// Building a chain failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChainError {
    /// The configuration is invalid (at this sample rate).
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
}

/// The stereo (or 2.1) processor.
#[derive(Debug)]
pub struct Chain {
    fs: f64,
    config: Config,
    input_gain: f64,
    /// Low cut, PEQ, graphic EQ.
    pre: Cascade<2>,
    /// Bass and treble shelves, skipped while both are at 0 dB (changeable
    /// live with [`Chain::set_tone_db`]).
    tone: Cascade<2>,
    tone_active: bool,
    /// Loudness sections, skipped while they are all identities (at or above
    /// the reference volume).
    loudness: Cascade<2>,
    loud_active: bool,
    loud: Option<LoudnessTable>,
    /// Attenuation (dB below the loudness reference) the loudness sections are set for.
    loud_att: f64,
    mains: Cascade<2>,
    sub: Option<Sub>,
    trim: [f64; 3],
    volume: VolumeRamp,
    limiter: PeakLimiter,
    buf: Vec<[f64; 2]>,
    sub_buf: Vec<[f64; 1]>,
}

#[derive(Debug)]
struct Sub {
    lp: Cascade<1>,
    /// Sub gain × polarity (LR2 inverts the sub so that the sum is all-pass).
    gain: f64,
    delay: usize,
    ring: Vec<f64>,
    pos: usize,
}

/// Linear-in-dB volume ramp computed multiplicatively (no `powf` per sample).
#[derive(Debug)]
struct VolumeRamp {
    max_db: f64,
    ramp_frames: f64,
    gain: f64,
    db: f64,
    target_db: f64,
    ratio: f64,
    step_db: f64,
    remaining: usize,
}

impl VolumeRamp {
    fn set(&mut self, db: f64, ramp: bool) {
        if db.is_nan() {
            return;
        }
        let db = db.clamp(MIN_VOLUME_DB, self.max_db);
        self.target_db = db;
        let frames = if ramp {
            self.ramp_frames.round() as usize
        } else {
            0
        };
        if frames == 0 || db == self.db {
            self.db = db;
            self.gain = db_to_gain(db);
            self.remaining = 0;
        } else {
            self.step_db = (db - self.db) / frames as f64;
            self.ratio = db_to_gain(self.step_db);
            self.remaining = frames;
        }
    }
    /// The gain for the next frame.
    #[inline]
    fn next(&mut self) -> f64 {
        if self.remaining > 0 {
            self.remaining -= 1;
            self.gain *= self.ratio;
            self.db += self.step_db;
            if self.remaining == 0 {
                self.db = self.target_db;
                self.gain = db_to_gain(self.target_db);
            }
        }
        self.gain
    }
}

/// Zero-latency peak limiter, linked over all outputs: the gain drops instantly
/// to exactly what keeps the frame's peak at the ceiling, and recovers with a
/// one-pole release. A final clamp in the output format removes the last
/// rounding error, so the ceiling holds for every sample.
#[derive(Debug)]
struct PeakLimiter {
    ceiling: f64,
    ceiling_f32: f32,
    gain: f64,
    release: f64,
}

impl PeakLimiter {
    fn new(ceiling_db: f64, release_ms: f64, fs: f64) -> Self {
        let ceiling = db_to_gain(ceiling_db);
        // The largest f32 not above the ceiling.
        let mut c32 = ceiling as f32;
        if f64::from(c32) > ceiling {
            c32 = f32::from_bits(c32.to_bits() - 1);
        }
        PeakLimiter {
            ceiling,
            ceiling_f32: c32,
            gain: 1.0,
            release: (-1.0 / (release_ms * 1e-3 * fs)).exp(),
        }
    }
    #[inline]
    fn gain_for(&mut self, peak: f64) -> f64 {
        let needed = if peak > self.ceiling {
            self.ceiling / peak
        } else {
            1.0
        };
        let released = needed + (self.gain - needed) * self.release;
        self.gain = needed.min(released);
        // Snap back to exactly 1 once recovered, so the idle fast path resumes.
        if self.gain > 1.0 - 1e-9 {
            self.gain = 1.0;
        }
        self.gain
    }
}

/// The biquad for one parametric band.
pub fn band_coefficients(band: &EqBand, fs: f64) -> BiquadCoefficients {
    type C = BiquadCoefficients;
    let (f, q, g) = (band.freq, band.q, band.gain_db);
    match band.kind {
        FilterType::Peak => C::peak(fs, f, q, g),
        FilterType::Lowshelf => match band.slope {
            Some(s) => C::low_shelf_slope(fs, f, s, g),
            None => C::low_shelf(fs, f, q, g),
        },
        FilterType::Highshelf => match band.slope {
            Some(s) => C::high_shelf_slope(fs, f, s, g),
            None => C::high_shelf(fs, f, q, g),
        },
        FilterType::Lowpass => C::lowpass(fs, f, q),
        FilterType::Highpass => C::highpass(fs, f, q),
        FilterType::Bandpass => C::bandpass(fs, f, q),
        FilterType::Notch => C::notch(fs, f, q),
        FilterType::Allpass => C::allpass(fs, f, q),
        FilterType::Lowpass1 => C::lowpass1(fs, f),
        FilterType::Highpass1 => C::highpass1(fs, f),
        FilterType::Lowshelf1 => C::low_shelf1(fs, f, g),
        FilterType::Highshelf1 => C::high_shelf1(fs, f, g),
        FilterType::Allpass1 => C::allpass1(fs, f),
    }
}

/// Crossover sections for one side.
fn crossover_sections(slope: Slope, fs: f64, f: f64, band: PassBand) -> Vec<BiquadCoefficients> {
    match slope {
        Slope::LR2 => linkwitz_riley(fs, f, 2, band),
        Slope::LR4 => linkwitz_riley(fs, f, 4, band),
        Slope::LR8 => linkwitz_riley(fs, f, 8, band),
        Slope::BW2 => butterworth(fs, f, 2, band),
        Slope::BW4 => butterworth(fs, f, 4, band),
    }
}

/// The tone shelves (RBJ, slope 1); identities at 0 dB.
fn tone_sections(
    fs: f64,
    bass_freq: f64,
    bass_db: f64,
    treble_freq: f64,
    treble_db: f64,
) -> [BiquadCoefficients; 2] {
    let shelf = |db: f64, c: BiquadCoefficients| {
        if db == 0.0 {
            BiquadCoefficients::IDENTITY
        } else {
            c
        }
    };
    [
        shelf(
            bass_db,
            BiquadCoefficients::low_shelf_slope(fs, bass_freq, 1.0, bass_db),
        ),
        shelf(
            treble_db,
            BiquadCoefficients::high_shelf_slope(fs, treble_freq, 1.0, treble_db),
        ),
    ]
}

/// The linear sections before tone and loudness, in order.
fn pre_sections(config: &Config, fs: f64) -> Vec<BiquadCoefficients> {
    let mut s = Vec::new();
    if config.low_cut_hz > 0.0 {
        s.extend(butterworth(fs, config.low_cut_hz, 2, PassBand::High));
    }
    s.extend(config.eq.iter().map(|b| band_coefficients(b, fs)));
    s.extend(graphic::design(&config.graphic_eq.gains_db, fs));
    s
}

impl Chain {
    /// Builds the processing chain. Fails if the config is invalid at this rate.
    pub fn new(config: &Config, sample_rate: u32) -> Result<Chain, ChainError> {
        config.validate_for_rate(sample_rate)?;
        let fs = f64::from(sample_rate);
        let pre = pre_sections(config, fs);
        let loud = config
            .loudness
            .enabled
            .then(|| LoudnessTable::new(fs, config.loudness.reference_phon));
        let (mains, sub) = match &config.crossover {
            Some(x) => {
                let hp = crossover_sections(x.slope, fs, x.freq, PassBand::High);
                let lp = crossover_sections(x.slope, fs, x.freq, PassBand::Low);
                let polarity = if x.slope == Slope::LR2 { -1.0 } else { 1.0 };
                let max_delay = (MAX_SUB_DELAY_MS * 1e-3 * fs).ceil() as usize;
                (
                    Cascade::new(&hp),
                    Some(Sub {
                        lp: Cascade::new(&lp),
                        gain: polarity * db_to_gain(x.sub_gain_db),
                        delay: (x.sub_delay_ms * 1e-3 * fs).round() as usize,
                        ring: vec![0.0; max_delay + 1],
                        pos: 0,
                    }),
                )
            }
            None => (Cascade::new(&[]), None),
        };
        let mut chain = Chain {
            fs,
            config: config.clone(),
            input_gain: db_to_gain(config.input_gain_db),
            pre: Cascade::new(&pre),
            tone: Cascade::new(&[BiquadCoefficients::IDENTITY; 2]),
            tone_active: false,
            loudness: Cascade::new(&[BiquadCoefficients::IDENTITY; loudness::SECTIONS]),
            loud_active: false,
            loud,
            loud_att: 0.0,
            mains,
            sub,
            trim: [
                db_to_gain(config.trim_db.l),
                db_to_gain(config.trim_db.r),
                db_to_gain(config.trim_db.sub),
            ],
            volume: VolumeRamp {
                max_db: config.volume.max_db,
                ramp_frames: config.volume.ramp_ms * 1e-3 * fs,
                gain: 1.0,
                db: 0.0,
                target_db: 0.0,
                ratio: 1.0,
                step_db: 0.0,
                remaining: 0,
            },
            limiter: PeakLimiter::new(config.limiter.ceiling_db, config.limiter.release_ms, fs),
            buf: vec![[0.0; 2]; BLOCK],
            sub_buf: vec![[0.0; 1]; BLOCK],
        };
        chain.set_tone_db(config.tone.bass_db, config.tone.treble_db);
        chain.volume.set(config.volume.default_db, false);
        chain.update_loudness(true);
        Ok(chain)
    }

    /// The configuration in effect: the one the chain was built from, with the
    /// tone controls as [`Chain::set_tone_db`] last set them.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The sample rate in Hz.
    pub fn sample_rate(&self) -> f64 {
        self.fs
    }

    /// Output channel names in interleaving order: `["L", "R"]` or `["L", "R", "SUB"]`.
    pub fn output_names(&self) -> &'static [&'static str] {
        if self.sub.is_some() {
            &["L", "R", "SUB"]
        } else {
            &["L", "R"]
        }
    }

    /// 2, or 3 with a subwoofer.
    pub fn output_channels(&self) -> usize {
        self.output_names().len()
    }

    /// Algorithmic latency: none (all filters are minimum-phase IIR and the
    /// limiter has no look-ahead; the sub delay is deliberate alignment).
    pub fn latency_frames(&self) -> usize {
        0
    }

    /// Starts a ramp to `db` (clamped to `volume.max_db`), taking `volume.ramp_ms`.
    pub fn set_volume_db(&mut self, db: f64) {
        self.volume.set(db, true);
    }

    /// Sets the volume at once (clamped to `volume.max_db`).
    pub fn set_volume_db_now(&mut self, db: f64) {
        self.volume.set(db, false);
        self.update_loudness(false);
    }

    /// Changes the tone controls (dB, clamped to ±30; NaN leaves a control as
    /// it is) at their configured frequencies. Real-time safe: no allocation,
    /// the shelves' coefficients change at the next block (keep steps small,
    /// as a remote's 1 dB steps are, to avoid clicks).
    pub fn set_tone_db(&mut self, bass_db: f64, treble_db: f64) {
        let limit = crate::config::MAX_EQ_GAIN_DB;
        let t = &mut self.config.tone;
        if !bass_db.is_nan() {
            t.bass_db = bass_db.clamp(-limit, limit);
        }
        if !treble_db.is_nan() {
            t.treble_db = treble_db.clamp(-limit, limit);
        }
        let sections = tone_sections(self.fs, t.bass_freq, t.bass_db, t.treble_freq, t.treble_db);
        self.tone_active = sections.iter().any(|c| *c != BiquadCoefficients::IDENTITY);
        for (k, c) in sections.into_iter().enumerate() {
            self.tone.set_coefficients(k, c);
        }
        if !self.tone_active {
            self.tone.reset();
        }
    }

    /// The tone controls now: (bass dB, treble dB).
    pub fn tone_db(&self) -> (f64, f64) {
        (self.config.tone.bass_db, self.config.tone.treble_db)
    }

    /// The volume now (moves during a ramp).
    pub fn volume_db(&self) -> f64 {
        self.volume.db
    }

    /// The volume a ramp is heading to.
    pub fn target_volume_db(&self) -> f64 {
        self.volume.target_db
    }

    /// Current limiter gain reduction in dB (0 = not limiting).
    pub fn limiter_reduction_db(&self) -> f64 {
        -20.0 * self.limiter.gain.log10()
    }

    fn attenuation(&self) -> f64 {
        self.config.loudness.reference_db - self.volume.db
    }

    /// Re-tunes the loudness sections if the volume moved by more than 0.05 dB.
    fn update_loudness(&mut self, force: bool) {
        let att = self.attenuation();
        if let Some(table) = &self.loud
            && (force
                || (att - self.loud_att).abs() > 0.05
                || (att <= 0.0) != (self.loud_att <= 0.0))
        {
            let sections = table.sections(att);
            self.loud_active = sections.iter().any(|c| *c != BiquadCoefficients::IDENTITY);
            for (k, c) in sections.into_iter().enumerate() {
                self.loudness.set_coefficients(k, c);
            }
            if !self.loud_active {
                self.loudness.reset();
            }
            self.loud_att = att;
        }
    }

    /// Processes `input` (interleaved stereo f32, `input.len() / 2` frames) into
    /// `output` (interleaved, [`Chain::output_channels`] per frame). Processes
    /// as many frames as both buffers hold. Never allocates, never fails.
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) {
        let outs = self.output_channels();
        let frames = (input.len() / 2).min(output.len() / outs);
        let mut done = 0;
        while done < frames {
            let step = if self.loud.is_some() && self.volume.remaining > 0 {
                CONTROL_BLOCK
            } else {
                BLOCK
            };
            let n = (frames - done).min(step);
            self.update_loudness(false);
            self.process_block(
                &input[2 * done..2 * (done + n)],
                &mut output[outs * done..outs * (done + n)],
            );
            done += n;
        }
    }

    fn process_block(&mut self, input: &[f32], output: &mut [f32]) {
        let n = input.len() / 2;
        let buf = &mut self.buf[..n];
        let g = self.input_gain;
        // Non-finite input (a corrupt file, a broken source) becomes silence
        // instead of poisoning the filter state forever.
        let clean = |v: f32| if v.is_finite() { f64::from(v) * g } else { 0.0 };
        for (b, x) in buf.iter_mut().zip(input.chunks_exact(2)) {
            *b = [clean(x[0]), clean(x[1])];
        }
        self.pre.process(buf);
        if self.tone_active {
            self.tone.process(buf);
        }
        if self.loud_active {
            self.loudness.process(buf);
        }
        let [tl, tr, ts] = self.trim;
        let sb = &mut self.sub_buf[..n];
        if let Some(sub) = &mut self.sub {
            for (s, b) in sb.iter_mut().zip(buf.iter()) {
                *s = [0.5 * (b[0] + b[1])];
            }
            sub.lp.process(sb);
            self.mains.process(buf);
            // Delay line (ring buffer), with the sub's gain, polarity and trim.
            let len = sub.ring.len();
            let k = sub.gain * ts;
            for s in sb.iter_mut() {
                sub.ring[sub.pos] = s[0];
                let read = if sub.pos >= sub.delay {
                    sub.pos - sub.delay
                } else {
                    sub.pos + len - sub.delay
                };
                s[0] = sub.ring[read] * k;
                sub.pos += 1;
                if sub.pos == len {
                    sub.pos = 0;
                }
            }
        }
        let has_sub = self.sub.is_some();
        let c = self.limiter.ceiling_f32;
        // Fast path: steady volume and an idle limiter that this block will not
        // wake (checked on the block's peak): no per-sample recursion.
        let steady = self.volume.remaining == 0 && self.limiter.gain == 1.0 && {
            let mut peak = buf
                .iter()
                .fold(0.0f64, |m, b| m.max(b[0].abs() * tl).max(b[1].abs() * tr));
            if has_sub {
                peak = sb.iter().fold(peak, |m, s| m.max(s[0].abs()));
            }
            peak * self.volume.gain <= self.limiter.ceiling
        };
        if steady {
            let v = self.volume.gain;
            let (gl, gr) = (tl * v, tr * v);
            if has_sub {
                for ((b, s), out) in buf.iter().zip(sb.iter()).zip(output.chunks_exact_mut(3)) {
                    out[0] = ((b[0] * gl) as f32).clamp(-c, c);
                    out[1] = ((b[1] * gr) as f32).clamp(-c, c);
                    out[2] = ((s[0] * v) as f32).clamp(-c, c);
                }
            } else {
                for (b, out) in buf.iter().zip(output.chunks_exact_mut(2)) {
                    out[0] = ((b[0] * gl) as f32).clamp(-c, c);
                    out[1] = ((b[1] * gr) as f32).clamp(-c, c);
                }
            }
        } else if has_sub {
            for ((b, s), out) in buf.iter().zip(sb.iter()).zip(output.chunks_exact_mut(3)) {
                let v = self.volume.next();
                let y = [b[0] * tl * v, b[1] * tr * v, s[0] * v];
                let lg = self
                    .limiter
                    .gain_for(y[0].abs().max(y[1].abs()).max(y[2].abs()));
                for (o, y) in out.iter_mut().zip(y) {
                    *o = ((y * lg) as f32).clamp(-c, c);
                }
            }
        } else {
            for (b, out) in buf.iter().zip(output.chunks_exact_mut(2)) {
                let v = self.volume.next();
                let y = [b[0] * tl * v, b[1] * tr * v];
                let lg = self.limiter.gain_for(y[0].abs().max(y[1].abs()));
                out[0] = ((y[0] * lg) as f32).clamp(-c, c);
                out[1] = ((y[1] * lg) as f32).clamp(-c, c);
            }
        }
    }

    /// Analytic small-signal response (limiter inactive) at the chain's current
    /// volume, for each output, at `f` Hz; the input is a signal present equally
    /// in L and R (for the mains that is the same as L alone / R alone).
    pub fn response(&self, f: f64) -> Vec<Complex> {
        let fs = self.fs;
        let mut pre = Complex {
            re: self.input_gain * self.volume.gain,
            im: 0.0,
        };
        let sections = self
            .pre
            .coefficients()
            .chain(self.tone.coefficients())
            .chain(self.loudness.coefficients());
        for c in sections {
            pre = pre * c.response(fs, f);
        }
        let mut mains = pre;
        for c in self.mains.coefficients() {
            mains = mains * c.response(fs, f);
        }
        let mut out = vec![mains.scale(self.trim[0]), mains.scale(self.trim[1])];
        if let Some(sub) = &self.sub {
            let mut s = pre.scale(sub.gain * self.trim[2]);
            for c in sub.lp.coefficients() {
                s = s * c.response(fs, f);
            }
            let w = 2.0 * std::f64::consts::PI * f / fs;
            s = s * Complex::from_polar(1.0, -w * sub.delay as f64);
            out.push(s);
        }
        out
    }
}
