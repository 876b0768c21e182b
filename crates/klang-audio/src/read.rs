//! Streaming decoder: one packet at a time, so memory does not grow with file length.

use crate::AudioError;
use std::fs::File;
use std::path::{Path, PathBuf};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Reads an audio file block by block as interleaved stereo `f32` frames.
///
/// Mono files are duplicated to both channels; files with more than two channels are
/// refused. The header's frame count, when it has one, is checked at the end, so a
/// truncated file is an error and not a silently short output.
pub struct AudioReader {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    sample_rate: u32,
    source_channels: usize,
    total_frames: Option<u64>,
    /// Decoded stereo samples not yet handed out; its capacity is one packet.
    pending: Vec<f32>,
    pending_pos: usize,
    /// Converts decoded packets to interleaved f32; rebuilt only when a packet is larger
    /// or has another channel count than the last one.
    sample_buf: Option<(SampleBuffer<f32>, usize, usize)>,
    frames_decoded: u64,
    finished: bool,
}

impl std::fmt::Debug for AudioReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioReader")
            .field("path", &self.path)
            .field("sample_rate", &self.sample_rate)
            .field("source_channels", &self.source_channels)
            .field("total_frames", &self.total_frames)
            .field("frames_decoded", &self.frames_decoded)
            .finish_non_exhaustive()
    }
}

impl AudioReader {
    /// Opens `path`, detects its format by content (the extension is only a hint) and
    /// decodes the first packet, so an empty or undecodable file fails here.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AudioError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|error| AudioError::Open {
            path: path.clone(),
            error,
        })?;
        let unsupported = |detail: String| AudioError::Unsupported {
            path: path.clone(),
            detail,
        };
        let stream = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                stream,
                &FormatOptions {
                    // Makes the Ogg reader report the true length (from the last
                    // granule position) rather than the padded one; `decode_next`
                    // trims the padded last packet to it.
                    enable_gapless: true,
                    ..FormatOptions::default()
                },
                &MetadataOptions::default(),
            )
            .map_err(|e| match e {
                // Symphonia's "core (probe): no suitable format reader found".
                SymphoniaError::Unsupported(_) => {
                    unsupported("the content is not a format klang knows".into())
                }
                e => unsupported(describe(&e)),
            })?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| unsupported("no audio track".into()))?;
        let params = track.codec_params.clone();
        let track_id = track.id;
        let sample_rate = params
            .sample_rate
            .filter(|&r| r > 0)
            .ok_or_else(|| unsupported("the header gives no sample rate".into()))?;
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| unsupported(describe(&e)))?;
        let source_channels = params.channels.map_or(0, |c| c.count());
        if source_channels > 2 {
            return Err(AudioError::TooManyChannels {
                path,
                channels: source_channels,
            });
        }
        let mut reader = AudioReader {
            path,
            format,
            decoder,
            track_id,
            sample_rate,
            source_channels,
            total_frames: announced_frames(&params),
            pending: Vec::new(),
            pending_pos: 0,
            sample_buf: None,
            frames_decoded: 0,
            finished: false,
        };
        reader.decode_next()?;
        if reader.pending.is_empty() {
            return Err(AudioError::Empty { path: reader.path });
        }
        Ok(reader)
    }

    /// The file's sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channels in the file (1 or 2); the reader always delivers 2.
    pub fn source_channels(&self) -> usize {
        self.source_channels
    }

    /// Frames the header announces, if the format records it (for progress bars).
    pub fn total_frames(&self) -> Option<u64> {
        self.total_frames
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills `out` (interleaved stereo, so `out.len() / 2` frames) and returns the
    /// number of frames written; fewer than asked only at the end of the file, 0 after it.
    pub fn read(&mut self, out: &mut [f32]) -> Result<usize, AudioError> {
        let wanted = out.len() / 2 * 2;
        let mut filled = 0;
        while filled < wanted {
            if self.pending_pos == self.pending.len() {
                if self.finished {
                    break;
                }
                self.decode_next()?;
                continue;
            }
            let n = (wanted - filled).min(self.pending.len() - self.pending_pos);
            out[filled..filled + n]
                .copy_from_slice(&self.pending[self.pending_pos..self.pending_pos + n]);
            filled += n;
            self.pending_pos += n;
        }
        Ok(filled / 2)
    }

    /// Decodes packets until one yields frames (into `pending`) or the stream ends.
    fn decode_next(&mut self) -> Result<(), AudioError> {
        self.pending.clear();
        self.pending_pos = 0;
        loop {
            let packet = match self.format.next_packet() {
                Ok(packet) => packet,
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    return self.finish_stream();
                }
                Err(e) => return Err(self.corrupt(describe(&e))),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(decoded) => decoded,
                Err(e) => return Err(self.corrupt(describe(&e))),
            };
            // Lossy codecs pad the last packet (Vorbis by up to a block); the header's
            // frame count, when there is one, is the true length.
            let frames = match self.total_frames {
                Some(total) => decoded
                    .frames()
                    .min(total.saturating_sub(self.frames_decoded) as usize),
                None => decoded.frames(),
            };
            if frames == 0 {
                continue;
            }
            let spec = *decoded.spec();
            let channels = spec.channels.count();
            if channels > 2 || channels == 0 {
                return Err(AudioError::TooManyChannels {
                    path: self.path.clone(),
                    channels,
                });
            }
            if self.source_channels == 0 {
                self.source_channels = channels;
            }
            let capacity = decoded.capacity();
            let (buf, _, _) = match &mut self.sample_buf {
                Some(entry) if entry.1 >= capacity && entry.2 == channels => entry,
                slot => slot.insert((SampleBuffer::new(capacity as u64, spec), capacity, channels)),
            };
            buf.copy_interleaved_ref(decoded);
            let samples = &buf.samples()[..frames * channels];
            if let Some(i) = samples.iter().position(|s| !s.is_finite()) {
                let frame = self.frames_decoded + (i / channels) as u64;
                return Err(AudioError::Corrupt {
                    path: self.path.clone(),
                    frame,
                    detail: "a sample is NaN or infinite".into(),
                });
            }
            if channels == 1 {
                self.pending.extend(samples.iter().flat_map(|&s| [s, s]));
            } else {
                self.pending.extend_from_slice(samples);
            }
            self.frames_decoded += frames as u64;
            return Ok(());
        }
    }

    fn finish_stream(&mut self) -> Result<(), AudioError> {
        self.finished = true;
        match self.total_frames {
            Some(expected) if self.frames_decoded < expected => Err(AudioError::Truncated {
                path: self.path.clone(),
                read: self.frames_decoded,
                expected,
            }),
            _ => Ok(()),
        }
    }

    fn corrupt(&self, detail: String) -> AudioError {
        AudioError::Corrupt {
            path: self.path.clone(),
            frame: self.frames_decoded,
            detail,
        }
    }
}

/// The frame count the header announces, or `None` when it announces none.
///
/// Writers that stream a WAV to a pipe cannot go back to fill in the data size and
/// leave the largest value, 0xFFFFFFFF ("until the end of the file"); that is not a
/// length, and treating it as one would call every such file truncated.
fn announced_frames(params: &symphonia::core::codecs::CodecParameters) -> Option<u64> {
    let frames = params.n_frames?;
    let bits = params.bits_per_coded_sample.or(params.bits_per_sample);
    if let (Some(bits), Some(channels)) = (bits, params.channels) {
        let block = u64::from(bits).div_ceil(8) * channels.count() as u64;
        if block > 0 && frames.saturating_mul(block) > u64::from(u32::MAX) - block {
            return None;
        }
    }
    Some(frames)
}

/// Symphonia's messages, lower-case and without its own "malformed stream:" prefixes
/// doubled up in ours.
fn describe(e: &SymphoniaError) -> String {
    match e {
        SymphoniaError::IoError(io) => format!("i/o error: {io}"),
        SymphoniaError::DecodeError(msg) => format!("malformed data: {msg}"),
        SymphoniaError::SeekError(_) => "seek error".into(),
        SymphoniaError::Unsupported(what) => format!("unsupported: {what}"),
        SymphoniaError::LimitError(what) => format!("limit exceeded: {what}"),
        SymphoniaError::ResetRequired => {
            "the stream changes its format midway (chained streams are not supported)".into()
        }
    }
}
