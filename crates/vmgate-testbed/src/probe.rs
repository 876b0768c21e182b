//! Connecting as an exact uid, gid and group list: `setpriv --reuid U --regid G
//! --groups ...|--clear-groups --inh-caps=-all -- /usr/bin/env -- socat ...`, optionally
//! inside a network namespace, with a bounded time, the child started and killed by its
//! PID.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::TestUser;

/// What a connection attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The TCP handshake completed.
    Connected,
    /// The connection was refused (a TCP reset, ours or the host's, or ICMP unreachable).
    Refused,
    /// Nothing answered within the timeout (dropped packets).
    TimedOut,
    /// Something else went wrong; the text says what.
    Error(String),
}

/// Who connects, from where, for how long at most.
#[derive(Debug, Clone)]
pub struct Probe {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    netns: Option<String>,
    timeout: Duration,
}

impl Probe {
    /// As `uid` with real and effective gid `gid` and no supplementary groups.
    pub fn as_ids(uid: u32, gid: u32) -> Self {
        Probe {
            uid,
            gid,
            groups: Vec::new(),
            netns: None,
            timeout: Duration::from_secs(3),
        }
    }

    /// As the user with his primary group and no supplementary groups.
    pub fn as_user(user: &TestUser) -> Self {
        Self::as_ids(user.uid(), user.gid())
    }

    /// As root (uid 0, gid 0, no supplementary groups).
    pub fn root() -> Self {
        Self::as_ids(0, 0)
    }

    /// With exactly these supplementary groups.
    #[must_use]
    pub fn groups(mut self, groups: &[u32]) -> Self {
        self.groups = groups.to_vec();
        self
    }

    /// With this real and effective gid instead.
    #[must_use]
    pub fn gid(mut self, gid: u32) -> Self {
        self.gid = gid;
        self
    }

    /// From inside this network namespace.
    #[must_use]
    pub fn in_netns(mut self, netns: Option<&str>) -> Self {
        self.netns = netns.map(str::to_owned);
        self
    }

    /// Gives up connecting after `timeout` (default 3 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `[ip netns exec NS] setpriv --reuid U --regid G --groups ...|--clear-groups
    /// --inh-caps=-all -- /usr/bin/env -- ARGV`, for running any program (a viewer,
    /// `vmgate connect`) with exactly these ids and no capabilities. The `env` step matters:
    /// setpriv itself still holds root's capabilities when it execs, so without it a
    /// user could "run" a file whose mode forbids him.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut full: Vec<String> = Vec::new();
        if let Some(ns) = &self.netns {
            full.extend(["ip", "netns", "exec", ns].map(String::from));
        }
        full.extend([
            "setpriv".into(),
            "--reuid".into(),
            self.uid.to_string(),
            "--regid".into(),
            self.gid.to_string(),
        ]);
        if self.groups.is_empty() {
            full.push("--clear-groups".into());
        } else {
            full.push("--groups".into());
            full.push(
                self.groups
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        // setpriv keeps root's effective capabilities until its own exec, so it would run
        // a program the user may not execute (CAP_DAC_OVERRIDE). `env` is executed first
        // and then execs ARGV as the plain user, so file modes are checked as for him.
        full.extend(["--inh-caps=-all", "--", "/usr/bin/env", "--"].map(String::from));
        full.extend(argv.iter().map(|s| (*s).to_owned()));
        let mut cmd = Command::new(&full[0]);
        cmd.args(&full[1..]);
        cmd
    }

    /// Runs `argv` with these ids (see [`Probe::command`]), killed when `timeout` passes.
    pub fn run(&self, argv: &[&str], timeout: Duration) -> crate::Bounded {
        crate::run_bounded(self.command(argv), timeout)
    }

    fn socat_target(&self, addr: SocketAddr) -> String {
        let secs = self.timeout.as_secs_f64();
        match addr.ip() {
            IpAddr::V4(ip) => format!("TCP4:{ip}:{},connect-timeout={secs}", addr.port()),
            IpAddr::V6(ip) => format!("TCP6:[{ip}]:{},connect-timeout={secs}", addr.port()),
        }
    }

    /// Opens a TCP connection to `addr` and closes it again.
    pub fn connect(&self, addr: SocketAddr) -> ProbeOutcome {
        let target = self.socat_target(addr);
        let mut child = match self
            .command(&["socat", "-u", "/dev/null", &target])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return ProbeOutcome::Error(format!("could not start setpriv/socat: {e}")),
        };
        let deadline = Instant::now() + self.timeout + Duration::from_secs(3);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    // `Child::kill` signals exactly this PID.
                    let _ = child.kill();
                    let _ = child.wait();
                    return ProbeOutcome::TimedOut;
                }
            }
        };
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        classify(status.success(), &stderr)
    }

    /// Opens a connection and keeps it, for tests that watch a session being cut.
    pub fn open_session(&self, addr: SocketAddr) -> Session {
        let target = self.socat_target(addr);
        let mut child = self
            .command(&["socat", "-", &target])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start setpriv/socat: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Session {
            child,
            stdin: Some(stdin),
            received: rx,
        }
    }
}

fn classify(success: bool, stderr: &str) -> ProbeOutcome {
    if success {
        ProbeOutcome::Connected
    } else if stderr.contains("Connection refused") {
        ProbeOutcome::Refused
    } else if stderr.contains("timed out") {
        ProbeOutcome::TimedOut
    } else {
        ProbeOutcome::Error(stderr.trim().to_owned())
    }
}

/// A connection held open by a `socat` child (started as the probe's ids), talking to an
/// echo listener. Killed by PID on drop.
#[derive(Debug)]
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    received: Receiver<Vec<u8>>,
}

impl Session {
    /// Sends `bytes` and waits up to `timeout` for the echo; `false` when the connection
    /// is gone or nothing came back.
    pub fn echo(&mut self, bytes: &[u8], timeout: Duration) -> bool {
        let Some(stdin) = self.stdin.as_mut() else {
            return false;
        };
        if stdin.write_all(bytes).and_then(|()| stdin.flush()).is_err() {
            return false;
        }
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < bytes.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.received.recv_timeout(left) {
                Ok(chunk) => got.extend(chunk),
                Err(_) => return false,
            }
        }
        got == bytes
    }

    /// Whether the `socat` child still runs (it exits when the connection is reset).
    pub fn is_open(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the connection to end; returns whether it did.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.is_open() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        !self.is_open()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socat_messages_classify() {
        assert_eq!(classify(true, ""), ProbeOutcome::Connected);
        assert_eq!(
            classify(
                false,
                "2026/12/03 socat[1] E connect(6, AF=2 10.200.1.2:5901, 16): Connection refused"
            ),
            ProbeOutcome::Refused
        );
        assert_eq!(
            classify(
                false,
                "E connecting to AF=2 10.200.1.7:5901: Connection timed out"
            ),
            ProbeOutcome::TimedOut
        );
        assert!(matches!(
            classify(false, "E no route"),
            ProbeOutcome::Error(_)
        ));
    }

    #[test]
    fn command_pins_ids_and_groups() {
        let cmd = Probe::as_ids(1001, 2002)
            .groups(&[3, 4])
            .in_netns(Some("ns1"))
            .command(&["true"]);
        let argv: Vec<_> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv.join(" "),
            "ip netns exec ns1 setpriv --reuid 1001 --regid 2002 --groups 3,4 --inh-caps=-all -- /usr/bin/env -- true"
        );
        let cmd = Probe::as_ids(1, 2).command(&["true"]);
        assert!(cmd.get_args().any(|a| a == "--clear-groups"));
    }
}
