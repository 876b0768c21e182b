//! The harness for vmgate's end-to-end tests: real users and groups, a test host in a
//! network namespace of the test's own with listeners on chosen ports, and a probe that
//! connects as an exact uid, gid and group list. Everything it creates has a test-unique
//! name and is removed in `Drop`, also when the test panics.
//!
//! ```no_run
//! use vmgate_testbed::{Probe, ProbeOutcome, TestHost, TestUser};
//! let user = TestUser::create();
//! let host = TestHost::start(&[5900]);
//! let outcome = Probe::as_ids(user.uid(), user.gid()).connect((host.v4(), 5900).into());
//! assert_eq!(outcome, ProbeOutcome::Connected);
//! ```
//!
//! For the real client and server (`spice`): [`TestDisplay`] (Xvfb on a free display,
//! with a cookie file, so `XAUTHORITY` must reach the viewer), [`SpiceServer`] (a diskless
//! QEMU, TCG, with a Spice server on the host's address inside its namespace, plain or
//! TLS with a password; `query-spice` over QMP lists the connected clients), [`TestCa`]
//! (an openssl CA and server certificate), screenshots (`xwd` → PNG), and [`kill_exe`],
//! which ends a test's private copy of a program by PID wherever sudo started it.
//!
//! **Invariants:** names start with `vmgt`; addresses are in 10.200.0.0/16 and
//! fd00:10:200::/48; the /24 (and /64) number of a host is unique among live test hosts on
//! the machine (held by a lock file, released even on `kill -9`).
//!
//! **Boundary:** a dev-dependency only; helpers panic with a plain message instead of
//! returning errors, since a broken harness must stop the test.
#![forbid(unsafe_code)]

mod bounded;
mod net;
mod probe;
mod spice;
mod sysctl;
mod table;
mod timing;
mod users;

pub use bounded::{Bounded, Spawned, collect, run_bounded};
pub use net::{TestHost, TestHostBuilder, TestNetns};
pub use probe::{Probe, ProbeOutcome, Session};
pub use spice::{
    SpiceChannel, SpiceListen, SpiceServer, TestCa, TestDisplay, kill_exe, pids_of_exe, qmp_query,
    wait_until,
};
pub use sysctl::SysctlGuard;
pub use table::TestTable;
pub use timing::{ConnectTiming, timed_connects};
pub use users::{TestGroup, TestUser};

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Fails the test with a clear message unless it runs as root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this end-to-end test creates users, namespaces and nft tables and must run as root \
         (CI runs it as root; locally: sudo -E cargo test)"
    );
}

/// A name unique to this process and call: `vmgt<kind><pid>x<n>`.
pub fn unique_name(kind: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "vmgt{kind}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command to completion, panicking when it cannot start.
pub(crate) fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "could not run {:?}: {e} (is its package installed?)",
                args[0]
            )
        })
}

/// Runs a command and panics with its stderr when it fails.
pub(crate) fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "`{}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    out
}

/// Runs a command and returns its standard output as text (panics when it fails).
pub fn run_text(args: &[&str]) -> String {
    String::from_utf8_lossy(&run_ok(args).stdout).into_owned()
}

/// Like [`run_ok`], retrying while another process holds the passwd/group file lock
/// (parallel tests create users at the same time).
pub(crate) fn run_passwd_tool(args: &[&str]) -> Output {
    for _ in 0..50 {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !stderr.contains("lock") {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    run(args)
}
