//! What several of klang's CLI tests share: klang with private XDG directories, the
//! real `klang run` in a private PipeWire session (klang-pwtest), ended by its PID, and
//! `klang ctl`.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use klang_engine::protocol::Response;
use klang_pwtest::{Process, PwSession};

pub const KLANG: &str = env!("CARGO_BIN_EXE_klang");

/// `klang ARGS` outside a session, its XDG runtime, state and config directories under
/// `runtime`.
pub fn klang_in(args: &[&str], runtime: &std::path::Path) -> Output {
    std::process::Command::new(KLANG)
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .env("XDG_STATE_HOME", runtime.join("state"))
        .env("XDG_CONFIG_HOME", runtime.join("config"))
        .output()
        .unwrap()
}

/// `klang ctl ARGS` in the session.
pub fn ctl(pw: &PwSession, args: &[&str]) -> Output {
    pw.command(KLANG)
        .arg("ctl")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run klang ctl")
}

/// `klang ctl --json ARGS`: the engine's answer, `None` while no engine answers.
pub fn ctl_json(pw: &PwSession, args: &[&str]) -> Option<Response> {
    let out = ctl(pw, &[&["--json"], args].concat());
    serde_json::from_slice(&out.stdout).ok()
}

/// `klang ctl --json ARGS`, which must succeed.
pub fn ctl_ok(pw: &PwSession, args: &[&str]) -> Response {
    let out = ctl(pw, &[&["--json"], args].concat());
    assert!(
        out.status.success(),
        "klang ctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `klang run` with its output in a log file of the session; ended by PID when dropped.
pub struct KlangRun {
    process: Process,
    log: PathBuf,
}

impl KlangRun {
    /// Starts `klang run RUN_ARGS` and waits (15 s at most) until
    /// `klang ctl --json CTL_ARGS status` answers with a state that `ready` accepts.
    pub fn start(
        pw: &PwSession,
        run_args: &[&str],
        ctl_args: &[&str],
        ready: impl Fn(&Response) -> bool,
    ) -> KlangRun {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let log = pw.runtime_dir().join(format!(
            "klang-run-{}.log",
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let out = std::fs::File::create(&log).unwrap();
        let child = pw
            .command(KLANG)
            .arg("run")
            .args(run_args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start klang run");
        let mut run = KlangRun {
            process: Process::adopt("klang run", child),
            log,
        };
        let status = [ctl_args, &["status"]].concat();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = run.exit_status() {
                panic!("klang run exited with {status}:\n{}", run.log());
            }
            if ctl_json(pw, &status).is_some_and(|r| ready(&r)) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "klang run not ready:\n{}\n{}",
                run.log(),
                pw.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status, once it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.process.try_status()
    }

    /// SIGTERM by PID; its exit status.
    pub fn stop(self) -> ExitStatus {
        self.process.stop().expect("wait for klang run")
    }
}
