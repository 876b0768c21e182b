//! Live `klang calibrate --sink --source` on a private headless PipeWire session
//! (klang-pwtest). The "room" is a PipeWire filter-chain of known biquads (klang-formats'
//! export of a klang config, a real PipeWire DSP node) in front of the null sink
//! `room_out`, whose monitor stands in for the microphone:
//!
//! ```text
//!   klang calibrate ──pw-play──► [fix] ──► [room] ──► room_out ──monitor──pw-record──► klang calibrate
//! ```
//!
//! First pass: calibrate plays through `room` alone; its measured response must be the
//! room's analytic response. Second pass: the preset it wrote, exported the same way as
//! the filter-chain `fix`, is put in front of the room, and calibrate measures again:
//! the response must now follow the target and match the first pass's prediction.

use std::path::Path;
use std::process::Stdio;

use klang_dsp::config::{Config, EqBand, FilterType};
use klang_dsp::response::chain_response;
use klang_formats::pipewire::{self, Options};
use klang_pwtest::{Process, PwSession};

mod common;
use common::{KLANG, KlangRun, ctl_ok};
use std::time::{Duration, Instant};

const RATE: u32 = 48_000;
/// Where the assertions look (inside the default fit range, 20-300 Hz).
const BAND: (f64, f64) = (30.0, 300.0);

fn peak(freq: f64, gain_db: f64, q: f64) -> EqBand {
    EqBand {
        kind: FilterType::Peak,
        freq,
        gain_db,
        q,
        slope: None,
    }
}

/// Two room modes and a shallow dip. Measured (PipeWire 0.3.65): recovered within
/// 0.06 dB, corrected within 0.08 dB of target, 0.015 dB from the prediction; the
/// assertions leave about four times that.
fn room() -> Config {
    Config {
        eq: vec![
            peak(45.0, 8.0, 4.0),
            peak(110.0, -2.5, 2.0),
            peak(170.0, 5.0, 5.0),
        ],
        ..Config::default()
    }
}

/// `config` as a filter-chain sink `name` that plays to `target`.
fn filter_chain(pw: &PwSession, config: &Config, name: &str, target: &str) -> Process {
    let options = Options {
        node_name: name.into(),
        description: format!("test {name}"),
        target: Some(target.into()),
    };
    let text = pipewire::export(config, RATE, &options).expect("export");
    pw.pipewire_config(name, &text, name)
        .expect("start the filter-chain")
}

/// `klang calibrate --sink SINK --source room_out.monitor` in the session, a 4 s sweep
/// at 1/48 octave (so the modes keep their height), writing `OUT.toml` and `OUT.csv`,
/// plus `extra`; returns stdout (the filter table) and stderr (the progress).
fn calibrate(pw: &PwSession, sink: &str, out: &str, extra: &[&str]) -> (String, String) {
    let (toml, csv) = (format!("{out}.toml"), format!("{out}.csv"));
    let enter = pw.runtime_dir().join("enter");
    std::fs::write(&enter, "\n\n\n").unwrap();
    let args = [
        "--sink",
        sink,
        "--source",
        "room_out.monitor",
        "--seconds",
        "4",
        "--smoothing",
        "48",
        "--out",
        &toml,
        "--csv",
        &csv,
    ];
    let out = pw
        .command(KLANG)
        .current_dir(pw.runtime_dir())
        .arg("calibrate")
        .args(args)
        .args(extra)
        // Enter for each --positions prompt.
        .stdin(std::fs::File::open(&enter).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run klang calibrate");
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "klang calibrate {args:?} {extra:?}:\n{o}{e}"
    );
    (o, e)
}

/// Rows of `--csv`: (Hz, measured, target, predicted), in BAND only.
fn rows(path: &Path) -> Vec<[f64; 4]> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            [v[0], v[1], v[2], v[3]]
        })
        .filter(|r| (BAND.0..=BAND.1).contains(&r[0]))
        .collect()
}

fn worst(pairs: impl Iterator<Item = (f64, f64)>) -> f64 {
    pairs.fold(0.0, |m, (a, b)| m.max((a - b).abs()))
}

#[test]
fn e2e_calibrate_live_recovers_a_known_room_and_its_preset_corrects_it() {
    let pw = PwSession::start().expect("start the session");
    pw.null_sink("room_out").unwrap();
    let room = room();
    let _room = filter_chain(&pw, &room, "room", "room_out");
    let dir = pw.runtime_dir();

    // Pass 1: the room alone.
    let (table, progress) = calibrate(&pw, "room", "fix", &["--plot", "pass1.png"]);
    eprintln!("{progress}{table}");
    assert!(progress.contains("playing a") && progress.contains("peak-to-noise"));
    assert!(table.contains("freq Hz") && dir.join("pass1.png").exists());
    let pass1 = rows(&dir.join("fix.csv"));
    let freqs: Vec<f64> = pass1.iter().map(|r| r[0]).collect();
    let known = &chain_response(&room, RATE, 0.0, &freqs).unwrap()[0].magnitude_db;
    let recovery = worst(pass1.iter().zip(known).map(|(r, k)| (r[1], *k)));
    eprintln!("pass 1: measured vs the room's analytic response, worst {recovery:.3} dB");
    assert!(
        recovery < 0.25,
        "room not recovered: worst {recovery:.2} dB"
    );

    // Pass 2: the written preset in front of the room.
    let fix = Config::from_toml(&std::fs::read_to_string(dir.join("fix.toml")).unwrap())
        .expect("the written preset is a klang config");
    assert!(!fix.eq.is_empty());
    let _fix = filter_chain(&pw, &fix, "fix", "room");
    // Two positions (the same here), saved for an offline run.
    let (table2, progress2) = calibrate(
        &pw,
        "fix",
        "fix2",
        &["--positions", "2", "--save-recording", "rec.wav"],
    );
    assert!(
        progress2.contains("position 2 of 2")
            && progress2.contains("position 2 (room_out.monitor)"),
        "{progress2}"
    );
    eprintln!("{table2}");
    let pass2 = rows(&dir.join("fix2.csv"));
    let preamp = fix.input_gain_db;
    // What klang predicted the corrected room would measure, and what it did.
    let vs_predicted = worst(pass1.iter().zip(&pass2).map(|(a, b)| (a[3] + preamp, b[1])));
    let before = worst(pass1.iter().map(|r| (r[1], r[2])));
    let after = worst(pass1.iter().zip(&pass2).map(|(a, b)| (a[2] + preamp, b[1])));
    eprintln!(
        "pass 2: worst deviation from target {before:.2} dB before, {after:.2} dB after correction; measured vs predicted {vs_predicted:.3} dB"
    );
    assert!(vs_predicted < 0.1, "prediction off by {vs_predicted:.2} dB");
    assert!(
        after < 0.5,
        "after correction still {after:.2} dB off target"
    );
}

/// Whether the engine that `config` names has its bypass on.
fn bypass_on(pw: &PwSession, config: &str) -> bool {
    ctl_ok(pw, &["--config", config, "status"])
        .status
        .unwrap()
        .bypass
}

#[test]
fn e2e_calibrate_through_klangs_own_sink_measures_with_its_bypass_on_and_restores_it() {
    let pw = PwSession::start().expect("start the session");
    pw.null_sink("room_out").unwrap();
    let dir = pw.runtime_dir().to_owned();
    // The running preset has a big 60 Hz peak: measured with it, the room would look 8 dB
    // louder there. Bypass leaves the voicing out, so the straight wire measures flat.
    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        format!(
            "[volume]\nmax_db = 0.0\ndefault_db = 0.0\n\n[[eq]]\ntype = \"peak\"\nfreq = 60.0\ngain_db = 8.0\nq = 4.0\n\n\
             [output]\nmains = \"room_out\"\n\n[control]\nsocket = \"{}\"\n",
            dir.join("klang-ctl.sock").display()
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let _run = KlangRun::start(
        &pw,
        &["--config", config_arg],
        &["--config", config_arg],
        |r| r.ok,
    );
    assert!(!bypass_on(&pw, config_arg));
    let (_, progress) = calibrate(&pw, "klang", "own", &["--config", config_arg]);
    eprintln!("{progress}");
    assert!(
        progress.contains("bypass on while measuring through `klang`")
            && progress.contains("bypass off again"),
        "{progress}"
    );
    let measured = rows(&dir.join("own.csv"));
    let at = |f: f64| {
        measured
            .iter()
            .min_by(|a, b| (a[0] / f).ln().abs().total_cmp(&(b[0] / f).ln().abs()))
            .unwrap()[1]
    };
    let (peak, flat) = (at(60.0), at(200.0));
    eprintln!("through klang with bypass: 60 Hz {peak:.2} dB, 200 Hz {flat:.2} dB");
    assert!(
        (peak - flat).abs() < 0.5,
        "the preset's 8 dB peak was measured: 60 Hz {peak:.2} dB, 200 Hz {flat:.2} dB"
    );
    // And the engine plays its preset again.
    assert!(!bypass_on(&pw, config_arg));

    // Cut short (Ctrl-C) in the middle of a long sweep: the bypass is turned off too.
    let mut long = pw
        .command(KLANG)
        .current_dir(&dir)
        .args([
            "calibrate",
            "--sink",
            "klang",
            "--source",
            "room_out.monitor",
        ])
        .args([
            "--seconds",
            "20",
            "--out",
            "cut.toml",
            "--config",
            config_arg,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bypass_on(&pw, config_arg) {
        assert!(
            Instant::now() < deadline,
            "calibrate did not turn bypass on"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(long.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = long.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut long.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("bypass off again"), "{err}");
    assert!(!bypass_on(&pw, config_arg));
    assert!(!dir.join("cut.toml").exists());
}
