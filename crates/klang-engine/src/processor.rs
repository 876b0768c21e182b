//! [`LiveChain`]: klang-dsp's [`Chain`] as a [`klang_live::Processor`], with every change
//! ramped.
//!
//! - Volume and mute go through the chain's own ramped volume ([`Control::Volume`]); the
//!   chain clamps to its `volume.max_db`, whatever is asked.
//! - Everything that needs a new filter design (bass, treble, loudness, bypass, a preset, a
//!   reloaded config) arrives as a whole new [`Chain`], built and validated outside the
//!   real-time thread ([`Control::Switch`]). Both chains then run side by side: first a
//!   *warm-up* (the new chain's filters settle on the real input while only the old one is
//!   heard), then a linear (equal-gain) crossfade. Equal gain, not equal power, because two
//!   signals that each stay within their limiter's ceiling sum to one that does too; the mix
//!   is also clamped to the lower of the two ceilings, so a switch to a lower ceiling holds
//!   from its first sample.
//! - A new processor starts muted and ramps to its target volume.
//! - A switch between 2.1 and stereo fades the SUB channel in or out. When a switch to
//!   stereo ends, the engine feeds the second sink the full-range copy instead of SUB
//!   (klang-live's rule for two-channel processors), which starts at its level without a
//!   fade: a known limit, relevant only when the second sink is a full-range speaker.
//!
//! **Invariant:** [`LiveChain::process`] and [`LiveChain::control`] never allocate, free,
//! lock or block. Chains leave the real-time thread through a wait-free ring
//! ([`Retired`]) and are freed by whoever drains it (the controller, every 20 ms).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};

use klang_dsp::Chain;
use klang_dsp::chain::MIN_VOLUME_DB;
use klang_dsp::config::Config;

/// Warm-up of a new chain before it is heard: long enough for the crossover's and the
/// shelves' transients (tens of ms at 20-100 Hz) to die down.
pub const WARMUP_MS: f64 = 50.0;
/// The crossfade itself.
pub const FADE_MS: f64 = 100.0;
/// Frames per internal step of a crossfade (the scratch buffers' length).
const SCRATCH: usize = 256;
/// Retired chains waiting to be freed.
const RETIRED_CAPACITY: usize = 16;

/// A parameter update for a running [`LiveChain`].
#[derive(Debug)]
pub enum Control {
    /// Ramp the volume to this many dB (clamped to the chain's `max_db`); mute is
    /// [`MIN_VOLUME_DB`].
    Volume(f64),
    /// Crossfade to this chain (built outside the real-time thread at the graph's rate).
    /// The box only moves in the real-time thread; the chain it replaces leaves through
    /// the [`Retired`] ring.
    Switch(Box<Chain>),
}

/// The receiving end of the ring that carries chains out of the real-time thread; drop
/// what [`Retired::drain`] returns (or call it and let the values drop) off the real-time
/// thread.
#[derive(Debug)]
pub struct Retired(rtrb::Consumer<Box<Chain>>);

impl Retired {
    /// Frees every chain the processor has given back; returns how many.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Ok(chain) = self.0.pop() {
            drop(chain);
            n += 1;
        }
        n
    }
}

/// What the processor reports to the controller (written in the real-time thread with
/// relaxed atomics).
#[derive(Debug, Default)]
pub struct LiveStatus {
    /// Crossfades completed.
    pub switches: AtomicU64,
    /// A crossfade is running or waiting.
    pub fading: AtomicBool,
    /// Switches dropped because their chain was built for another sample rate (the
    /// controller builds them again).
    pub stale: AtomicU64,
    /// The current volume in dB (f64 bits).
    pub volume_db_bits: AtomicU64,
    /// The rate the processor is tuned for.
    pub rate: AtomicU32,
    /// Set when the configuration could not be built at the graph's rate and a safe
    /// fallback (no EQ) is playing instead.
    pub fallback: AtomicBool,
}

impl LiveStatus {
    /// The current volume in dB.
    pub fn volume_db(&self) -> f64 {
        f64::from_bits(self.volume_db_bits.load(Relaxed))
    }
}

/// klang-dsp's chain as a live processor with crossfaded switches. See the module docs.
#[derive(Debug)]
pub struct LiveChain {
    current: Box<Chain>,
    /// The chain being faded in, and how far (frames since the switch started).
    next: Option<Box<Chain>>,
    /// The newest switch waiting for the running crossfade to end.
    pending: Option<Box<Chain>>,
    pos: usize,
    warm_frames: usize,
    fade_frames: usize,
    target_db: f64,
    retired: rtrb::Producer<Box<Chain>>,
    status: Arc<LiveStatus>,
    scratch_a: Box<[f32]>,
    scratch_b: Box<[f32]>,
}

impl LiveChain {
    /// A processor playing `chain`, starting muted and ramping to `target_db`. Returns the
    /// processor, the ring its retired chains come out of, and its status.
    pub fn new(chain: Chain, target_db: f64) -> (LiveChain, Retired, Arc<LiveStatus>) {
        let (tx, rx) = rtrb::RingBuffer::new(RETIRED_CAPACITY);
        let status = Arc::new(LiveStatus::default());
        let rate = chain.sample_rate();
        let mut p = LiveChain {
            current: Box::new(chain),
            next: None,
            pending: None,
            pos: 0,
            warm_frames: 0,
            fade_frames: 1,
            target_db,
            retired: tx,
            status: Arc::clone(&status),
            scratch_a: vec![0.0; SCRATCH * 3].into_boxed_slice(),
            scratch_b: vec![0.0; SCRATCH * 3].into_boxed_slice(),
        };
        p.set_times(rate);
        p.current.set_volume_db_now(MIN_VOLUME_DB);
        p.current.set_volume_db(target_db);
        p.status.rate.store(rate as u32, Relaxed);
        p.report_volume();
        (p, Retired(rx), status)
    }

    fn set_times(&mut self, rate: f64) {
        self.warm_frames = (WARMUP_MS * 1e-3 * rate).round() as usize;
        self.fade_frames = ((FADE_MS * 1e-3 * rate).round() as usize).max(1);
    }

    /// The configuration the listener hears (or will, once a crossfade ends).
    pub fn config(&self) -> &Config {
        self.newest().config()
    }

    fn newest(&self) -> &Chain {
        self.pending
            .as_deref()
            .or(self.next.as_deref())
            .unwrap_or(&self.current)
    }

    /// The volume target in dB (before the chain's clamp).
    pub fn target_db(&self) -> f64 {
        self.target_db
    }

    /// The volume now, in dB.
    pub fn volume_db(&self) -> f64 {
        self.current.volume_db()
    }

    /// Whether a crossfade is running or waiting.
    pub fn is_fading(&self) -> bool {
        self.next.is_some() || self.pending.is_some()
    }

    fn retire(&mut self, chain: Box<Chain>) {
        if let Err(rtrb::PushError::Full(lost)) = self.retired.push(chain) {
            // Only if nobody drains the ring (16 entries, drained every 20 ms): freeing
            // here would break the real-time rule, so the chain is leaked instead.
            std::mem::forget(lost);
        }
    }

    fn report_volume(&self) {
        self.status
            .volume_db_bits
            .store(self.current.volume_db().to_bits(), Relaxed);
    }

    /// Ends a finished crossfade and starts the pending one. Between blocks only, so the
    /// channel count never changes inside a block.
    fn advance(&mut self) {
        if self.next.is_some() && self.pos >= self.warm_frames + self.fade_frames {
            let next = self.next.take().expect("checked above");
            let old = std::mem::replace(&mut self.current, next);
            self.retire(old);
            self.status.switches.fetch_add(1, Relaxed);
        }
        if self.next.is_none()
            && let Some(mut next) = self.pending.take()
        {
            // The new chain takes over the volume where it is, and follows the same target.
            next.set_volume_db_now(self.current.volume_db());
            next.set_volume_db(self.target_db);
            self.next = Some(next);
            self.pos = 0;
        }
        self.status.fading.store(self.is_fading(), Relaxed);
    }

    fn ceiling(chain: &Chain) -> f32 {
        10f32.powf(chain.config().limiter.ceiling_db as f32 / 20.0)
    }
}

impl klang_live::Processor for LiveChain {
    type Control = Control;

    fn process(&mut self, input: &[f32], output: &mut [f32]) {
        self.advance();
        let frames = input.len() / 2;
        if frames == 0 {
            return;
        }
        // The layout comes from the buffers, not from `output_channels()`: the engine reads
        // the channel count once per cycle, and a fade may start or end between the blocks
        // of one cycle. A channel the layout has and a chain lacks is silence.
        let ch = (output.len() / frames).clamp(2, 3);
        let frames = frames.min(output.len() / ch);
        let ca = self.current.output_channels();
        let Some(next) = self.next.as_mut() else {
            if ca == ch {
                self.current.process(input, output);
            } else {
                let mut done = 0;
                while done < frames {
                    let n = (frames - done).min(SCRATCH);
                    let a = &mut self.scratch_a[..n * ca];
                    self.current.process(&input[2 * done..2 * (done + n)], a);
                    let out = &mut output[ch * done..ch * (done + n)];
                    for (o, x) in out.chunks_exact_mut(ch).zip(a.chunks_exact(ca)) {
                        o[0] = x[0];
                        o[1] = x[1];
                        if ch == 3 {
                            o[2] = if ca == 3 { x[2] } else { 0.0 };
                        }
                    }
                    done += n;
                }
            }
            self.report_volume();
            return;
        };
        let cb = next.output_channels();
        // The lower of the two ceilings: a switch to a lower one holds from the start.
        // (powf is computed per block, which is cheap and allocation-free.)
        let limit = Self::ceiling(&self.current).min(Self::ceiling(next));
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(SCRATCH);
            let inp = &input[2 * done..2 * (done + n)];
            let a = &mut self.scratch_a[..n * ca];
            let b = &mut self.scratch_b[..n * cb];
            self.current.process(inp, a);
            next.process(inp, b);
            let out = &mut output[ch * done..ch * (done + n)];
            for i in 0..n {
                let g = mix_at(self.pos + i, self.warm_frames, self.fade_frames);
                for c in 0..ch {
                    let x = if c < ca { a[i * ca + c] } else { 0.0 };
                    let y = if c < cb { b[i * cb + c] } else { 0.0 };
                    out[i * ch + c] = (x + g * (y - x)).clamp(-limit, limit);
                }
            }
            self.pos += n;
            done += n;
        }
        self.report_volume();
    }

    fn output_channels(&self) -> usize {
        match &self.next {
            Some(next) => self.current.output_channels().max(next.output_channels()),
            // A waiting switch to 2.1 gets its SUB channel from the next cycle on.
            None => self
                .current
                .output_channels()
                .max(self.pending.as_ref().map_or(2, |p| p.output_channels())),
        }
    }

    fn set_sample_rate(&mut self, rate: u32) {
        // Off the real-time thread: allocation is fine. The newest configuration is rebuilt
        // at the new rate; any crossfade in flight is moot (the output is silent meanwhile).
        let config = self.newest().config().clone();
        let chain = match Chain::new(&config, rate) {
            Ok(c) => {
                self.status.fallback.store(false, Relaxed);
                c
            }
            Err(_) => {
                self.status.fallback.store(true, Relaxed);
                Chain::new(&safe_fallback(&config), rate)
                    .or_else(|_| Chain::new(&Config::default(), rate))
                    .expect("klang's default configuration is valid at every supported rate")
            }
        };
        self.next = None;
        self.pending = None;
        *self.current = chain;
        // A retune means the audio stopped: come back from silence, ramped.
        self.current.set_volume_db_now(MIN_VOLUME_DB);
        self.current.set_volume_db(self.target_db);
        self.set_times(f64::from(rate));
        self.status.rate.store(rate, Relaxed);
        self.status.fading.store(false, Relaxed);
        self.report_volume();
    }

    fn control(&mut self, control: Control) {
        match control {
            Control::Volume(db) => {
                self.target_db = if db.is_nan() { MIN_VOLUME_DB } else { db };
                self.current.set_volume_db(self.target_db);
                if let Some(next) = self.next.as_mut() {
                    next.set_volume_db(self.target_db);
                }
            }
            Control::Switch(chain) => {
                if chain.sample_rate() != self.current.sample_rate() {
                    self.status.stale.fetch_add(1, Relaxed);
                    self.retire(chain);
                    return;
                }
                if let Some(older) = self.pending.replace(chain) {
                    // Never heard: the newest request wins.
                    self.retire(older);
                }
                self.status.fading.store(true, Relaxed);
            }
        }
    }
}

/// Gain of the new chain `pos` frames into a switch: 0 while it warms up, then a linear
/// ramp to 1.
fn mix_at(pos: usize, warm: usize, fade: usize) -> f32 {
    if pos < warm {
        0.0
    } else {
        ((pos - warm) as f32 / fade as f32).min(1.0)
    }
}

/// The configuration with everything that depends on the rate's Nyquist limit removed
/// (EQ, graphic EQ, tone, loudness, low cut) but the crossover, trims, volume and limiter
/// kept, so the speakers stay protected. Used when a rate change makes the configuration
/// invalid (a band above the new Nyquist frequency).
pub fn safe_fallback(config: &Config) -> Config {
    Config {
        volume: config.volume.clone(),
        limiter: config.limiter.clone(),
        crossover: config.crossover.clone(),
        trim_db: config.trim_db.clone(),
        ..Config::default()
    }
}
