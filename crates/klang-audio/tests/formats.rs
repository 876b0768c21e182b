//! Reading every supported format, the errors for bad files, and atomic writing.
//!
//! FLAC and Ogg Vorbis fixtures are made at test time with `sox` (Debian package `sox`,
//! installed by `scripts/deps.sh klang`), from WAV files this test writes itself.

use klang_audio::{AudioError, AudioReader, SampleFormat, WavWriter};
use std::path::{Path, PathBuf};
use std::process::Command;

const RATE: u32 = 44_100;
const FRAMES: usize = 20_000;

/// Left: a 997 Hz sine at −6 dBFS; right: the same, inverted and at half the level.
fn reference(frame: usize) -> (f32, f32) {
    let s = 0.5 * (std::f64::consts::TAU * 997.0 * frame as f64 / f64::from(RATE)).sin();
    (s as f32, (-0.5 * s) as f32)
}

fn write_int_wav(path: &Path, bits: u16, channels: u16, frames: usize) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: RATE,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let full = ((1i64 << (bits - 1)) - 1) as f32;
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        let (l, r) = reference(i);
        for c in 0..channels {
            let s = if c == 1 { r } else { l };
            w.write_sample((s * full).round() as i32).unwrap();
        }
    }
    w.finalize().unwrap();
}

fn write_float_wav(path: &Path, frames: usize) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        let (l, r) = reference(i);
        w.write_sample(l).unwrap();
        w.write_sample(r).unwrap();
    }
    w.finalize().unwrap();
}

/// Reads the whole file in blocks of `block` frames.
fn read_all(path: &Path, block: usize) -> Result<(AudioReader, Vec<f32>), AudioError> {
    let mut reader = AudioReader::open(path)?;
    let mut all = Vec::new();
    let mut buf = vec![0.0f32; block * 2];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n * 2]);
    }
    Ok((reader, all))
}

fn max_error(samples: &[f32], mono: bool) -> f32 {
    samples
        .chunks_exact(2)
        .enumerate()
        .map(|(i, f)| {
            let (l, r) = reference(i);
            let r = if mono { l } else { r };
            (f[0] - l).abs().max((f[1] - r).abs())
        })
        .fold(0.0, f32::max)
}

fn sox(args: &[&Path]) {
    let out = Command::new("sox")
        .args(args)
        .output()
        .expect("`sox` must be installed for the format tests: run scripts/deps.sh klang");
    assert!(
        out.status.success(),
        "sox failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn wav_16_bit_stereo() {
    let d = dir();
    let p = d.path().join("in.wav");
    write_int_wav(&p, 16, 2, FRAMES);
    let (reader, samples) = read_all(&p, 4096).unwrap();
    assert_eq!(reader.sample_rate(), RATE);
    assert_eq!(reader.source_channels(), 2);
    assert_eq!(reader.total_frames(), Some(FRAMES as u64));
    assert_eq!(samples.len(), FRAMES * 2);
    assert!(max_error(&samples, false) < 1.0 / 32_000.0);
}

#[test]
fn wav_24_bit_stereo() {
    let d = dir();
    let p = d.path().join("in.wav");
    write_int_wav(&p, 24, 2, FRAMES);
    let (_, samples) = read_all(&p, 1000).unwrap();
    assert_eq!(samples.len(), FRAMES * 2);
    assert!(max_error(&samples, false) < 1.0 / 8_000_000.0);
}

#[test]
fn wav_32_bit_int_stereo() {
    let d = dir();
    let p = d.path().join("in32.wav");
    write_int_wav(&p, 32, 2, FRAMES);
    let (_, samples) = read_all(&p, 4096).unwrap();
    assert_eq!(samples.len(), FRAMES * 2);
    assert!(max_error(&samples, false) < 1e-7);
}

#[test]
fn wav_32_bit_float_is_exact() {
    let d = dir();
    let p = d.path().join("in.wav");
    write_float_wav(&p, FRAMES);
    let (_, samples) = read_all(&p, 333).unwrap();
    assert_eq!(samples.len(), FRAMES * 2);
    assert_eq!(max_error(&samples, false), 0.0);
}

#[test]
fn mono_is_duplicated_to_both_channels() {
    let d = dir();
    let p = d.path().join("mono.wav");
    write_int_wav(&p, 16, 1, FRAMES);
    let (reader, samples) = read_all(&p, 4096).unwrap();
    assert_eq!(reader.source_channels(), 1);
    assert_eq!(samples.len(), FRAMES * 2);
    assert!(samples.chunks_exact(2).all(|f| f[0] == f[1]));
    assert!(max_error(&samples, true) < 1.0 / 32_000.0);
}

#[test]
fn block_size_does_not_change_the_samples() {
    let d = dir();
    let p = d.path().join("in.wav");
    write_float_wav(&p, FRAMES);
    let (_, big) = read_all(&p, 65_536).unwrap();
    let (_, tiny) = read_all(&p, 7).unwrap();
    assert_eq!(big, tiny);
}

#[test]
fn flac_is_lossless() {
    let d = dir();
    let wav = d.path().join("in.wav");
    let flac = d.path().join("in.flac");
    write_int_wav(&wav, 16, 2, FRAMES);
    sox(&[&wav, &flac]);
    let (_, from_wav) = read_all(&wav, 4096).unwrap();
    let (reader, from_flac) = read_all(&flac, 4096).unwrap();
    assert_eq!(reader.sample_rate(), RATE);
    assert_eq!(from_flac, from_wav);
}

#[test]
fn ogg_vorbis_decodes_close_to_the_source() {
    let d = dir();
    let wav = d.path().join("in.wav");
    let ogg = d.path().join("in.ogg");
    write_int_wav(&wav, 16, 2, FRAMES);
    sox(&[&wav, Path::new("-C"), Path::new("6"), &ogg]);
    let (reader, samples) = read_all(&ogg, 4096).unwrap();
    assert_eq!(reader.sample_rate(), RATE);
    assert_eq!(reader.source_channels(), 2);
    let frames = samples.len() / 2;
    assert!(
        frames == FRAMES,
        "decoded {frames} frames of {FRAMES}: the encoder's padding must be trimmed"
    );
    // Lossy, so compare levels: the left channel's RMS within 0.5 dB of the source's,
    // and the right channel still the inverted, halved left.
    let skip = 2048;
    let body = &samples[skip * 2..(FRAMES - skip) * 2];
    let rms = |ch: usize| {
        let s: f64 = body.chunks_exact(2).map(|f| f64::from(f[ch]).powi(2)).sum();
        (s / (body.len() / 2) as f64).sqrt()
    };
    let expected = 0.5 / 2f64.sqrt();
    assert!((20.0 * (rms(0) / expected).log10()).abs() < 0.5);
    assert!((20.0 * (rms(1) / rms(0) / 0.5).log10()).abs() < 0.5);
    let corr: f64 = body
        .chunks_exact(2)
        .map(|f| f64::from(f[0]) * f64::from(f[1]))
        .sum();
    assert!(corr < 0.0, "right must be the inverted left");
}

#[test]
fn more_than_two_channels_is_a_clear_error() {
    let d = dir();
    let p = d.path().join("surround.wav");
    write_int_wav(&p, 16, 3, 100);
    let err = AudioReader::open(&p).unwrap_err();
    assert!(matches!(
        err,
        AudioError::TooManyChannels { channels: 3, .. }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("surround.wav") && msg.contains("3 channels"),
        "{msg}"
    );
}

#[test]
fn empty_file_is_a_clear_error() {
    let d = dir();
    let p = d.path().join("empty.wav");
    write_int_wav(&p, 16, 2, 0);
    let err = AudioReader::open(&p).unwrap_err();
    assert!(matches!(err, AudioError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("empty.wav"));

    let zero = d.path().join("zero.flac");
    std::fs::write(&zero, b"").unwrap();
    let err = AudioReader::open(&zero).unwrap_err();
    assert!(err.to_string().contains("zero.flac"), "{err}");
}

#[test]
fn garbage_is_a_clear_error() {
    let d = dir();
    let p = d.path().join("noise.wav");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&p, bytes).unwrap();
    let err = AudioReader::open(&p).unwrap_err();
    assert!(matches!(err, AudioError::Unsupported { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("noise.wav") && msg.contains("WAV"), "{msg}");
}

#[test]
fn missing_file_names_the_file() {
    let err = AudioReader::open("/nonexistent/klang/in.wav").unwrap_err();
    assert!(matches!(err, AudioError::Open { .. }));
    assert!(err.to_string().contains("/nonexistent/klang/in.wav"));
}

#[test]
fn truncated_wav_is_an_error_not_a_short_read() {
    let d = dir();
    let p = d.path().join("cut.wav");
    write_int_wav(&p, 16, 2, FRAMES);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_all(&p, 4096).unwrap_err();
    assert!(
        matches!(
            err,
            AudioError::Truncated { .. } | AudioError::Corrupt { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cut.wav"));
}

#[test]
fn streamed_wav_with_unknown_length_reads_to_the_end() {
    // What ffmpeg or arecord write to a pipe: RIFF and data sizes of 0xFFFFFFFF.
    let d = dir();
    let p = d.path().join("piped.wav");
    write_int_wav(&p, 16, 2, FRAMES);
    let mut bytes = std::fs::read(&p).unwrap();
    let data = bytes.windows(4).position(|w| w == b"data").unwrap();
    bytes[4..8].copy_from_slice(&[0xFF; 4]);
    bytes[data + 4..data + 8].copy_from_slice(&[0xFF; 4]);
    std::fs::write(&p, &bytes).unwrap();
    let (reader, samples) = read_all(&p, 4096).unwrap();
    assert_eq!(reader.total_frames(), None);
    assert_eq!(samples.len(), FRAMES * 2);
    assert!(max_error(&samples, false) < 1.0 / 32_000.0);
}

#[test]
fn corrupt_flac_data_is_an_error() {
    let d = dir();
    let wav = d.path().join("in.wav");
    let flac = d.path().join("bad.flac");
    write_int_wav(&wav, 16, 2, FRAMES);
    sox(&[&wav, &flac]);
    let mut bytes = std::fs::read(&flac).unwrap();
    let n = bytes.len();
    // Scribble over the audio frames, keeping the header intact.
    for b in &mut bytes[n / 3..n / 3 + 2000] {
        *b = 0x5A;
    }
    std::fs::write(&flac, &bytes).unwrap();
    let err = read_all(&flac, 4096).unwrap_err();
    assert!(err.to_string().contains("bad.flac"), "{err}");
}

#[test]
fn writer_round_trips_every_sample_format() {
    let d = dir();
    let samples: Vec<f32> = (0..3000).map(|i| (i as f32 * 0.01).sin() * 0.9).collect();
    for (format, tol) in [
        (SampleFormat::F32, 0.0),
        (SampleFormat::I16, 1.0 / 32_000.0),
        (SampleFormat::I24, 1.0 / 8_000_000.0),
    ] {
        let p = d.path().join(format!("{format:?}.wav"));
        let mut w = WavWriter::create(&p, 3, 96_000, format).unwrap();
        w.write(&samples[..1500]).unwrap();
        w.write(&samples[1500..]).unwrap();
        w.finish().unwrap();
        let spec = hound::WavReader::open(&p).unwrap().spec();
        assert_eq!((spec.channels, spec.sample_rate), (3, 96_000));
        let read: Vec<f32> = match format {
            SampleFormat::F32 => hound::WavReader::open(&p)
                .unwrap()
                .samples::<f32>()
                .map(Result::unwrap)
                .collect(),
            _ => {
                let full = ((1i64 << (spec.bits_per_sample - 1)) - 1) as f32;
                hound::WavReader::open(&p)
                    .unwrap()
                    .samples::<i32>()
                    .map(|s| s.unwrap() as f32 / full)
                    .collect()
            }
        };
        assert_eq!(read.len(), samples.len());
        let err = read
            .iter()
            .zip(&samples)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err <= tol, "{format:?}: error {err}");
    }
}

#[test]
fn writer_is_atomic() {
    let d = dir();
    let target = d.path().join("out.wav");
    std::fs::write(&target, b"previous contents").unwrap();

    // Dropped before finish (an error mid-way): the old file stays, no temp is left.
    let mut w = WavWriter::create(&target, 2, 48_000, SampleFormat::F32).unwrap();
    w.write(&[0.1; 2000]).unwrap();
    assert_eq!(
        entries(d.path()).len(),
        2,
        "the temp file sits beside the target"
    );
    drop(w);
    assert_eq!(std::fs::read(&target).unwrap(), b"previous contents");
    assert_eq!(entries(d.path()), vec![target.clone()]);

    // Finished: the new file replaces the old one, no temp is left.
    let mut w = WavWriter::create(&target, 2, 48_000, SampleFormat::F32).unwrap();
    w.write(&[0.1; 2000]).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"previous contents");
    w.finish().unwrap();
    assert_eq!(entries(d.path()), vec![target.clone()]);
    assert_eq!(hound::WavReader::open(&target).unwrap().len(), 2000);
}

#[test]
fn writer_rejects_partial_frames_and_bad_dirs() {
    let d = dir();
    let mut w = WavWriter::create(d.path().join("x.wav"), 2, 48_000, SampleFormat::F32).unwrap();
    assert!(w.write(&[0.0; 3]).is_err());
    let err = WavWriter::create(d.path(), 2, 48_000, SampleFormat::F32).unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
    let err =
        WavWriter::create("/nonexistent/klang/x.wav", 2, 48_000, SampleFormat::F32).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/klang/x.wav"),
        "{err}"
    );
}

#[test]
fn flac_24_bit_and_mono_ogg() {
    let d = dir();
    let wav = d.path().join("in24.wav");
    let flac = d.path().join("in24.flac");
    write_int_wav(&wav, 24, 2, FRAMES);
    sox(&[&wav, &flac]);
    let (_, from_wav) = read_all(&wav, 4096).unwrap();
    let (_, from_flac) = read_all(&flac, 4096).unwrap();
    assert_eq!(from_flac, from_wav, "24-bit FLAC is lossless");

    let mono = d.path().join("mono.wav");
    let ogg = d.path().join("mono.ogg");
    write_int_wav(&mono, 16, 1, FRAMES);
    sox(&[&mono, &ogg]);
    let (reader, samples) = read_all(&ogg, 4096).unwrap();
    assert_eq!(reader.source_channels(), 1);
    assert_eq!(samples.len(), FRAMES * 2);
    assert!(samples.chunks_exact(2).all(|f| f[0] == f[1]));
}
