//! The harness itself, against the real daemons.

use klang_pwtest::{PwSession, Tone, analysis};

#[test]
fn e2e_session_starts_with_null_sinks_and_records_what_is_played() {
    let pw = PwSession::start().expect("start the session");
    pw.null_sink("speakers").expect("speakers");
    pw.null_sink("subwoofer").expect("subwoofer");
    let status = pw.output("wpctl", &["status"]).expect("wpctl status");
    assert!(
        status.contains("speakers") && status.contains("subwoofer"),
        "{status}"
    );

    let tone = pw
        .write_tone("tone.wav", &Tone::new(48_000, 1.5).with(1000.0, 0.5))
        .unwrap();
    let rec = pw.record("speakers", 2.0, 48_000, 2).unwrap();
    pw.play(&tone, Some("speakers"), &[])
        .unwrap()
        .wait()
        .unwrap();
    let rec = rec.finish().unwrap();
    for ch in 0..2 {
        let x = rec.channel(ch);
        let steady = &x[analysis::active_range(&x, rec.rate)];
        assert!(steady.len() > 24_000, "too little signal: {}", steady.len());
        let level = analysis::db(analysis::tone_amplitude(steady, rec.rate, 1000.0));
        assert!(
            (level - analysis::db(0.5)).abs() < 0.05,
            "channel {ch}: {level:.3} dB"
        );
    }
}

#[test]
fn e2e_session_processes_are_gone_after_drop() {
    let pw = PwSession::start().expect("start the session");
    let dir = pw.runtime_dir().to_owned();
    let pids = pw.pids();
    assert_eq!(pids.len(), 4);
    for pid in &pids {
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "daemon {pid} not running"
        );
    }
    drop(pw);
    assert!(!dir.exists(), "runtime dir left behind");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still running"
        );
    }
}

#[test]
fn e2e_session_as_a_test_user_runs_every_daemon_as_that_user_and_removes_it() {
    let pw = PwSession::start_as_test_user().expect("start the session as a test user");
    let user = pw.user().expect("a test user").to_owned();
    let uid = nix::unistd::User::from_name(&user)
        .unwrap()
        .expect("the user exists")
        .uid
        .as_raw();
    for pid in pw.pids() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            line.split_whitespace()
                .skip(1)
                .all(|id| id == uid.to_string()),
            "pid {pid}: {line}"
        );
    }
    pw.null_sink("speakers")
        .expect("a null sink, as the test user");
    assert!(
        pw.output("pw-cli", &["info", "0"])
            .unwrap()
            .contains(&format!("user-name: \"{user}\""))
    );
    drop(pw);
    assert!(
        nix::unistd::User::from_name(&user).unwrap().is_none(),
        "user {user} left behind"
    );
}
