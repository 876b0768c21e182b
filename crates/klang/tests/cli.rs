//! The `klang` binary end to end: processing measured against the analytic response,
//! errors that name what is wrong and write nothing, atomic output, plots and the demo.

use klang_dsp::config::Config;
use klang_dsp::response::chain_response;
use std::f64::consts::TAU;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RATE: u32 = 48_000;

fn klang(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klang"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the klang binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status
        .code()
        .expect("klang exits normally, not by a signal")
}

/// A stereo f32 WAV of `seconds` with sines at `freqs` (each at `amp`) in both channels.
fn write_sines(path: &Path, rate: u32, seconds: f64, freqs: &[f64], amp: f64) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let frames = (seconds * f64::from(rate)) as usize;
    for n in 0..frames {
        let t = n as f64 / f64::from(rate);
        let s: f64 = freqs.iter().map(|f| amp * (TAU * f * t).sin()).sum();
        w.write_sample(s as f32).unwrap();
        w.write_sample(s as f32).unwrap();
    }
    w.finalize().unwrap();
}

/// Reads a float WAV: (channels, rate, interleaved samples).
fn read_wav(path: &Path) -> (usize, u32, Vec<f32>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    assert_eq!(spec.sample_format, hound::SampleFormat::Float);
    let samples = r.samples::<f32>().map(Result::unwrap).collect();
    (usize::from(spec.channels), spec.sample_rate, samples)
}

/// Amplitude of the `freq` component of channel `ch` over the last second, by
/// projection on sine and cosine (exact for a whole number of cycles per second).
fn amplitude(samples: &[f32], channels: usize, ch: usize, rate: u32, freq: f64) -> f64 {
    let frames = samples.len() / channels;
    let n = rate as usize;
    let start = frames - n;
    let (mut a, mut b) = (0.0, 0.0);
    for i in 0..n {
        let x = f64::from(samples[(start + i) * channels + ch]);
        let phase = TAU * freq * (start + i) as f64 / f64::from(rate);
        a += x * phase.cos();
        b += x * phase.sin();
    }
    2.0 * (a * a + b * b).sqrt() / n as f64
}

fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

/// Directory entries' names, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const VOICED: &str = r#"
input_gain_db = -2.0
[tone]
bass_db = 3.0
treble_db = -2.0
[[eq]]
type = "peak"
freq = 1000
gain_db = 6.0
q = 1.41
[[eq]]
type = "lowshelf"
freq = 63
gain_db = -3.0
q = 0.7
[graphic_eq]
gains_db = [0, 2, 0, 0, -3, 0, 0, 4, 0, 0, 0, -2, 0, 0, 0]
[volume]
max_db = 0.0
"#;

/// Processes sines through `config_text` and checks each measured gain against
/// `chain_response` within 0.1 dB. Returns the output for further checks.
fn check_measured_gains(
    dir: &Path,
    config_text: &str,
    extra_args: &[&str],
    volume: f64,
    freqs: &[f64],
) -> (usize, Vec<f32>) {
    let input = dir.join("sines.wav");
    let amp = 0.02;
    write_sines(&input, RATE, 2.0, freqs, amp);
    std::fs::write(dir.join("voiced.toml"), config_text).unwrap();
    let mut args = vec!["process", "sines.wav", "out.wav", "--config", "voiced.toml"];
    args.extend_from_slice(extra_args);
    let out = klang(dir, &args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Not a terminal: no progress bar, just the one-line summary.
    let msg = stderr(&out);
    assert!(!msg.contains('\u{1b}') && !msg.contains('\r'), "{msg:?}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
    let (channels, rate, samples) = read_wav(&dir.join("out.wav"));
    assert_eq!(rate, RATE);
    assert_eq!(samples.len() / channels, 2 * RATE as usize, "output length");

    let config = Config::from_toml(config_text).unwrap();
    let expected = chain_response(&config, RATE, volume, freqs).unwrap();
    assert_eq!(expected.len(), channels);
    for (ch, response) in expected.iter().enumerate() {
        for (k, &f) in freqs.iter().enumerate() {
            let measured = db(amplitude(&samples, channels, ch, RATE, f) / amp);
            let want = response.magnitude_db[k];
            assert!(
                (measured - want).abs() < 0.1,
                "{} at {f} Hz: measured {measured:.3} dB, chain_response {want:.3} dB",
                response.name
            );
        }
    }
    (channels, samples)
}

#[test]
fn process_gain_matches_chain_response() {
    let d = tempfile::tempdir().unwrap();
    let (channels, _) = check_measured_gains(
        d.path(),
        VOICED,
        &["--volume-db", "-3"],
        -3.0,
        &[50.0, 100.0, 311.0, 1000.0, 5000.0, 12000.0],
    );
    assert_eq!(channels, 2);
}

#[test]
fn crossover_gives_three_outputs_matching_chain_response() {
    let d = tempfile::tempdir().unwrap();
    let config = format!(
        "{VOICED}[crossover]\nfreq = 80\nslope = \"LR4\"\nsub_gain_db = 2.0\nsub_delay_ms = 1.5\n"
    );
    let (channels, _) =
        check_measured_gains(d.path(), &config, &[], 0.0, &[30.0, 80.0, 200.0, 2000.0]);
    assert_eq!(channels, 3);
}

#[test]
fn volume_above_max_is_clamped_and_reported() {
    let d = tempfile::tempdir().unwrap();
    let config = "[volume]\nmax_db = -6.0\n";
    write_sines(&d.path().join("in.wav"), RATE, 1.5, &[1000.0], 0.1);
    std::fs::write(d.path().join("c.toml"), config).unwrap();
    let out = klang(
        d.path(),
        &["process", "in.wav", "out.wav", "--config", "c.toml"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("max_db"), "{}", stderr(&out));
    let (channels, _, samples) = read_wav(&d.path().join("out.wav"));
    let gain = db(amplitude(&samples, channels, 0, RATE, 1000.0) / 0.1);
    assert!((gain + 6.0).abs() < 0.1, "gain {gain} dB, want -6 dB");
}

#[test]
fn apo_preset_file_is_applied() {
    let d = tempfile::tempdir().unwrap();
    let apo = "Preamp: -4.0 dB\nFilter 1: ON PK Fc 1000 Hz Gain 5.0 dB Q 1.00\nFilter 2: ON LSC Fc 105 Hz Gain 3.0 dB Q 0.70\n";
    std::fs::write(d.path().join("autoeq.txt"), apo).unwrap();
    write_sines(&d.path().join("in.wav"), RATE, 1.5, &[100.0, 1000.0], 0.05);
    let out = klang(
        d.path(),
        &["process", "in.wav", "out.wav", "--preset", "autoeq.txt"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let config = klang_dsp::parse_preset(apo).unwrap();
    let want = chain_response(&config, RATE, 0.0, &[100.0, 1000.0]).unwrap();
    let (channels, _, samples) = read_wav(&d.path().join("out.wav"));
    for (k, f) in [100.0, 1000.0].into_iter().enumerate() {
        let got = db(amplitude(&samples, channels, 1, RATE, f) / 0.05);
        assert!((got - want[1].magnitude_db[k]).abs() < 0.1, "{f} Hz: {got}");
    }
}

#[test]
fn config_plus_preset_adds_the_presets_eq() {
    let d = tempfile::tempdir().unwrap();
    let speakers = "[crossover]\nfreq = 80\nslope = \"LR4\"\n[[eq]]\ntype = \"peak\"\nfreq = 200\ngain_db = -4.0\n";
    let apo = "Preamp: -3.0 dB\nFilter 1: ON PK Fc 1000 Hz Gain 5.0 dB Q 1.00\n";
    std::fs::write(d.path().join("speakers.toml"), speakers).unwrap();
    std::fs::write(d.path().join("voicing.txt"), apo).unwrap();
    let freqs = [200.0, 1000.0];
    write_sines(&d.path().join("in.wav"), RATE, 1.5, &freqs, 0.05);
    let out = klang(
        d.path(),
        &[
            "process",
            "in.wav",
            "out.wav",
            "--config",
            "speakers.toml",
            "--preset",
            "voicing.txt",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut combined = Config::from_toml(speakers).unwrap();
    let preset = klang_dsp::parse_preset(apo).unwrap();
    combined.input_gain_db += preset.input_gain_db;
    combined.eq.extend(preset.eq);
    let want = chain_response(&combined, RATE, 0.0, &freqs).unwrap();
    let (channels, _, samples) = read_wav(&d.path().join("out.wav"));
    assert_eq!(channels, 3, "the configuration's crossover stays");
    for (k, &f) in freqs.iter().enumerate() {
        let got = db(amplitude(&samples, channels, 0, RATE, f) / 0.05);
        assert!(
            (got - want[0].magnitude_db[k]).abs() < 0.1,
            "{f} Hz: {got} dB vs {}",
            want[0].magnitude_db[k]
        );
    }
    // A preset with more than a voicing: klang says what it leaves out.
    let out = klang(
        d.path(),
        &[
            "response",
            "--config",
            "speakers.toml",
            "--preset",
            "late-night",
            "--out",
            "r.svg",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("ignored"), "{}", stderr(&out));
}

#[test]
fn flac_input_keeps_its_rate_and_length() {
    let d = tempfile::tempdir().unwrap();
    let wav = d.path().join("in.wav");
    write_sines(&wav, 44_100, 1.0, &[440.0], 0.1);
    let st = Command::new("sox")
        .current_dir(d.path())
        .args(["in.wav", "-b", "16", "in.flac"])
        .status()
        .expect("`sox` must be installed: run scripts/deps.sh klang");
    assert!(st.success());
    let out = klang(
        d.path(),
        &["process", "in.flac", "out.wav", "--format", "f32"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (channels, rate, samples) = read_wav(&d.path().join("out.wav"));
    assert_eq!((channels, rate, samples.len()), (2, 44_100, 2 * 44_100));
}

#[test]
fn integer_output_formats() {
    let d = tempfile::tempdir().unwrap();
    write_sines(&d.path().join("in.wav"), RATE, 0.5, &[1000.0], 0.5);
    for (format, bits) in [("s16", 16), ("s24", 24), ("f32", 32)] {
        let out = klang(
            d.path(),
            &["process", "in.wav", "out.wav", "--format", format],
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let r = hound::WavReader::open(d.path().join("out.wav")).unwrap();
        assert_eq!(r.spec().bits_per_sample, bits, "{format}");
        assert_eq!(r.duration(), RATE / 2);
    }
}

#[test]
fn corrupt_input_is_named_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let junk: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(d.path().join("broken.wav"), junk).unwrap();
    let out = klang(d.path(), &["process", "broken.wav", "out.wav"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let msg = stderr(&out);
    assert!(
        msg.contains("broken.wav") && msg.contains("not a readable audio file"),
        "{msg}"
    );
    assert_eq!(names(d.path()), ["broken.wav"]);
}

#[test]
fn unsupported_sample_rate_blames_the_input() {
    let d = tempfile::tempdir().unwrap();
    write_sines(&d.path().join("phone.wav"), 8_000, 0.5, &[440.0], 0.1);
    let out = klang(d.path(), &["process", "phone.wav", "out.wav"]);
    let msg = stderr(&out);
    assert_eq!(code(&out), 4, "{msg}");
    assert!(
        msg.contains("phone.wav") && msg.contains("8000 Hz"),
        "{msg}"
    );
    assert_eq!(names(d.path()), ["phone.wav"]);
}

#[test]
fn bad_config_names_file_line_and_field_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    write_sines(&d.path().join("in.wav"), RATE, 0.5, &[1000.0], 0.1);
    std::fs::write(d.path().join("out.wav"), b"the previous output").unwrap();
    let cases = [
        (
            "[[eq]]\ntype = \"peak\"\nfreq = 1000\ngain_db = 3.0\nq = -1.0\n",
            "eq[0].q",
            "line 5",
        ),
        (
            "[tone]\nbass_db = 3.0\ntrebel_db = 1.0\n",
            "trebel_db",
            "line 3",
        ),
        // Valid TOML, but the frequency is above Nyquist at the input's 48 kHz.
        (
            "low_cut_hz = 30\n[[eq]]\ntype = \"peak\"\nfreq = 25000\ngain_db = 1.0\n",
            "eq[0].freq",
            "line 4",
        ),
    ];
    for (text, field, line) in cases {
        std::fs::write(d.path().join("bad.toml"), text).unwrap();
        let out = klang(
            d.path(),
            &["process", "in.wav", "out.wav", "--config", "bad.toml"],
        );
        let msg = stderr(&out);
        assert_eq!(code(&out), 3, "{msg}");
        for part in ["bad.toml", field, line] {
            assert!(msg.contains(part), "message lacks {part:?}: {msg}");
        }
        assert_eq!(
            std::fs::read(d.path().join("out.wav")).unwrap(),
            b"the previous output"
        );
        assert_eq!(names(d.path()), ["bad.toml", "in.wav", "out.wav"]);
    }
}

#[test]
fn failure_mid_stream_leaves_no_output() {
    // A WAV whose header announces 4 s but which holds 2 s: klang processes and
    // writes several blocks before it finds out, and must then leave nothing.
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("cut.wav");
    write_sines(&input, RATE, 4.0, &[1000.0], 0.1);
    let bytes = std::fs::read(&input).unwrap();
    std::fs::write(&input, &bytes[..bytes.len() / 2]).unwrap();
    let out = klang(d.path(), &["process", "cut.wav", "out.wav"]);
    let msg = stderr(&out);
    assert_eq!(code(&out), 4, "{msg}");
    assert!(
        msg.contains("cut.wav") && msg.contains("truncated"),
        "{msg}"
    );
    assert_eq!(names(d.path()), ["cut.wav"]);
}

#[test]
fn output_appears_only_complete() {
    // While klang runs, the target name either does not exist or holds the old file;
    // afterwards it is the complete new file and no temporary file is left.
    let d = tempfile::tempdir().unwrap();
    write_sines(&d.path().join("in.wav"), RATE, 3.0, &[440.0], 0.1);
    std::fs::write(d.path().join("out.wav"), b"old").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_klang"))
        .args(["process", "in.wav", "out.wav"])
        .current_dir(d.path())
        .spawn()
        .unwrap();
    let status = loop {
        let content = std::fs::read(d.path().join("out.wav")).unwrap();
        if content != b"old" {
            // Renamed into place: must already be complete.
            assert_eq!(
                hound::WavReader::open(d.path().join("out.wav"))
                    .unwrap()
                    .duration(),
                3 * RATE
            );
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
    };
    assert!(status.success());
    assert_eq!(names(d.path()), ["in.wav", "out.wav"]);
    let (_, _, samples) = read_wav(&d.path().join("out.wav"));
    assert_eq!(samples.len(), 2 * 3 * RATE as usize);
}

#[test]
fn killed_mid_run_leaves_only_a_hidden_part_file() {
    // SIGKILL runs no destructor, so the temporary file stays; it must not look like
    // the output: hidden, named `.part`, and the target itself never appears.
    let d = tempfile::tempdir().unwrap();
    write_sines(&d.path().join("in.wav"), RATE, 60.0, &[440.0], 0.1);
    std::fs::write(
        d.path().join("graphic.toml"),
        "[graphic_eq]\ngains_db = [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -3]\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_klang"))
        .args(["process", "in.wav", "out.wav", "--config", "graphic.toml"])
        .current_dir(d.path())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let part = loop {
        let part = names(d.path()).into_iter().find(|n| n.ends_with(".part"));
        if let Some(part) = part {
            break part;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "klang finished before it could be interrupted; use a longer input"
        );
        assert!(
            started.elapsed().as_secs() < 30,
            "no temporary file appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(part.starts_with(".out.wav."), "{part}");
    let left = names(d.path());
    assert!(!left.contains(&"out.wav".to_string()), "{left:?}");
}

#[test]
fn response_writes_png_and_svg() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("voiced.toml"), VOICED).unwrap();
    let out = klang(
        d.path(),
        &["response", "--config", "voiced.toml", "--out", "r.png"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let png = std::fs::read(d.path().join("r.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000);

    let out = klang(
        d.path(),
        &[
            "response", "--preset", "sub80", "--rate", "44100", "--out", "r.svg",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let svg = std::fs::read_to_string(d.path().join("r.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for label in ["L = R", "SUB", "Gain (dB)", "preset sub80"] {
        assert!(svg.contains(label), "the SVG lacks {label:?}");
    }

    let out = klang(d.path(), &["response", "--out", "r.jpg"]);
    assert_eq!(code(&out), 2, "a wrong extension is a usage error");
    assert_eq!(names(d.path()), ["r.png", "r.svg", "voiced.toml"]);
}

#[test]
fn every_builtin_preset_plots_at_every_supported_rate() {
    let d = tempfile::tempdir().unwrap();
    for preset in ["default", "flat", "wall", "sub80", "late-night"] {
        for rate in klang_dsp::config::SUPPORTED_SAMPLE_RATES {
            let rate = rate.to_string();
            let out = klang(
                d.path(),
                &[
                    "response", "--preset", preset, "--rate", &rate, "--out", "p.svg",
                ],
            );
            assert_eq!(code(&out), 0, "{preset} at {rate}: {}", stderr(&out));
        }
    }
    let out = klang(
        d.path(),
        &["response", "--preset", "no-such-preset", "--out", "p.svg"],
    );
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("late-night"),
        "the error lists the presets"
    );
}

#[test]
fn demo_writes_wav_and_plot() {
    let d = tempfile::tempdir().unwrap();
    let out = klang(d.path(), &["demo", "--out-dir", "artifacts/demo"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir: PathBuf = d.path().join("artifacts/demo");
    assert_eq!(names(&dir), ["demo-input.wav", "demo.wav", "response.png"]);
    let (channels, rate, samples) = read_wav(&dir.join("demo.wav"));
    assert_eq!((channels, rate), (2, klang_audio::DEMO_SAMPLE_RATE));
    assert_eq!(
        samples.len(),
        2 * (klang_audio::DEMO_SECONDS * f64::from(rate)) as usize
    );
    let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(
        peak > 0.1 && peak <= 10f32.powf(-1.0 / 20.0) + 1e-6,
        "peak {peak}"
    );
    let png = std::fs::read(dir.join("response.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
