//! Shared helpers for the integration tests.
#![allow(dead_code)]

use jiff::Timestamp;
use jiff::tz::TimeZone;
use vmgate_policy::{CheckInput, Policy, StaticDirectory, check, example};

/// The example, checked with its demo directory.
pub fn office() -> Policy {
    let input = CheckInput {
        file: "office.toml",
        text: example::OFFICE_TOML,
        system_timezone: TimeZone::UTC,
    };
    check(&input, &example::demo_directory()).expect("the example is valid")
}

/// A fixed instant for snapshots: Wednesday 2026-12-02 09:00 UTC (10:00 in Berlin).
pub fn wednesday() -> Timestamp {
    "2026-12-02T09:00:00Z".parse().unwrap()
}

/// Checks `text` against `dir`.
pub fn check_text(text: &str, dir: &StaticDirectory) -> Result<Policy, vmgate_policy::Diagnostics> {
    check(
        &CheckInput {
            file: "policy.toml",
            text,
            system_timezone: TimeZone::UTC,
        },
        dir,
    )
}

/// Runs a real tool, returning (success, stdout+stderr).
pub fn run(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut c = std::process::Command::new(cmd);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd} (install it: see scripts/deps.sh vmgate): {e}")
    });
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

/// A network namespace of the test's own, deleted on drop.
#[derive(Debug)]
pub struct Netns(pub String);

impl Netns {
    /// Creates `vmgate-a-<pid>-<tag>`; needs root.
    pub fn new(tag: &str) -> Self {
        assert!(
            nix_is_root(),
            "this e2e test needs root (it creates a network namespace); run it as root"
        );
        let name = format!("vmgate-a-{}-{tag}", std::process::id());
        let (ok, out) = run("ip", &["netns", "add", &name], &[]);
        assert!(ok, "ip netns add {name}: {out}");
        Self(name)
    }

    /// Runs a command inside the namespace with TZ=UTC.
    pub fn exec(&self, args: &[&str]) -> (bool, String) {
        let mut a = vec!["netns", "exec", &self.0];
        a.extend_from_slice(args);
        run("ip", &a, &[("TZ", "UTC")])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0], &[]);
    }
}

fn nix_is_root() -> bool {
    run("id", &["-u"], &[]).1.trim() == "0"
}

/// Writes `text` to a fresh temporary file and returns its path.
pub fn temp_file(tag: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("vmgate-a-{}-{tag}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}
