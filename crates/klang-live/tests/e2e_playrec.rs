//! `playrec::play_and_record` against a private headless PipeWire session: what is
//! played to a null sink comes back, sample for sample, from the sink's monitor.

use klang_live::playrec::{PlayRecord, PlayRecordError, play_and_record};
use klang_pwtest::PwSession;

const RATE: u32 = 48_000;

/// A signal with no periodicity (so the delay is unambiguous): a chirp with a ramp.
fn signal() -> Vec<f32> {
    let mut s = vec![0.0f32; RATE as usize / 4];
    s.extend((0..RATE as usize).map(|i| {
        let t = i as f64 / f64::from(RATE);
        (0.3 * (2.0 * std::f64::consts::PI * (50.0 * t + 400.0 * t * t)).sin()) as f32
    }));
    s.extend(vec![0.0f32; RATE as usize / 4]);
    s
}

#[test]
fn e2e_playrec_records_what_it_plays_from_a_sink_monitor() {
    let pw = PwSession::start().expect("start the session");
    pw.null_sink("spk").unwrap();
    let sig = signal();
    let p = PlayRecord {
        sink: "spk".into(),
        source: "spk.monitor".into(),
        rate: RATE,
        play_channels: 2,
        record_channels: 2,
        remote: Some(pw.socket().display().to_string()),
    };
    let mut calls = Vec::new();
    let got = play_and_record(&p, &sig, &mut |f| calls.push(f)).unwrap();
    assert_eq!(got.rate, RATE);
    assert!(calls.last() == Some(&1.0) && calls.len() >= 5, "{calls:?}");
    let rec = got.channel(0);
    assert!(rec.len() >= sig.len(), "{} < {}", rec.len(), sig.len());
    // Find the delay by the first sample above half the peak.
    let first = |x: &[f32]| x.iter().position(|v| v.abs() > 0.15).unwrap();
    let d = first(&rec) - first(&sig);
    let worst = sig
        .iter()
        .zip(&rec[d..])
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 1e-4, "delay {d}: worst difference {worst}");
    assert_eq!(got.channel(1)[d..d + sig.len()], rec[d..d + sig.len()]);
}

#[test]
fn e2e_playrec_names_the_missing_sink_and_lists_the_others() {
    let pw = PwSession::start().expect("start the session");
    pw.null_sink("spk").unwrap();
    let p = PlayRecord {
        sink: "nope".into(),
        source: "spk.monitor".into(),
        rate: RATE,
        play_channels: 2,
        record_channels: 1,
        remote: Some(pw.socket().display().to_string()),
    };
    let err = play_and_record(&p, &signal(), &mut |_| ()).unwrap_err();
    assert!(matches!(
        err,
        PlayRecordError::NoSuchNode { kind: "sink", .. }
    ));
    assert!(err.to_string().contains("spk"), "{err}");
    let p = PlayRecord {
        sink: "spk".into(),
        source: "mic".into(),
        ..p
    };
    let err = play_and_record(&p, &signal(), &mut |_| ()).unwrap_err();
    assert!(
        err.to_string().contains("no source named `mic`")
            && err.to_string().contains("spk.monitor"),
        "{err}"
    );
}
