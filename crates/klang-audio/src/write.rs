//! Atomic WAV writing: a hidden temporary file in the target's directory, renamed over
//! the target only after the header is final and the data is on disk.

use crate::AudioError;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use tempfile::TempPath;

/// Sample encoding of a written WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SampleFormat {
    /// 32-bit IEEE float: lossless for klang's output and never clips.
    #[default]
    F32,
    /// 16-bit integer; samples are clamped to [-1, 1] and rounded.
    I16,
    /// 24-bit integer; samples are clamped to [-1, 1] and rounded.
    I24,
}

impl SampleFormat {
    fn hound_spec(self, channels: u16, sample_rate: u32) -> hound::WavSpec {
        let (bits_per_sample, sample_format) = match self {
            SampleFormat::F32 => (32, hound::SampleFormat::Float),
            SampleFormat::I16 => (16, hound::SampleFormat::Int),
            SampleFormat::I24 => (24, hound::SampleFormat::Int),
        };
        hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample,
            sample_format,
        }
    }
}

/// Writes interleaved `f32` frames to a WAV file that appears under its name only
/// when [`finish`](WavWriter::finish) succeeds.
///
/// Dropping the writer without `finish` (an error, a panic) deletes the temporary
/// file and leaves any existing file at the target untouched.
pub struct WavWriter {
    target: PathBuf,
    format: SampleFormat,
    channels: usize,
    // Declared before `temp`: on drop the encoder is closed before the file is removed.
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    /// A second handle on the temporary file, to fsync it after hound has finalised it.
    sync_handle: File,
    temp: TempPath,
}

impl std::fmt::Debug for WavWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavWriter")
            .field("target", &self.target)
            .field("temp", &self.temp)
            .field("format", &self.format)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl WavWriter {
    /// Starts writing `target` with `channels` interleaved channels at `sample_rate`.
    pub fn create(
        target: impl AsRef<Path>,
        channels: u16,
        sample_rate: u32,
        format: SampleFormat,
    ) -> Result<Self, AudioError> {
        let target = target.as_ref().to_path_buf();
        let write_err = |detail: String| AudioError::Write {
            path: target.clone(),
            detail,
        };
        if channels == 0 || sample_rate == 0 {
            return Err(write_err(format!(
                "invalid stream: {channels} channels at {sample_rate} Hz"
            )));
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .ok_or_else(|| write_err("the path names no file".into()))?
            .to_string_lossy()
            .into_owned();
        if target.is_dir() {
            return Err(write_err("it is a directory; name the output file".into()));
        }
        if !dir.is_dir() {
            return Err(write_err(format!(
                "the directory {} does not exist",
                dir.display()
            )));
        }
        // Hidden and with a `.part` suffix: a leftover after a crash is obviously
        // incomplete and never mistaken for the output.
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".part")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&dir)
            .map_err(|e| {
                write_err(format!(
                    "cannot create a file in {}: {}",
                    dir.display(),
                    e.kind()
                ))
            })?;
        let (file, temp) = temp.into_parts();
        let sync_handle = file.try_clone().map_err(|e| write_err(e.to_string()))?;
        let writer = hound::WavWriter::new(
            BufWriter::with_capacity(1 << 16, file),
            format.hound_spec(channels, sample_rate),
        )
        .map_err(|e| write_err(e.to_string()))?;
        Ok(WavWriter {
            target,
            format,
            channels: usize::from(channels),
            writer: Some(writer),
            sync_handle,
            temp,
        })
    }

    /// The file that appears on [`finish`](WavWriter::finish).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Appends interleaved samples; `samples.len()` must be a multiple of the channel count.
    pub fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        if samples.len() % self.channels != 0 {
            return Err(self.write_err(format!(
                "{} samples are not whole frames of {} channels",
                samples.len(),
                self.channels
            )));
        }
        let format = self.format;
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.write_err("the writer is already finished".into()));
        };
        let result = match format {
            SampleFormat::F32 => samples.iter().try_for_each(|&s| writer.write_sample(s)),
            SampleFormat::I16 => {
                let mut w = writer.get_i16_writer(samples.len() as u32);
                for &s in samples {
                    w.write_sample(to_int(s, 16) as i16);
                }
                w.flush()
            }
            SampleFormat::I24 => samples
                .iter()
                .try_for_each(|&s| writer.write_sample(to_int(s, 24))),
        };
        result.map_err(|e| self.write_err(e.to_string()))
    }

    /// Finalises the header, flushes the data to disk and renames the file over the
    /// target. Only after this returns `Ok` does the target hold the new file.
    pub fn finish(mut self) -> Result<(), AudioError> {
        let writer = self.writer.take().expect("writer is present until finish");
        writer
            .finalize()
            .map_err(|e| self.write_err(e.to_string()))?;
        self.sync_handle
            .sync_all()
            .map_err(|e| self.write_err(format!("cannot flush to disk: {e}")))?;
        let target = self.target.clone();
        self.temp.persist(&target).map_err(|e| AudioError::Write {
            path: target.clone(),
            detail: format!("cannot rename the finished file into place: {}", e.error),
        })?;
        // Make the rename itself durable; failing to sync a directory is not worth an
        // error once the file is complete and in place.
        if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn write_err(&self, detail: String) -> AudioError {
        AudioError::Write {
            path: self.target.clone(),
            detail,
        }
    }
}

/// Clamps to [-1, 1] and scales to a signed integer of `bits` bits, rounding.
fn to_int(s: f32, bits: u32) -> i32 {
    let full = ((1i64 << (bits - 1)) - 1) as f32;
    let s = if s.is_nan() { 0.0 } else { s.clamp(-1.0, 1.0) };
    (s * full).round() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_conversion_clamps_and_rounds() {
        assert_eq!(to_int(1.0, 16), 32767);
        assert_eq!(to_int(-1.0, 16), -32767);
        assert_eq!(to_int(2.0, 16), 32767);
        assert_eq!(to_int(-7.0, 24), -8_388_607);
        assert_eq!(to_int(0.5, 16), 16384);
        assert_eq!(to_int(f32::NAN, 16), 0);
    }
}
