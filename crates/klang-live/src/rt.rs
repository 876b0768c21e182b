//! The real-time half of the engine, free of PipeWire so it can be unit-tested.
//!
//! **Invariant:** nothing in [`RtCore::run`] allocates, frees, locks or blocks. Processors
//! arrive and leave through wait-free rings (`rtrb`) as `Box`es, which only move; they are
//! freed by the main loop.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use crate::Processor;
use crate::stats::{Stats, raise};

/// Frames processed per call of [`Processor::process`]; any quantum is cut into blocks of
/// at most this size, so the scratch buffers are fixed.
pub(crate) const BLOCK: usize = 256;

/// The filter's output ports, in this order.
pub(crate) const MAIN_L: usize = 0;
pub(crate) const MAIN_R: usize = 1;
pub(crate) const SECOND_L: usize = 2;
pub(crate) const SECOND_R: usize = 3;

/// What the real-time thread hands back to the main loop.
pub(crate) enum Outgoing<P> {
    /// Needs [`Processor::set_sample_rate`] with this rate, then comes back.
    Retune(Box<P>, u32),
    /// Replaced: to be dropped outside the real-time thread.
    Retired(Box<P>),
}

/// A processor on its way to the real-time thread, tuned for the given rate (0 = unknown).
pub(crate) type Incoming<P> = (Box<P>, u32);

pub(crate) struct RtCore<P: Processor> {
    processor: Option<Box<P>>,
    processor_rate: u32,
    controls: rtrb::Consumer<P::Control>,
    /// From the main loop (retuned processors).
    retuned: rtrb::Consumer<Incoming<P>>,
    /// From [`crate::EngineHandle::replace_processor`].
    replaced: rtrb::Consumer<Incoming<P>>,
    outgoing: rtrb::Producer<Outgoing<P>>,
    stats: Arc<Stats>,
    scratch_in: Box<[f32]>,
    scratch_out: Box<[f32]>,
    /// The ramped gain of the full-range copy on the second output.
    second_gain: f32,
    /// The graph position this cycle should start at, if the last one was seen.
    expected_position: Option<u64>,
}

pub(crate) struct RtChannels<P: Processor> {
    pub controls: rtrb::Consumer<P::Control>,
    pub retuned: rtrb::Consumer<Incoming<P>>,
    pub replaced: rtrb::Consumer<Incoming<P>>,
    pub outgoing: rtrb::Producer<Outgoing<P>>,
}

impl<P: Processor> RtCore<P> {
    pub(crate) fn new(processor: Box<P>, rate: u32, ch: RtChannels<P>, stats: Arc<Stats>) -> Self {
        let second_gain = stats.second_gain();
        RtCore {
            processor: Some(processor),
            processor_rate: rate,
            controls: ch.controls,
            retuned: ch.retuned,
            replaced: ch.replaced,
            outgoing: ch.outgoing,
            stats,
            scratch_in: vec![0.0; BLOCK * 2].into_boxed_slice(),
            scratch_out: vec![0.0; BLOCK * 3].into_boxed_slice(),
            second_gain,
            expected_position: None,
        }
    }

    /// Hands a processor to the main loop to be freed there.
    fn retire(&mut self, processor: Box<P>) {
        if let Err(rtrb::PushError::Full(lost)) = self.outgoing.push(Outgoing::Retired(processor)) {
            // Only reachable if the main loop stopped draining the ring (capacity 16, drained
            // every 20 ms). Freeing here would break the real-time rule, so the memory is
            // leaked instead; this cannot happen in a running engine.
            std::mem::forget(lost);
        }
    }

    /// Installs a processor, retiring the one it replaces.
    fn install(&mut self, (processor, rate): Incoming<P>) {
        if let Some(old) = self.processor.replace(processor) {
            self.retire(old);
        }
        self.processor_rate = rate;
    }

    /// One PipeWire cycle: `frames` frames at `rate` Hz starting at graph `position`.
    /// Unlinked ports are `None`; outputs are always fully written when present.
    pub(crate) fn run(
        &mut self,
        rate: u32,
        position: Option<u64>,
        frames: usize,
        inputs: [Option<&[f32]>; 2],
        outputs: &mut [Option<&mut [f32]>; 4],
    ) {
        let started = Instant::now();
        let stats = Arc::clone(&self.stats);
        // A clone of the Arc (an atomic increment; never the last reference, so never a
        // free) lets the stats be used while `self` is borrowed mutably below.
        stats.cycles.fetch_add(1, Relaxed);
        // A cycle that starts later than where the last one ended, by less than a second
        // and at an unchanged rate, means the graph skipped audio: an xrun. Backward or
        // larger jumps are the graph restarting or being reconfigured, not dropouts.
        if let (Some(expected), Some(pos)) = (self.expected_position, position) {
            let same_rate = stats.sample_rate.load(Relaxed) == rate;
            if same_rate && pos > expected && pos - expected < u64::from(rate) {
                stats.xruns.fetch_add(1, Relaxed);
            }
        }
        self.expected_position = position.map(|p| p + frames as u64);
        stats.sample_rate.store(rate, Relaxed);
        stats.quantum.store(frames as u32, Relaxed);

        // Processors from the main loop first, then the user's replacement, so the newest
        // configuration wins when both arrive in one cycle.
        while let Ok(incoming) = self.retuned.pop() {
            if self.processor.is_some() {
                // A replacement arrived while this one was away being retuned: it is stale.
                self.retire(incoming.0);
            } else {
                self.install(incoming);
            }
        }
        while let Ok(incoming) = self.replaced.pop() {
            self.install(incoming);
        }
        if let Some(p) = self.processor.as_mut() {
            while let Ok(control) = self.controls.pop() {
                p.control(control);
            }
        }
        if self.processor_rate != rate {
            if let Some(p) = self.processor.take() {
                match self.outgoing.push(Outgoing::Retune(p, rate)) {
                    Ok(()) => {}
                    Err(rtrb::PushError::Full(Outgoing::Retune(p, _))) => self.processor = Some(p),
                    Err(rtrb::PushError::Full(Outgoing::Retired(p))) => self.processor = Some(p),
                }
            }
        }

        let channels = self.processor.as_ref().map_or(2, |p| p.output_channels());
        let usable = self.processor.is_some() && self.processor_rate == rate;
        if !usable {
            stats.silent_cycles.fetch_add(1, Relaxed);
        }
        let valid_channels = channels == 2 || channels == 3;
        if !valid_channels {
            stats.bad_channel_cycles.fetch_add(1, Relaxed);
        }
        let target_gain = stats.second_gain();
        // A one-pole ramp with a 10 ms time constant: level changes of the copy never click.
        let coeff = 1.0 - (-1.0 / (0.010 * rate.max(1) as f32)).exp();

        let (mut peak_in, mut peak_mains, mut peak_second) = (0.0f32, 0.0f32, 0.0f32);
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(BLOCK);
            let input = &mut self.scratch_in[..n * 2];
            for i in 0..n {
                let l = inputs[0]
                    .and_then(|b| b.get(done + i))
                    .copied()
                    .unwrap_or(0.0);
                let r = inputs[1]
                    .and_then(|b| b.get(done + i))
                    .copied()
                    .unwrap_or(0.0);
                input[2 * i] = l;
                input[2 * i + 1] = r;
                peak_in = peak_in.max(l.abs()).max(r.abs());
            }
            let ch = if valid_channels { channels } else { 2 };
            let output = &mut self.scratch_out[..n * ch];
            match self.processor.as_mut() {
                Some(p) if usable && valid_channels => p.process(input, output),
                _ => output.fill(0.0),
            }
            for i in 0..n {
                let frame = &output[i * ch..(i + 1) * ch];
                let (l, r) = (frame[0], frame[1]);
                let (sl, sr) = if ch == 3 {
                    (frame[2], frame[2])
                } else {
                    self.second_gain += (target_gain - self.second_gain) * coeff;
                    (l * self.second_gain, r * self.second_gain)
                };
                let values = [l, r, sl, sr];
                for (port, value) in outputs.iter_mut().zip(values) {
                    if let Some(slot) = port.as_deref_mut().and_then(|b| b.get_mut(done + i)) {
                        *slot = value;
                    }
                }
                peak_mains = peak_mains.max(l.abs()).max(r.abs());
                peak_second = peak_second.max(sl.abs()).max(sr.abs());
            }
            done += n;
        }
        raise(&stats.peak_in_bits, peak_in);
        if outputs[MAIN_L].is_some() || outputs[MAIN_R].is_some() {
            raise(&stats.peak_mains_bits, peak_mains);
        }
        if outputs[SECOND_L].is_some() || outputs[SECOND_R].is_some() {
            raise(&stats.peak_second_bits, peak_second);
        }

        let budget = frames as f32 / rate.max(1) as f32;
        let busy = started.elapsed();
        stats.busy_ns.fetch_add(busy.as_nanos() as u64, Relaxed);
        stats.frames.fetch_add(frames as u64, Relaxed);
        let load = busy.as_secs_f32() / budget.max(f32::MIN_POSITIVE);
        stats.load_bits.store(load.to_bits(), Relaxed);
        raise(&stats.max_load_bits, load);
        if load > 1.0 {
            stats.xruns.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::Gain;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    /// Counts allocations and frees made by a thread while it is inside [`counting`].
    struct Counting;

    thread_local! {
        static ACTIVE: Cell<bool> = const { Cell::new(false) };
        static EVENTS: Cell<usize> = const { Cell::new(0) };
    }

    fn note() {
        if ACTIVE.with(Cell::get) {
            EVENTS.with(|e| e.set(e.get() + 1));
        }
    }

    // SAFETY: forwards to the system allocator unchanged; only counts.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note();
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            note();
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note();
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    /// Runs `f` and returns how many allocations and frees it made on this thread.
    fn counting(f: impl FnOnce()) -> usize {
        EVENTS.with(|e| e.set(0));
        ACTIVE.with(|a| a.set(true));
        f();
        ACTIVE.with(|a| a.set(false));
        EVENTS.with(Cell::get)
    }

    struct Rig {
        core: RtCore<Gain>,
        controls: rtrb::Producer<f32>,
        retuned: rtrb::Producer<Incoming<Gain>>,
        replaced: rtrb::Producer<Incoming<Gain>>,
        outgoing: rtrb::Consumer<Outgoing<Gain>>,
        stats: Arc<Stats>,
    }

    fn rig(gain_db: f32, rate: u32) -> Rig {
        let (controls, c1) = rtrb::RingBuffer::new(8);
        let (retuned, c2) = rtrb::RingBuffer::new(4);
        let (replaced, c3) = rtrb::RingBuffer::new(4);
        let (p4, outgoing) = rtrb::RingBuffer::new(8);
        let stats = Arc::new(Stats::new(0.5));
        let ch = RtChannels {
            controls: c1,
            retuned: c2,
            replaced: c3,
            outgoing: p4,
        };
        let core = RtCore::new(Box::new(Gain::new(gain_db)), rate, ch, Arc::clone(&stats));
        Rig {
            core,
            controls,
            retuned,
            replaced,
            outgoing,
            stats,
        }
    }

    fn cycle(rig: &mut Rig, rate: u32, frames: usize, input: f32) -> [Vec<f32>; 4] {
        let l = vec![input; frames];
        let r = vec![-input; frames];
        let mut bufs = [
            vec![9.0; frames],
            vec![9.0; frames],
            vec![9.0; frames],
            vec![9.0; frames],
        ];
        {
            let [a, b, c, d] = &mut bufs;
            let mut outs = [
                Some(&mut a[..]),
                Some(&mut b[..]),
                Some(&mut c[..]),
                Some(&mut d[..]),
            ];
            rig.core
                .run(rate, None, frames, [Some(&l), Some(&r)], &mut outs);
        }
        bufs
    }

    #[test]
    fn a_quantum_larger_than_a_block_is_processed_whole() {
        let mut rig = rig(-6.0, 48_000);
        let out = cycle(&mut rig, 48_000, BLOCK * 3 + 17, 0.5);
        let g = 10f32.powf(-6.0 / 20.0);
        assert!(out[MAIN_L].iter().all(|&x| (x - 0.5 * g).abs() < 1e-6));
        assert!(out[MAIN_R].iter().all(|&x| (x + 0.5 * g).abs() < 1e-6));
        // The second output carries the full-range copy at its own level (0.5 here).
        assert!(out[SECOND_L].iter().all(|&x| (x - 0.25 * g).abs() < 1e-6));
    }

    #[test]
    fn a_rate_change_sends_the_processor_to_be_retuned_and_silences_meanwhile() {
        let mut rig = rig(0.0, 48_000);
        let out = cycle(&mut rig, 96_000, 64, 0.5);
        assert!(
            out[MAIN_L].iter().all(|&x| x == 0.0),
            "silent while retuning"
        );
        let Ok(Outgoing::Retune(mut p, rate)) = rig.outgoing.pop() else {
            panic!("no retune")
        };
        assert_eq!(rate, 96_000);
        p.set_sample_rate(rate);
        assert!(rig.retuned.push((p, rate)).is_ok());
        let out = cycle(&mut rig, 96_000, 64, 0.5);
        assert!(out[MAIN_L].iter().all(|&x| x == 0.5));
        assert_eq!(rig.stats.snapshot().silent_cycles, 1);
    }

    #[test]
    fn controls_apply_between_blocks_and_replacements_retire_the_old_processor() {
        let mut rig = rig(0.0, 48_000);
        assert!(rig.controls.push(-20.0).is_ok());
        let out = cycle(&mut rig, 48_000, 32, 1.0);
        assert!((out[MAIN_L][0] - 0.1).abs() < 1e-6);
        assert!(
            rig.replaced
                .push((Box::new(Gain::new(0.0)), 48_000))
                .is_ok()
        );
        let out = cycle(&mut rig, 48_000, 32, 1.0);
        assert_eq!(out[MAIN_L][0], 1.0);
        assert!(matches!(rig.outgoing.pop(), Ok(Outgoing::Retired(_))));
    }

    #[test]
    fn a_three_channel_processor_sends_sub_to_both_second_ports() {
        let (_controls, c1) = rtrb::RingBuffer::<crate::demo::SplitControl>::new(8);
        let (_p2, c2) = rtrb::RingBuffer::new(4);
        let (_p3, c3) = rtrb::RingBuffer::new(4);
        let (p4, _c4) = rtrb::RingBuffer::new(8);
        let stats = Arc::new(Stats::new(1.0));
        let ch = RtChannels {
            controls: c1,
            retuned: c2,
            replaced: c3,
            outgoing: p4,
        };
        let split = crate::demo::Split::new(120.0, 48_000);
        let mut core = RtCore::new(Box::new(split), 48_000, ch, stats);
        let frames = 4800;
        // A DC step: after settling the low-pass passes it to SUB, the high-pass blocks it.
        let l = vec![0.5; frames];
        let mut bufs = [
            vec![0.0; frames],
            vec![0.0; frames],
            vec![0.0; frames],
            vec![0.0; frames],
        ];
        let [a, b, c, d] = &mut bufs;
        let mut outs = [
            Some(&mut a[..]),
            Some(&mut b[..]),
            Some(&mut c[..]),
            Some(&mut d[..]),
        ];
        core.run(48_000, None, frames, [Some(&l), Some(&l)], &mut outs);
        assert!((c[frames - 1] - 0.5).abs() < 1e-3, "sub {}", c[frames - 1]);
        assert_eq!(c, d);
        assert!(a[frames - 1].abs() < 1e-3);
    }

    #[test]
    fn the_real_time_path_never_allocates_or_frees() {
        let mut rig = rig(-6.0, 48_000);
        let frames = 1024;
        let (l, r) = (vec![0.25f32; frames], vec![0.25f32; frames]);
        let mut bufs = [
            vec![0.0; frames],
            vec![0.0; frames],
            vec![0.0; frames],
            vec![0.0; frames],
        ];
        let replacement = Box::new(Gain::new(0.0));
        assert!(rig.controls.push(-3.0).is_ok());
        assert!(rig.replaced.push((replacement, 48_000)).is_ok());
        let [a, b, c, d] = &mut bufs;
        let mut outs = [
            Some(&mut a[..]),
            Some(&mut b[..]),
            Some(&mut c[..]),
            Some(&mut d[..]),
        ];
        let events = counting(|| {
            // A control, a replacement (the old processor leaves through the ring), a rate
            // change (the processor leaves to be retuned), silence, and normal cycles.
            for (i, rate) in [48_000, 48_000, 96_000, 96_000].into_iter().enumerate() {
                rig.core.run(
                    rate,
                    Some(i as u64 * frames as u64),
                    frames,
                    [Some(&l), Some(&r)],
                    &mut outs,
                );
            }
        });
        assert_eq!(events, 0, "allocations or frees in the real-time path");
        assert!(matches!(rig.outgoing.pop(), Ok(Outgoing::Retired(_))));
        assert!(matches!(
            rig.outgoing.pop(),
            Ok(Outgoing::Retune(_, 96_000))
        ));
    }

    #[test]
    fn a_skipped_graph_position_counts_as_an_xrun() {
        let mut rig = rig(0.0, 48_000);
        let mut outs: [Option<&mut [f32]>; 4] = [None, None, None, None];
        rig.core.run(48_000, Some(0), 64, [None, None], &mut outs);
        rig.core.run(48_000, Some(64), 64, [None, None], &mut outs);
        assert_eq!(rig.stats.snapshot().xruns, 0);
        rig.core
            .run(48_000, Some(1000), 64, [None, None], &mut outs);
        assert_eq!(rig.stats.snapshot().xruns, 1);
    }
}
