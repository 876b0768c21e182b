//! Running a program with a hard time limit: a refused viewer does not exit by itself,
//! so every program a test starts gets a deadline and is killed by its id when it passes.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// What a bounded run produced.
#[derive(Debug)]
pub struct Bounded {
    /// The exit status, or `None` when the deadline killed it.
    pub status: Option<ExitStatus>,
    /// Standard output collected until exit (or the kill).
    pub stdout: String,
    /// Standard error collected until exit (or the kill).
    pub stderr: String,
}

impl Bounded {
    /// Whether the deadline passed and the program was killed.
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    /// Whether it exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs `cmd` in a process group of its own (its PID is the group id) with stdin closed,
/// collecting its output; when `timeout` passes, the group (the child and what it started
/// in the same group) is killed with SIGKILL.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Bounded {
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {:?}: {e}", cmd.get_program()));
    let pgid = Pid::from_raw(i32::try_from(child.id()).expect("pids fit in i32"));
    let out = collect(child.stdout.take().expect("piped stdout"));
    let err = collect(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait();
                break None;
            }
        }
    };
    // Give the readers a moment to drain what was written before the exit.
    std::thread::sleep(Duration::from_millis(50));
    let text = |b: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&b.lock().expect("output buffer")).into_owned()
    };
    Bounded {
        status,
        stdout: text(&out),
        stderr: text(&err),
    }
}

/// Collects what `pipe` delivers, in a thread, until it closes: the buffer fills while
/// the test polls it (for a prompt, a log line).
pub fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let sink = Arc::new(Mutex::new(Vec::new()));
    let filled = sink.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            filled
                .lock()
                .expect("output buffer")
                .extend_from_slice(&buf[..n]);
        }
    });
    sink
}

/// A long-running program (a server, a relay, Xvfb) started in a process group of its
/// own; the group is killed by its id on drop.
#[derive(Debug)]
pub struct Spawned {
    child: std::process::Child,
}

impl Spawned {
    /// Starts `cmd` with stdin closed (stdout and stderr as the caller set them).
    pub fn start(cmd: Command) -> Self {
        Self::spawn(cmd, Stdio::null())
    }

    /// Starts `cmd` with a pipe on its stdin, for answering a prompt: take it with
    /// `child_mut().stdin.take()`.
    pub fn start_with_input(cmd: Command) -> Self {
        Self::spawn(cmd, Stdio::piped())
    }

    fn spawn(mut cmd: Command, stdin: Stdio) -> Self {
        cmd.process_group(0).stdin(stdin);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {:?}: {e}", cmd.get_program()));
        Spawned { child }
    }

    /// The child's PID (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The child, e.g. to take its piped stdout.
    pub fn child_mut(&mut self) -> &mut std::process::Child {
        &mut self.child
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.is_running() {
            let pgid = Pid::from_raw(i32::try_from(self.child.id()).expect("pids fit in i32"));
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_collected_and_the_deadline_kills() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo out; echo err >&2"]);
        let r = run_bounded(c, Duration::from_secs(5));
        assert!(r.success());
        assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("out\n", "err\n"));

        let mut c = Command::new("sh");
        c.args(["-c", "sleep 30 & echo $!; wait"]);
        let r = run_bounded(c, Duration::from_millis(300));
        assert!(r.timed_out());
        let grandchild = r.stdout.trim().to_owned();
        assert!(!grandchild.is_empty());
        // The sleep was in the group too: it must be gone (or a zombie being reaped).
        let alive = (0..100).all(|_| {
            let stat =
                std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
            let running = !stat.is_empty() && !stat.contains(") Z ");
            if running {
                std::thread::sleep(Duration::from_millis(10));
            }
            running
        });
        assert!(!alive, "the grandchild {grandchild} survived the deadline");
    }

    #[test]
    fn spawned_groups_die_on_drop() {
        let mut s = Spawned::start({
            let mut c = Command::new("sleep");
            c.arg("30");
            c
        });
        assert!(s.is_running());
        let pid = s.pid();
        drop(s);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty(), "pid {pid} still there: {stat}");
    }
}
