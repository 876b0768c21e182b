//! `klang run` (the real binary) on a private headless PipeWire session (klang-pwtest), as
//! the session's user, with null sinks "speakers" and "subwoofer"; driven with `klang ctl`.
//! Levels are measured on the sinks' monitors at steady state (medians of 100 ms chunks)
//! and compared with klang-dsp's offline `chain_response`.

use std::path::Path;
use std::time::{Duration, Instant};

use klang_dsp::config::Config;
use klang_dsp::response::chain_response;
use klang_engine::runconfig::RunConfig;
use klang_pwtest::{PwSession, Recording, Tone, analysis};

mod common;
use common::{KlangRun, ctl, ctl_json, ctl_ok};

const RATE: u32 = 48_000;

const CONFIG: &str = r#"
[[eq]]
type = "peak"
freq = 1000
gain_db = 6.0
q = 1.0

[[eq]]
type = "peak"
freq = 3000
gain_db = -4.0
q = 2.0

[crossover]
freq = 120
slope = "LR4"

[volume]
default_db = -6.0
max_db = -3.0
ramp_ms = 100

[limiter]
ceiling_db = -1.0

[output]
mains = "speakers"
second = "subwoofer"
"#;

/// `klang run --config CONFIG`, ready when both outputs are connected at RATE.
fn start_klang(pw: &PwSession, config: &Path) -> KlangRun {
    KlangRun::start(pw, &["--config", config.to_str().unwrap()], &[], |r| {
        r.status.as_ref().is_some_and(|s| {
            s.mains == "connected" && s.second == "connected" && s.sample_rate == RATE
        })
    })
}

/// Plays `tone` into the klang sink while recording both output sinks.
fn play_and_record(
    pw: &PwSession,
    name: &str,
    tone: &Tone,
    seconds: f64,
) -> (Recording, Recording) {
    let file = pw.write_tone(name, tone).unwrap();
    let speakers = pw.record("speakers", seconds + 1.0, RATE, 2).unwrap();
    let sub = pw.record("subwoofer", seconds + 1.0, RATE, 2).unwrap();
    pw.play(&file, Some("klang"), &[]).unwrap().wait().unwrap();
    (speakers.finish().unwrap(), sub.finish().unwrap())
}

/// Level in dBFS of `freq` in the steady part of channel `ch`.
fn level(rec: &Recording, ch: usize, freq: f64) -> f64 {
    let x = rec.channel(ch);
    let range = analysis::active_range(&x, rec.rate);
    assert!(
        range.len() > rec.rate as usize / 2,
        "no steady signal on channel {ch}: {range:?}"
    );
    analysis::db(analysis::tone_amplitude_median(&x[range], rec.rate, freq))
}

fn peak(rec: &Recording) -> f32 {
    rec.samples.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// The offline chain's gain (dB) at `freq` on output `out` (0 = L, 2 = SUB) at `volume_db`.
fn offline(config: &Config, volume_db: f64, freq: f64, out: usize) -> f64 {
    chain_response(config, RATE, volume_db, &[freq]).unwrap()[out].magnitude_db[0]
}

fn assert_close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got:.3} dB, offline chain {want:.3} dB (tolerance {tol} dB)"
    );
}

#[test]
fn e2e_klang_run_eq_crossover_ctl_reload_ceiling_and_restart() {
    let mut pw =
        PwSession::start_as_test_user().expect("start a private PipeWire session as a test user");
    pw.null_sink("speakers").unwrap();
    pw.null_sink("subwoofer").unwrap();
    pw.force_quantum(1024).unwrap();
    let dir = pw.runtime_dir().to_owned();
    let config_path = dir.join("klang.toml");
    std::fs::write(&config_path, CONFIG).unwrap();
    let dsp = RunConfig::from_toml(CONFIG).unwrap().dsp;
    let ceiling = 10f32.powf(-1.0 / 20.0) + 1e-4;

    let klang = start_klang(&pw, &config_path);
    let status = ctl_ok(&pw, &["status"]).status.unwrap();
    assert_eq!((status.volume_db, status.max_db), (-6.0, -3.0));
    assert!(status.crossover);
    assert!(pw.sinks().unwrap().contains(&"klang".to_owned()));
    let text = String::from_utf8(ctl(&pw, &["status"]).stdout).unwrap();
    for want in [
        "48000 Hz",
        "quantum 1024",
        "xruns",
        "mains connected",
        "load",
    ] {
        assert!(text.contains(want), "status lacks {want:?}:\n{text}");
    }

    // EQ and crossover: within 0.1 dB of the offline chain at each test frequency, low
    // band on the subwoofer, high band on the speakers.
    let amp = 0.1f32;
    let input = analysis::db(f64::from(amp));
    let tone = Tone::new(RATE, 2.0)
        .with(50.0, amp)
        .with(1000.0, amp)
        .with(3000.0, amp);
    let (speakers, sub) = play_and_record(&pw, "three.wav", &tone, 2.0);
    for ch in 0..2 {
        for f in [1000.0, 3000.0] {
            assert_close(
                &format!("speakers {ch} at {f} Hz"),
                level(&speakers, ch, f) - input,
                offline(&dsp, -6.0, f, ch),
                0.1,
            );
        }
        assert_close(
            &format!("subwoofer {ch} at 50 Hz"),
            level(&sub, ch, 50.0) - input,
            offline(&dsp, -6.0, 50.0, 2),
            0.1,
        );
        let sub_high = level(&sub, ch, 3000.0);
        let mains_low = level(&speakers, ch, 50.0);
        assert!(
            sub_high < level(&speakers, ch, 3000.0) - 40.0,
            "sub carries highs: {sub_high}"
        );
        assert!(
            mains_low < level(&sub, ch, 50.0) - 15.0,
            "mains carry lows: {mains_low}"
        );
    }
    assert!(peak(&speakers) <= ceiling && peak(&sub) <= ceiling);

    // A volume change lands, ramped: the level per 10 ms moves in small steps.
    let file = pw
        .write_tone("long.wav", &Tone::new(RATE, 3.0).with(1000.0, 0.2))
        .unwrap();
    let rec = pw.record("speakers", 4.0, RATE, 2).unwrap();
    let play = pw.play(&file, Some("klang"), &[]).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let r = ctl_ok(&pw, &["volume", "-12dB"]);
    assert!(r.ok, "{}", r.message);
    play.wait().unwrap();
    let rec = rec.finish().unwrap();
    let x = rec.channel(0);
    let range = analysis::active_range(&x, RATE);
    let env: Vec<f64> = x[range]
        .chunks(480)
        .map(|c| analysis::db(f64::from(c.iter().fold(0.0f32, |m, v| m.max(v.abs())))))
        .collect();
    let (first, last) = (env[0], env[env.len() - 1]);
    assert!(
        (first - last - 6.0).abs() < 0.2,
        "volume -6 → -12 dB changed the level by {:.2} dB",
        first - last
    );
    let jump = env
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f64::max);
    assert!(
        jump < 2.0,
        "the volume jumped by {jump:.2} dB within 10 ms: {env:?}"
    );

    // Asking for more than max_db is capped.
    let r = ctl_ok(&pw, &["volume", "+20"]);
    assert_eq!(r.status.unwrap().volume_db, -3.0, "{}", r.message);

    // An invalid reload is refused with the reason, and the old settings keep playing.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[tone]\nbass_db = 1.0\n\n[[eq]]\ntype = \"peak\"\nfreq = 30000\ngain_db = 1.0\nq = 1.0\n",
    )
    .unwrap();
    let out = ctl(&pw, &["reload", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("refused") && err.contains("eq[0].freq") && err.contains("line 6"),
        "{err}"
    );
    let typo = dir.join("typo.toml");
    std::fs::write(&typo, "[output]\nmians = \"speakers\"\n").unwrap();
    let out = ctl(&pw, &["reload", typo.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("mians") && err.contains("line 2"), "{err}");
    let out = ctl(&pw, &["preset", "no-such-preset"]);
    assert_eq!(out.status.code(), Some(3));

    // A loud tone through a preset switch: the sound continues at the old settings' level
    // first, and the output never passes the ceiling.
    let loud = pw
        .write_tone("loud.wav", &Tone::new(RATE, 3.0).with(1000.0, 0.9))
        .unwrap();
    let rec = pw.record("speakers", 4.0, RATE, 2).unwrap();
    let play = pw.play(&loud, Some("klang"), &[]).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let r = ctl_ok(&pw, &["bass", "6"]);
    assert_eq!(r.status.as_ref().unwrap().bass_db, 6.0);
    std::thread::sleep(Duration::from_millis(500));
    ctl_ok(&pw, &["bypass", "on"]);
    play.wait().unwrap();
    let rec = rec.finish().unwrap();
    let p = peak(&rec);
    assert!(p <= ceiling, "peak {p} above the ceiling {ceiling}");
    // The limiter was working: the tone would have been louder than the ceiling.
    assert!(p > 0.8 * ceiling, "peak {p}");
    let x = rec.channel(0);
    let r = analysis::active_range(&x, RATE);
    assert!(r.len() > 2 * RATE as usize, "the sound stopped: {r:?}");

    // The state persists across a restart.
    let status = klang.stop();
    assert!(status.code().is_none() || status.success(), "{status}");
    let state = std::fs::read_to_string(dir.join("state/klang/state.toml")).unwrap();
    assert!(
        state.contains("volume_db = -3.0") && state.contains("bypass = true"),
        "{state}"
    );
    let mut klang = start_klang(&pw, &config_path);
    let s = ctl_ok(&pw, &["status"]).status.unwrap();
    assert_eq!(
        (s.volume_db, s.bass_db, s.bypass),
        (-3.0, 0.0, true),
        "{s:?}"
    );
    ctl_ok(&pw, &["bypass", "off"]);
    let s = ctl_ok(&pw, &["status"]).status.unwrap();
    assert_eq!(s.bass_db, 6.0, "the bass override survived the restart");

    // When PipeWire goes away, klang run exits non-zero (systemd restarts it).
    assert!(pw.stop_daemon("pipewire"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = klang.exit_status() {
            break status.code();
        }
        assert!(
            Instant::now() < deadline,
            "klang run kept running without PipeWire"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(1), "{}", klang.log());
}

#[test]
fn e2e_klang_run_routes_by_application_and_survives_an_unplugged_subwoofer() {
    let pw =
        PwSession::start_as_test_user().expect("start a private PipeWire session as a test user");
    pw.null_sink("speakers").unwrap();
    let sub_module = pw.null_sink("subwoofer").unwrap();
    pw.force_quantum(1024).unwrap();
    let config = format!("{CONFIG}\n[[route]]\napplication = \"klang-e2e-player\"\n");
    let config_path = pw.runtime_dir().join("klang.toml");
    std::fs::write(&config_path, &config).unwrap();
    let dsp = RunConfig::from_toml(&config).unwrap().dsp;
    let _klang = start_klang(&pw, &config_path);
    let amp = 0.1f32;
    let input = analysis::db(f64::from(amp));

    // A stream from the named application lands in klang without a target: the speakers
    // get the processed sound (the +6 dB EQ at 1 kHz), not the raw stream.
    let file = pw
        .write_tone("routed.wav", &Tone::new(RATE, 2.0).with(1000.0, amp))
        .unwrap();
    let rec = pw.record("speakers", 3.0, RATE, 2).unwrap();
    pw.play(&file, None, &[("application.name", "klang-e2e-player")])
        .unwrap()
        .wait()
        .unwrap();
    let rec = rec.finish().unwrap();
    assert_close(
        "routed stream on the speakers at 1 kHz",
        level(&rec, 0, 1000.0) - input,
        offline(&dsp, -6.0, 1000.0, 0),
        0.1,
    );

    // The subwoofer is unplugged: klang keeps running, reports it, the speakers play on.
    pw.unload_module(sub_module, "subwoofer").unwrap();
    pw.wait_for("the second output reported missing", || {
        ctl_json(&pw, &["status"])
            .and_then(|r| r.status)
            .is_some_and(|s| s.second == "missing" && s.mains == "connected")
    })
    .unwrap();
    let tone = Tone::new(RATE, 2.0).with(50.0, amp).with(1000.0, amp);
    let file = pw.write_tone("two.wav", &tone).unwrap();
    let rec = pw.record("speakers", 3.0, RATE, 2).unwrap();
    pw.play(&file, Some("klang"), &[]).unwrap().wait().unwrap();
    let rec = rec.finish().unwrap();
    assert_close(
        "speakers at 1 kHz without the subwoofer",
        level(&rec, 0, 1000.0) - input,
        offline(&dsp, -6.0, 1000.0, 0),
        0.1,
    );

    // It comes back: linked again, the low band on it.
    pw.null_sink("subwoofer").unwrap();
    pw.wait_for("the second output connected again", || {
        ctl_json(&pw, &["status"])
            .and_then(|r| r.status)
            .is_some_and(|s| s.second == "connected")
    })
    .unwrap();
    let (_, sub) = play_and_record(&pw, "two-again.wav", &tone, 2.0);
    assert_close(
        "subwoofer at 50 Hz after re-plugging",
        level(&sub, 0, 50.0) - input,
        offline(&dsp, -6.0, 50.0, 2),
        0.1,
    );
}

#[test]
fn e2e_klang_run_follows_the_graph_to_96_khz() {
    let pw =
        PwSession::start_as_test_user().expect("start a private PipeWire session as a test user");
    pw.null_sink("speakers").unwrap();
    pw.null_sink("subwoofer").unwrap();
    pw.force_quantum(1024).unwrap();
    let config_path = pw.runtime_dir().join("klang.toml");
    std::fs::write(&config_path, CONFIG).unwrap();
    let dsp = RunConfig::from_toml(CONFIG).unwrap().dsp;
    let _klang = start_klang(&pw, &config_path);
    let rate = 96_000;
    pw.force_rate(rate).unwrap();
    pw.wait_for("klang at 96 kHz", || {
        ctl_json(&pw, &["status"])
            .and_then(|r| r.status)
            .is_some_and(|s| s.sample_rate == rate)
    })
    .unwrap();
    // A switch made at the new rate lands too.
    ctl_ok(&pw, &["treble", "2"]);
    let mut dsp = dsp;
    dsp.tone.treble_db = 2.0;
    let amp = 0.1f32;
    let file = pw
        .write_tone(
            "96k.wav",
            &Tone::new(rate, 2.0).with(1000.0, amp).with(50.0, amp),
        )
        .unwrap();
    let speakers = pw.record("speakers", 3.0, rate, 2).unwrap();
    let sub = pw.record("subwoofer", 3.0, rate, 2).unwrap();
    pw.play(&file, Some("klang"), &[]).unwrap().wait().unwrap();
    let (speakers, sub) = (speakers.finish().unwrap(), sub.finish().unwrap());
    let input = analysis::db(f64::from(amp));
    let at =
        |f: f64, out: usize| chain_response(&dsp, rate, -6.0, &[f]).unwrap()[out].magnitude_db[0];
    assert_close(
        "speakers at 1 kHz, 96 kHz graph",
        level(&speakers, 0, 1000.0) - input,
        at(1000.0, 0),
        0.1,
    );
    assert_close(
        "subwoofer at 50 Hz, 96 kHz graph",
        level(&sub, 0, 50.0) - input,
        at(50.0, 2),
        0.1,
    );
}
