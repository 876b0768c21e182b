//! `klang sweep` / `klang calibrate` flags: the level cap from the configuration, the
//! fit's range and limits, the CSV, and analysis at the recording's own rate.

use std::path::Path;
use std::process::{Command, Output};

/// Runs klang in `dir` with its own (empty) XDG directories.
fn klang(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klang"))
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env("XDG_STATE_HOME", dir.join("xdg-state"))
        .env("XDG_RUNTIME_DIR", dir.join("xdg-run"))
        .output()
        .unwrap()
}

fn succeed(dir: &Path, args: &[&str]) -> String {
    let out = klang(dir, args);
    assert!(
        out.status.success(),
        "klang {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A "room" with two modes and a dip, as a klang config.
const ROOM: &str = "[[eq]]\ntype = \"peak\"\nfreq = 60.0\ngain_db = 7.0\nq = 4.0\n\n\
                    [[eq]]\ntype = \"peak\"\nfreq = 140.0\ngain_db = 5.0\nq = 3.0\n\n\
                    [[eq]]\ntype = \"peak\"\nfreq = 500.0\ngain_db = 6.0\nq = 2.0\n";

/// `klang sweep` at `rate`, played through ROOM with `klang process`.
fn sweep_and_room(dir: &Path, rate: &str) {
    succeed(
        dir,
        &[
            "sweep",
            "--out",
            "sweep.wav",
            "--seconds",
            "2",
            "--rate",
            rate,
        ],
    );
    std::fs::write(dir.join("room.toml"), ROOM).unwrap();
    succeed(
        dir,
        &["process", "sweep.wav", "rec.wav", "--config", "room.toml"],
    );
}

/// `klang calibrate` on the files `sweep_and_room` writes.
const OFFLINE: [&str; 5] = [
    "calibrate",
    "--sweep",
    "sweep.wav",
    "--recording",
    "rec.wav",
];

/// `(freq, gain)` of the `[[eq]]` bands of a written preset.
fn bands(dir: &Path, file: &str) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    let config = klang_dsp::config::Config::from_toml(&text).unwrap();
    config.eq.iter().map(|b| (b.freq, b.gain_db)).collect()
}

#[test]
fn sweep_refuses_a_level_above_the_configured_maximum() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("quiet.toml"),
        "[volume]\nmax_db = -30.0\ndefault_db = -40.0\n",
    )
    .unwrap();
    let out = klang(d, &["sweep", "--out", "s.wav", "--config", "quiet.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("-20.0 dBFS is above the configured maximum volume.max_db = -30.0 dB")
            && err.contains("quiet.toml")
            && err.contains("--level-db -30.0 or lower"),
        "{err}"
    );
    assert!(!d.join("s.wav").exists());
    // At or below the maximum it is written; the default is -20 dBFS.
    succeed(
        d,
        &[
            "sweep",
            "--out",
            "s.wav",
            "--config",
            "quiet.toml",
            "--level-db",
            "-30",
        ],
    );
    succeed(d, &["sweep", "--out", "t.wav", "--seconds", "1"]);
    let peak = hound::WavReader::open(d.join("t.wav"))
        .unwrap()
        .samples::<f32>()
        .map(Result::unwrap)
        .fold(0.0f32, |m, v| m.max(v.abs()));
    assert!((20.0 * peak.log10() + 20.0).abs() < 0.01, "peak {peak}");
}

#[test]
fn sweep_refuses_a_level_above_the_default_configs_maximum() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("xdg-config/klang")).unwrap();
    std::fs::write(
        d.join("xdg-config/klang/config.toml"),
        "[volume]\nmax_db = -25.0\ndefault_db = -40.0\n",
    )
    .unwrap();
    let out = klang(d, &["sweep", "--out", "s.wav"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.toml"));
}

#[test]
fn calibrate_keeps_to_the_range_the_filter_count_and_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sweep_and_room(d, "48000");
    let base = OFFLINE;
    // Default range 20-300 Hz: the 500 Hz peak is left alone.
    let table = succeed(
        d,
        &[&base[..], &["--out", "a.toml", "--csv", "a.csv"]].concat(),
    );
    let a = bands(d, "a.toml");
    assert!(a.iter().all(|&(f, _)| f <= 300.0), "{a:?}");
    assert!(
        a.iter().any(|&(f, g)| (f - 60.0).abs() < 3.0 && g < -5.0),
        "{a:?}"
    );
    assert!(table.contains("freq Hz") && table.contains("deviation from target"));
    let csv = std::fs::read_to_string(d.join("a.csv")).unwrap();
    assert!(csv.starts_with("freq_hz,measured_db,target_db,predicted_db\n"));
    assert!(csv.lines().count() > 400, "{} lines", csv.lines().count());
    // A wider range takes the 500 Hz peak too; one filter takes the biggest peak only.
    succeed(
        d,
        &[&base[..], &["--out", "b.toml", "--range", "20-1000"]].concat(),
    );
    assert!(
        bands(d, "b.toml")
            .iter()
            .any(|&(f, _)| (f - 500.0).abs() < 30.0)
    );
    succeed(
        d,
        &[&base[..], &["--out", "c.toml", "--max-filters", "1"]].concat(),
    );
    let c = bands(d, "c.toml");
    assert!(c.len() == 1 && (c[0].0 - 60.0).abs() < 3.0, "{c:?}");
    // A cut limit of 4 dB holds.
    succeed(
        d,
        &[&base[..], &["--out", "e.toml", "--max-cut", "4"]].concat(),
    );
    assert!(bands(d, "e.toml").iter().all(|&(_, g)| g >= -4.0));
}

#[test]
fn calibrate_refuses_bad_flags_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sweep_and_room(d, "48000");
    for (flag, value, says) in [
        ("--range", "300-20", "HI above 1.2 x LO"),
        ("--range", "abc", "is not LO-HI"),
        ("--max-boost", "20", "maximum boost"),
        ("--smoothing", "0", "smoothing"),
        ("--window", "10", "is not LEFT:RIGHT"),
        ("--window", "10:0", "RIGHT from 1 to 5000 ms"),
    ] {
        let out = klang(
            d,
            &[&OFFLINE[..], &["--out", "x.toml", flag, value]].concat(),
        );
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{flag} {value}: {err}");
        assert!(!d.join("x.toml").exists());
    }
    // Offline and live at once, or neither, are usage errors.
    let out = klang(d, &["calibrate", "--sweep", "sweep.wav", "--sink", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = klang(d, &["calibrate", "--out", "x.toml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn calibrate_analyses_a_44_1_khz_recording_at_its_own_rate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sweep_and_room(d, "44100");
    let args = ["--out", "r.toml", "--max-filters", "2", "--smoothing", "24"];
    succeed(d, &[&OFFLINE[..], &args].concat());
    let r = bands(d, "r.toml");
    // The 44.1 kHz room's modes, cut by about their height.
    for (f0, g0) in [(60.0, 7.0), (140.0, 5.0)] {
        assert!(
            r.iter()
                .any(|&(f, g)| (f / f0 - 1.0).abs() < 0.05 && (g + g0).abs() < 1.0),
            "no cut of {g0} dB at {f0} Hz in {r:?}"
        );
    }
}

/// The measured dB at the CSV row nearest `f`.
fn measured_at(dir: &Path, csv: &str, f: f64) -> f64 {
    let text = std::fs::read_to_string(dir.join(csv)).unwrap();
    let rows: Vec<(f64, f64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            (v[0], v[1])
        })
        .collect();
    rows.iter()
        .min_by(|a, b| (a.0 / f).ln().abs().total_cmp(&(b.0 / f).ln().abs()))
        .unwrap()
        .1
}

#[test]
fn a_short_window_blurs_the_room_mode_the_default_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sweep_and_room(d, "48000");
    let height = |csv: &str| measured_at(d, csv, 60.0) - measured_at(d, csv, 30.0);
    let run = |csv: &str, window: &[&str]| {
        succeed(
            d,
            &[
                &OFFLINE[..],
                &["--out", "w.toml", "--csv", csv, "--smoothing", "24"],
                window,
            ]
            .concat(),
        );
    };
    run("long.csv", &[]);
    run("short.csv", &["--window", "2:15"]);
    // The 7 dB, Q 4 mode at 60 Hz: resolved by 500 ms, smeared by 15 ms (~70 Hz resolution).
    let (long, short) = (height("long.csv"), height("short.csv"));
    assert!((long - 7.0).abs() < 0.5, "default window: {long:.2} dB");
    assert!(
        short < long - 2.0,
        "15 ms window: {short:.2} dB against {long:.2} dB"
    );
}
