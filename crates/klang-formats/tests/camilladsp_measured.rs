//! Runs the CamillaDSP export in the real CamillaDSP (stdin → stdout, 32-bit
//! float) and compares the measured gain of every output with klang's
//! `chain_response`. CamillaDSP is not a Debian package, so this test needs a
//! binary: `CAMILLADSP=/path/to/camilladsp cargo test -p klang-formats --test
//! camilladsp_measured -- --ignored`. With CamillaDSP 4.1.3 (built from source, default
//! features) every output matched within 0.001 dB, first-order sections, slope
//! shelves, the LR2 sub with its inversion and delay included.

use std::io::Write;
use std::process::{Command, Stdio};

use klang_dsp::config::{Config, Crossover, EqBand, FilterType, Slope};
use klang_dsp::response::chain_response;
use klang_pwtest::analysis;

const RATE: u32 = 48_000;
const AMPLITUDE: f64 = 0.05;
const FREQS: [f64; 7] = [40.0, 60.0, 220.0, 1000.0, 1250.0, 3000.0, 8000.0];

fn config(sub: bool) -> Config {
    let mut c = Config {
        input_gain_db: -4.0,
        low_cut_hz: 25.0,
        ..Config::default()
    };
    c.tone.bass_db = 3.0;
    c.tone.treble_db = -2.0;
    let b = |kind, freq, gain_db, q, slope| EqBand {
        kind,
        freq,
        gain_db,
        q,
        slope,
    };
    c.eq = vec![
        b(FilterType::Peak, 1000.0, -6.0, 2.0, None),
        b(FilterType::Lowshelf, 80.0, 4.0, 0.7, Some(0.8)),
        b(FilterType::Highshelf, 6000.0, 4.0, 0.9, None),
        b(FilterType::Lowpass, 12000.0, 0.0, 0.9, None),
        b(FilterType::Notch, 4500.0, 0.0, 4.0, None),
        b(FilterType::Lowshelf1, 300.0, 2.0, 0.7, None),
        b(FilterType::Allpass1, 700.0, 0.0, 0.7, None),
    ];
    c.graphic_eq.gains_db[3] = 5.0;
    c.graphic_eq.gains_db[8] = -4.0;
    c.trim_db.l = -1.0;
    c.trim_db.r = -2.0;
    if sub {
        c.crossover = Some(Crossover {
            freq: 90.0,
            slope: Slope::LR2,
            sub_gain_db: 2.0,
            sub_delay_ms: 3.0,
        });
        c.trim_db.sub = -1.0;
    }
    c
}

fn run(binary: &str, config: &Config) {
    let yaml = klang_formats::camilla::export(config, RATE).unwrap();
    let dir = tempfile_dir();
    let path = dir.join(format!("camilla-{}.yml", config.crossover.is_some()));
    std::fs::write(&path, yaml).unwrap();
    let frames = 3 * RATE as usize;
    let mut input = Vec::with_capacity(frames * 8);
    for i in 0..frames {
        let t = i as f64 / f64::from(RATE);
        let s: f64 = FREQS
            .iter()
            .map(|f| AMPLITUDE * (2.0 * std::f64::consts::PI * f * t).sin())
            .sum();
        for _ in 0..2 {
            input.extend_from_slice(&(s as f32).to_le_bytes());
        }
    }
    let mut child = Command::new(binary)
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run camilladsp");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let outputs = if config.crossover.is_some() { 3 } else { 2 };
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    // One second from 1 s on: past the start and before the end of the input.
    let start = RATE as usize;
    assert!(
        samples.len() >= (start + RATE as usize) * outputs,
        "got {} samples",
        samples.len()
    );
    let expected = chain_response(config, RATE, 0.0, &FREQS).unwrap();
    let mut worst: f64 = 0.0;
    for (ch, want) in expected.iter().enumerate() {
        let x: Vec<f32> = (start..start + RATE as usize)
            .map(|i| samples[i * outputs + ch])
            .collect();
        for (k, &f) in FREQS.iter().enumerate() {
            if want.name == "SUB" && f > 200.0 {
                continue;
            }
            let got = analysis::db(analysis::tone_amplitude(&x, RATE, f)) - analysis::db(AMPLITUDE);
            let d = (got - want.magnitude_db[k]).abs();
            eprintln!(
                "{} {f} Hz: klang {:.3} dB, CamillaDSP {got:.3} dB",
                want.name, want.magnitude_db[k]
            );
            worst = worst.max(d);
        }
    }
    assert!(worst < 0.01, "worst difference {worst} dB");
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("klang-formats-camilla-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
#[ignore = "needs a CamillaDSP binary in $CAMILLADSP (not packaged in Debian)"]
fn camilladsp_runs_the_export_with_klangs_response() {
    let binary = std::env::var("CAMILLADSP").expect("set CAMILLADSP to a camilladsp binary");
    run(&binary, &config(false));
    run(&binary, &config(true));
    let _ = std::fs::remove_dir_all(tempfile_dir());
}
