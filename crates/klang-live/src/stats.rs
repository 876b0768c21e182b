//! Lock-free engine statistics, written by the real-time thread and the main loop, read by
//! anyone (`klang ctl status`).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

/// Whether an output sink is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputState {
    /// No sink is configured for this output.
    NotConfigured,
    /// A sink is configured but no node of that name exists in the graph (unplugged); the
    /// engine links it again as soon as it appears.
    Missing,
    /// The sink exists and the engine's ports are linked to it.
    Connected,
}

impl OutputState {
    fn to_u8(self) -> u8 {
        match self {
            OutputState::NotConfigured => 0,
            OutputState::Missing => 1,
            OutputState::Connected => 2,
        }
    }
    fn from_u8(v: u8) -> Self {
        match v {
            1 => OutputState::Missing,
            2 => OutputState::Connected,
            _ => OutputState::NotConfigured,
        }
    }
}

/// A consistent-enough copy of the engine's counters (each field is read atomically; the
/// set is not a transaction, which is fine for a status display).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSnapshot {
    /// The graph's sample rate in Hz, 0 before the first cycle.
    pub sample_rate: u32,
    /// Frames per cycle (the graph's quantum), 0 before the first cycle.
    pub quantum: u32,
    /// Process cycles run since the start.
    pub cycles: u64,
    /// Cycles that started late (the graph clock skipped ahead) or took longer than the
    /// cycle's duration.
    pub xruns: u64,
    /// Time spent in the last callback divided by the cycle's duration (1.0 = the whole budget).
    pub load: f32,
    /// The largest `load` seen since the start.
    pub max_load: f32,
    /// Cycles that were silent because the processor was away being retuned for a new rate.
    pub silent_cycles: u64,
    /// Peak absolute sample of the input, L and R, since the last [`Stats::take_peaks`].
    pub peak_in: f32,
    /// Peak absolute sample written to the mains ports since the last take.
    pub peak_mains: f32,
    /// Peak absolute sample written to the second output's ports since the last take.
    pub peak_second: f32,
    /// The mains sink.
    pub mains: OutputState,
    /// The second sink (subwoofer or full-range copy).
    pub second: OutputState,
    /// True while the engine's "klang" sink exists and the engine is linked to it.
    pub sink_ready: bool,
    /// Cycles in which the processor reported a channel count other than 2 or 3 (silenced).
    pub bad_channel_cycles: u64,
    /// Frames processed since the start.
    pub frames: u64,
    /// Wall-clock time spent inside the process callback since the start, in nanoseconds.
    pub busy_ns: u64,
}

impl StatsSnapshot {
    /// CPU time spent in the callback per second of audio, in seconds (the benchmark's
    /// "CPU time per second of audio"), or 0 before any audio.
    pub fn cpu_per_audio_second(&self) -> f64 {
        if self.frames == 0 || self.sample_rate == 0 {
            return 0.0;
        }
        let audio_seconds = self.frames as f64 / f64::from(self.sample_rate);
        self.busy_ns as f64 * 1e-9 / audio_seconds
    }
}

/// The shared counters. The real-time thread only does relaxed atomic stores and adds.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) sample_rate: AtomicU32,
    pub(crate) quantum: AtomicU32,
    pub(crate) cycles: AtomicU64,
    pub(crate) xruns: AtomicU64,
    pub(crate) load_bits: AtomicU32,
    pub(crate) max_load_bits: AtomicU32,
    pub(crate) silent_cycles: AtomicU64,
    pub(crate) bad_channel_cycles: AtomicU64,
    pub(crate) frames: AtomicU64,
    pub(crate) busy_ns: AtomicU64,
    pub(crate) peak_in_bits: AtomicU32,
    pub(crate) peak_mains_bits: AtomicU32,
    pub(crate) peak_second_bits: AtomicU32,
    /// Target gain (linear, f32 bits) of the full-range copy on the second sink.
    pub(crate) second_gain_bits: AtomicU32,
    pub(crate) mains: AtomicU8,
    pub(crate) second: AtomicU8,
    pub(crate) sink_ready: AtomicBool,
}

/// Stores `value` if it is larger. Non-negative f32s order like their bit patterns, so an
/// integer `fetch_max` is exact.
pub(crate) fn raise(cell: &AtomicU32, value: f32) {
    if value > 0.0 {
        cell.fetch_max(value.to_bits(), Relaxed);
    }
}

impl Stats {
    pub(crate) fn new(second_gain: f32) -> Self {
        let s = Stats::default();
        s.second_gain_bits.store(second_gain.to_bits(), Relaxed);
        s
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            sample_rate: self.sample_rate.load(Relaxed),
            quantum: self.quantum.load(Relaxed),
            cycles: self.cycles.load(Relaxed),
            xruns: self.xruns.load(Relaxed),
            load: f32::from_bits(self.load_bits.load(Relaxed)),
            max_load: f32::from_bits(self.max_load_bits.load(Relaxed)),
            silent_cycles: self.silent_cycles.load(Relaxed),
            peak_in: f32::from_bits(self.peak_in_bits.load(Relaxed)),
            peak_mains: f32::from_bits(self.peak_mains_bits.load(Relaxed)),
            peak_second: f32::from_bits(self.peak_second_bits.load(Relaxed)),
            mains: OutputState::from_u8(self.mains.load(Relaxed)),
            second: OutputState::from_u8(self.second.load(Relaxed)),
            sink_ready: self.sink_ready.load(Relaxed),
            bad_channel_cycles: self.bad_channel_cycles.load(Relaxed),
            frames: self.frames.load(Relaxed),
            busy_ns: self.busy_ns.load(Relaxed),
        }
    }

    /// Returns the snapshot and resets the three peak meters to zero.
    pub fn take_peaks(&self) -> StatsSnapshot {
        let mut s = self.snapshot();
        s.peak_in = f32::from_bits(self.peak_in_bits.swap(0, Relaxed));
        s.peak_mains = f32::from_bits(self.peak_mains_bits.swap(0, Relaxed));
        s.peak_second = f32::from_bits(self.peak_second_bits.swap(0, Relaxed));
        s
    }

    pub(crate) fn set_outputs(&self, mains: OutputState, second: OutputState) {
        self.mains.store(mains.to_u8(), Relaxed);
        self.second.store(second.to_u8(), Relaxed);
    }

    pub(crate) fn second_gain(&self) -> f32 {
        f32::from_bits(self.second_gain_bits.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_keeps_the_largest_value_and_take_resets() {
        let s = Stats::new(1.0);
        raise(&s.peak_in_bits, 0.5);
        raise(&s.peak_in_bits, 0.25);
        raise(&s.peak_in_bits, 0.0);
        assert_eq!(s.take_peaks().peak_in, 0.5);
        assert_eq!(s.snapshot().peak_in, 0.0);
    }

    #[test]
    fn output_state_round_trips() {
        let s = Stats::new(1.0);
        s.set_outputs(OutputState::Connected, OutputState::Missing);
        let snap = s.snapshot();
        assert_eq!(snap.mains, OutputState::Connected);
        assert_eq!(snap.second, OutputState::Missing);
    }
}
