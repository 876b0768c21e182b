//! Streams frames from a source through a processor into a [`WavWriter`], block by block.
//!
//! The processor is a closure, so this crate stays independent of the DSP's types; the
//! `klang` binary passes `|input, output| chain.process(input, output)`.

use crate::{AudioError, AudioReader, WavWriter};

/// Frames per block: large enough that per-block overhead vanishes, small enough to
/// stay in cache (64 KiB of stereo input).
pub const BLOCK_FRAMES: usize = 8192;

/// Where interleaved stereo frames come from.
pub trait FrameSource {
    /// Fills `out` (interleaved stereo) and returns the frames written; 0 at the end.
    fn read_frames(&mut self, out: &mut [f32]) -> Result<usize, AudioError>;
}

impl FrameSource for AudioReader {
    fn read_frames(&mut self, out: &mut [f32]) -> Result<usize, AudioError> {
        self.read(out)
    }
}

/// Interleaved stereo frames already in memory (the demo signal).
#[derive(Debug)]
pub struct MemorySource<'a> {
    samples: &'a [f32],
    pos: usize,
}

impl<'a> MemorySource<'a> {
    /// `samples` is interleaved stereo; a trailing odd sample is ignored.
    pub fn new(samples: &'a [f32]) -> Self {
        MemorySource {
            samples: &samples[..samples.len() / 2 * 2],
            pos: 0,
        }
    }
}

impl FrameSource for MemorySource<'_> {
    fn read_frames(&mut self, out: &mut [f32]) -> Result<usize, AudioError> {
        let n = (out.len() / 2 * 2).min(self.samples.len() - self.pos);
        out[..n].copy_from_slice(&self.samples[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n / 2)
    }
}

/// How a processor shapes its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessorShape {
    /// Interleaved output channels per frame.
    pub output_channels: usize,
    /// Frames by which the output lags the input. They are dropped from the start and
    /// flushed with silence at the end, so the output lines up with the input and has
    /// exactly as many frames.
    pub latency_frames: usize,
}

/// Streams `source` through `process` into `writer` and returns the frames written
/// (equal to the frames read). Memory use is a few blocks, whatever the length.
///
/// `process(input, output)` gets interleaved stereo `input` and must fill `output`
/// (`shape.output_channels` per frame, same frame count). `progress` is called with
/// the number of input frames consumed so far after every block.
///
/// The writer is not finished here: the caller calls [`WavWriter::finish`] on success,
/// and on error simply drops it, which leaves nothing behind.
pub fn render(
    source: &mut dyn FrameSource,
    writer: &mut WavWriter,
    shape: ProcessorShape,
    mut process: impl FnMut(&[f32], &mut [f32]),
    mut progress: impl FnMut(u64),
) -> Result<u64, AudioError> {
    let channels = shape.output_channels;
    let mut input = vec![0.0f32; BLOCK_FRAMES * 2];
    let mut output = vec![0.0f32; BLOCK_FRAMES * channels];
    let mut to_skip = shape.latency_frames;
    let mut flush_left = shape.latency_frames;
    let mut frames_in = 0u64;
    let mut frames_out = 0u64;
    let mut source_done = false;
    loop {
        let n = if source_done {
            0
        } else {
            source.read_frames(&mut input)?
        };
        let frames = if n > 0 {
            frames_in += n as u64;
            n
        } else {
            source_done = true;
            // The tail the latency holds back: feed silence until it is out.
            let m = flush_left.min(BLOCK_FRAMES);
            if m == 0 {
                break;
            }
            flush_left -= m;
            input[..m * 2].fill(0.0);
            m
        };
        process(&input[..frames * 2], &mut output[..frames * channels]);
        let skip = to_skip.min(frames);
        to_skip -= skip;
        writer.write(&output[skip * channels..frames * channels])?;
        frames_out += (frames - skip) as u64;
        progress(frames_in);
    }
    debug_assert_eq!(frames_out, frames_in);
    Ok(frames_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleFormat;

    /// A processor with `delay` frames of latency that also writes a third channel.
    fn delayed(delay: usize) -> impl FnMut(&[f32], &mut [f32]) {
        let mut line = std::collections::VecDeque::from(vec![0.0f32; delay]);
        move |input, output| {
            for (i, o) in input.chunks_exact(2).zip(output.chunks_exact_mut(3)) {
                line.push_back(i[0]);
                let d = line.pop_front().expect("delay line is never empty");
                o.copy_from_slice(&[d, d, -d]);
            }
        }
    }

    #[test]
    fn latency_is_compensated_and_length_preserved() {
        let frames = BLOCK_FRAMES * 2 + 123;
        let signal: Vec<f32> = (0..frames * 2).map(|i| (i / 2) as f32).collect();
        for delay in [0, 1, 77, BLOCK_FRAMES + 5] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("out.wav");
            let mut writer = WavWriter::create(&path, 3, 48_000, SampleFormat::F32).unwrap();
            let shape = ProcessorShape {
                output_channels: 3,
                latency_frames: delay,
            };
            let mut last = 0;
            let n = render(
                &mut MemorySource::new(&signal),
                &mut writer,
                shape,
                delayed(delay),
                |p| last = p,
            )
            .unwrap();
            writer.finish().unwrap();
            assert_eq!((n, last), (frames as u64, frames as u64));
            let out: Vec<f32> = hound::WavReader::open(&path)
                .unwrap()
                .samples::<f32>()
                .map(Result::unwrap)
                .collect();
            assert_eq!(out.len(), frames * 3);
            for (i, f) in out.chunks_exact(3).enumerate() {
                assert_eq!(
                    f,
                    [i as f32, i as f32, -(i as f32)],
                    "delay {delay}, frame {i}"
                );
            }
        }
    }
}
