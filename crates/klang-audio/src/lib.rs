//! klang's edge to files: streaming decoding of WAV, FLAC and Ogg Vorbis, atomic WAV
//! writing, response plots (PNG and SVG) and the built-in demo signal.
//!
//! The DSP itself lives in the pure `klang-dsp` crate; this crate only moves samples
//! between files and memory and draws pictures. It never looks at the DSP's types: the
//! `klang` binary converts between the two, so either side can change on its own.
//!
//! - [`AudioReader`] decodes block by block (memory stays constant in file length) and
//!   always delivers interleaved stereo `f32` (mono is duplicated to both channels).
//! - [`WavWriter`] writes to a hidden temporary file next to the target and renames it
//!   over the target only in [`WavWriter::finish`]: a failed or interrupted run never
//!   leaves a truncated file under the target's name.
//! - [`render`] streams a source through a processing closure into a writer, with the
//!   processor's latency compensated so output and input line up frame for frame.
//! - [`plot_response`] draws magnitude and phase per output with an embedded font, so it
//!   works the same on a machine with no fonts installed.
//!
//! ```
//! use klang_audio::{AudioReader, SampleFormat, WavWriter};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("tone.wav");
//! let mut writer = WavWriter::create(&path, 2, 48_000, SampleFormat::F32).unwrap();
//! writer.write(&[0.5, -0.5, 0.25, -0.25]).unwrap();
//! writer.finish().unwrap();
//!
//! let mut reader = AudioReader::open(&path).unwrap();
//! assert_eq!((reader.sample_rate(), reader.source_channels()), (48_000, 2));
//! let mut block = [0.0f32; 8];
//! assert_eq!(reader.read(&mut block).unwrap(), 2);
//! assert_eq!(&block[..4], &[0.5, -0.5, 0.25, -0.25]);
//! ```
#![forbid(unsafe_code)]

mod demo;
mod error;
mod plot;
mod read;
mod render;
mod write;

pub use demo::{DEMO_SAMPLE_RATE, DEMO_SECONDS, demo_signal};
pub use error::{AudioError, PlotError};
pub use plot::{Curve, PlotFormat, plot_response};
pub use read::AudioReader;
pub use render::{BLOCK_FRAMES, FrameSource, MemorySource, ProcessorShape, render};
pub use write::{SampleFormat, WavWriter};
