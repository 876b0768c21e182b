//! The one trait between the engine and the DSP.

/// A real-time audio processor: stereo in, two (L, R) or three (L, R, SUB) channels out.
///
/// The engine owns the processor and moves it between threads: [`Processor::process`] and
/// [`Processor::control`] run in PipeWire's real-time thread, [`Processor::set_sample_rate`]
/// runs in the engine's main-loop thread while the processor is away from the real-time
/// thread (a lock-free handoff through a ring buffer; the output is silent meanwhile).
pub trait Processor: Send + 'static {
    /// A parameter update sent through [`crate::EngineHandle::send`] (volume, bass, mute, ...).
    ///
    /// Controls are applied and dropped in the real-time thread, so they should be plain data:
    /// a control that owns heap memory would free it there. A whole new configuration goes
    /// through [`crate::EngineHandle::replace_processor`] instead.
    type Control: Send + 'static;

    /// Processes one block: `input` is interleaved stereo (`frames = input.len() / 2`),
    /// `output` is interleaved with [`Processor::output_channels`] channels per frame and has
    /// exactly `frames * output_channels()` samples.
    ///
    /// Called in the real-time thread: must not allocate, lock, block or panic.
    fn process(&mut self, input: &[f32], output: &mut [f32]);

    /// 2 (L, R) or 3 (L, R, SUB). Read once per block, so it may change after a control.
    fn output_channels(&self) -> usize;

    /// Re-designs the processor for the graph's new sample rate. Called outside the
    /// real-time thread, before the first block and whenever the graph's rate changes;
    /// it may allocate.
    fn set_sample_rate(&mut self, rate: u32);

    /// Applies a parameter update. Called in the real-time thread, between blocks; must not
    /// allocate, lock or block (changes that need a new design belong in
    /// [`crate::EngineHandle::replace_processor`]).
    fn control(&mut self, control: Self::Control);
}
