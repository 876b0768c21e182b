//! A private, headless PipeWire session for end-to-end tests: its own `dbus-daemon`,
//! `pipewire`, `wireplumber` and `pipewire-pulse`, in a temporary `XDG_RUNTIME_DIR`, with
//! helpers to create null sinks, play tones with `pw-play`, record sink monitors with
//! `pw-record` (bounded by `timeout -s INT`) and measure what was recorded.
//!
//! Every process the session starts is ended by its PID when the session is dropped,
//! also when the test panics; the runtime directory is removed with it. Nothing outside
//! that directory is touched, so sessions never see the machine's own audio (if any).
//!
//! ```no_run
//! use klang_pwtest::{PwSession, Tone, analysis};
//!
//! let pw = PwSession::start()?;
//! pw.null_sink("speakers")?;
//! let tone = pw.write_tone("tone.wav", &Tone::new(48_000, 2.0).with(1000.0, 0.5))?;
//! let rec = pw.record("speakers", 2.5, 48_000, 2)?;
//! let play = pw.play(&tone, Some("speakers"), &[])?;
//! play.wait()?;
//! let rec = rec.finish()?;
//! let left = rec.channel(0);
//! let steady = &left[analysis::active_range(&left, rec.rate)];
//! println!("{:.2} dBFS", analysis::db(analysis::tone_amplitude(steady, rec.rate, 1000.0)));
//! # Ok::<(), klang_pwtest::HarnessError>(())
//! ```
//!
//! [`PwSession::start`] runs the daemons as the calling user; [`PwSession::start_as_test_user`]
//! (root only) creates a throw-away system user, runs every daemon and helper as that user,
//! and deletes the user again on drop, which is how a real desktop session looks.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub mod analysis;

/// What can go wrong setting up or driving the session.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A program could not be started (not installed?).
    #[error(
        "cannot start {program}: {source} (help: install the `pipewire` layer: scripts/deps.sh pipewire)"
    )]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// A program ran and failed.
    #[error("`{command}` failed: {output}")]
    Failed { command: String, output: String },
    /// Something did not become ready in time. `logs` holds the daemons' last lines.
    #[error("{what} did not happen within {seconds} s\n{logs}")]
    Timeout {
        what: String,
        seconds: u64,
        logs: String,
    },
    /// Reading or writing a file in the session directory failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A WAV file could not be written or read.
    #[error("{path}: {source}")]
    Wav { path: PathBuf, source: hound::Error },
}

/// A started process, ended by PID on drop: SIGTERM, then SIGKILL after two seconds.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Option<Child>,
}

impl Process {
    /// Takes charge of a child started elsewhere (e.g. `klang run` from
    /// [`PwSession::command`]): it is ended by PID on drop like the session's own.
    pub fn adopt(name: &str, child: Child) -> Self {
        Process::new(name, child)
    }

    fn new(name: &str, child: Child) -> Self {
        Process {
            name: name.into(),
            child: Some(child),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits for the process to exit by itself and checks it succeeded.
    pub fn wait(mut self) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = child.wait().map_err(|e| HarnessError::Io {
            path: self.name.clone().into(),
            source: e,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::Failed {
                command: self.name.clone(),
                output: status.to_string(),
            })
        }
    }

    /// Its exit status, once it has exited.
    pub fn try_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM by PID (unless it has exited already), then its exit status.
    pub fn stop(mut self) -> Result<std::process::ExitStatus, HarnessError> {
        let mut child = self.child.take().expect("a process not yet waited for");
        if let Ok(None) = child.try_wait()
            && let Ok(pid) = i32::try_from(child.id())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        child.wait().map_err(|e| HarnessError::Io {
            path: self.name.clone().into(),
            source: e,
        })
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A private PipeWire session. See the crate docs.
#[derive(Debug)]
pub struct PwSession {
    /// Daemons in start order; stopped in reverse.
    daemons: Vec<Process>,
    /// The user the daemons and helpers run as, when not the caller. Declared after
    /// `daemons` and deleted in `Drop` after they are stopped.
    user: Option<TestUser>,
    dir: tempfile::TempDir,
}

/// A system user created for one session, deleted on drop.
#[derive(Debug)]
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create() -> Result<Self, HarnessError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(HarnessError::Failed {
                command: "create a test user".into(),
                output: "creating a user needs root: run the end-to-end tests as root (as CI does)"
                    .into(),
            });
        }
        // Unique per process and session; at most 32 characters for useradd.
        let name = format!("klangpw{}", unique().replace('-', "x"));
        run_checked(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            &name,
        ]))?;
        let user = nix::unistd::User::from_name(&name)
            .ok()
            .flatten()
            .ok_or_else(|| HarnessError::Failed {
                command: format!("getpwnam {name}"),
                output: "the user just created is not in the passwd database".into(),
            })?;
        Ok(TestUser {
            name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = run_checked(Command::new("userdel").arg(&self.name));
    }
}

fn run_checked(cmd: &mut Command) -> Result<String, HarnessError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| HarnessError::Spawn {
        program: program.clone(),
        source: e,
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HarnessError::Failed {
            command: program,
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

const DAEMON_TIMEOUT: Duration = Duration::from_secs(10);

impl PwSession {
    /// Starts `dbus-daemon --session`, `pipewire`, `wireplumber` and `pipewire-pulse` in a
    /// new runtime directory and waits until WirePlumber has published its "default"
    /// metadata and the Pulse socket exists, i.e. the session is ready for clients.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_with(None)
    }

    /// Like [`PwSession::start`], but as a new system user (`klangpw<pid>x<n>`) that owns
    /// the runtime directory; the user is deleted when the session is dropped. Needs root.
    /// Clients in the calling process (an engine under test) can still connect through
    /// [`PwSession::socket`], as root may.
    pub fn start_as_test_user() -> Result<Self, HarnessError> {
        Self::start_with(Some(TestUser::create()?))
    }

    /// The name of the session's test user, if it has one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.name.as_str())
    }

    fn start_with(user: Option<TestUser>) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("klang-pw.")
            .tempdir()
            .map_err(|e| HarnessError::Io {
                path: std::env::temp_dir(),
                source: e,
            })?;
        let mut session = PwSession {
            daemons: Vec::new(),
            user,
            dir,
        };
        let mut owned = vec![session.dir.path().to_owned()];
        for sub in ["config", "state", "data", "cache"] {
            let path = session.dir.path().join(sub);
            std::fs::create_dir(&path).map_err(|e| HarnessError::Io {
                path: path.clone(),
                source: e,
            })?;
            owned.push(path);
        }
        if let Some(u) = &session.user {
            for path in owned {
                std::os::unix::fs::chown(&path, Some(u.uid), Some(u.gid))
                    .map_err(|e| HarnessError::Io { path, source: e })?;
            }
        }
        let bus = session.dir.path().join("bus");
        session.daemon(
            "dbus-daemon",
            &[
                "--session",
                &format!("--address=unix:path={}", bus.display()),
                "--nofork",
                "--nopidfile",
            ],
        )?;
        session.wait_for("the session D-Bus socket", || bus.exists())?;
        session.daemon("pipewire", &[])?;
        let socket = session.socket();
        session.wait_for("the PipeWire socket", || socket.exists())?;
        session.daemon("wireplumber", &[])?;
        session.daemon("pipewire-pulse", &[])?;
        let pulse = session.dir.path().join("pulse/native");
        session.wait_for("the pipewire-pulse socket", || pulse.exists())?;
        session.wait_for("WirePlumber's default metadata", || {
            session
                .output("pw-cli", &["ls", "Metadata"])
                .is_ok_and(|out| out.contains("metadata.name = \"default\""))
        })?;
        Ok(session)
    }

    /// The session's `XDG_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PIDs of the session's daemons (dbus-daemon, pipewire, wireplumber, pipewire-pulse).
    pub fn pids(&self) -> Vec<u32> {
        self.daemons.iter().map(Process::pid).collect()
    }

    /// Stops one of the session's daemons ("pipewire", "wireplumber", ...) as a crash or a
    /// user's `systemctl --user stop` would: SIGTERM, then SIGKILL. Returns false if no
    /// running daemon has that name.
    pub fn stop_daemon(&mut self, name: &str) -> bool {
        match self
            .daemons
            .iter_mut()
            .find(|p| p.name == name && p.child.is_some())
        {
            Some(p) => {
                p.terminate();
                true
            }
            None => false,
        }
    }

    /// The PipeWire socket's absolute path: usable as a client's `remote.name`.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("pipewire-0")
    }

    /// A command that talks to this session only: a clean environment with the session's
    /// runtime, config, state and D-Bus, and the caller's `PATH`.
    pub fn command(&self, program: &str) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("LANG", "C")
            .env("HOME", d)
            .env("XDG_RUNTIME_DIR", d)
            .env("PIPEWIRE_RUNTIME_DIR", d)
            .env("PULSE_RUNTIME_PATH", d.join("pulse"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_STATE_HOME", d.join("state"))
            .env("XDG_DATA_HOME", d.join("data"))
            .env("XDG_CACHE_HOME", d.join("cache"))
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", d.join("bus").display()),
            )
            .stdin(Stdio::null());
        if let Some(u) = &self.user {
            use std::os::unix::process::CommandExt;
            // As root, std also drops the supplementary groups when it changes the uid.
            cmd.uid(u.uid)
                .gid(u.gid)
                .env("USER", &u.name)
                .env("LOGNAME", &u.name);
        }
        cmd
    }

    fn daemon(&mut self, program: &str, args: &[&str]) -> Result<(), HarnessError> {
        let log = self.dir.path().join(format!("{program}.log"));
        let out = File::create(&log).map_err(|e| HarnessError::Io {
            path: log.clone(),
            source: e,
        })?;
        let err = out.try_clone().map_err(|e| HarnessError::Io {
            path: log,
            source: e,
        })?;
        let child = self
            .command(program)
            .args(args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| HarnessError::Spawn {
                program: program.into(),
                source: e,
            })?;
        self.daemons.push(Process::new(program, child));
        Ok(())
    }

    /// The last lines of every daemon's log, for error messages.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for p in &self.daemons {
            let log = std::fs::read_to_string(self.dir.path().join(format!("{}.log", p.name)))
                .unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            text.push_str(&format!("--- {} (pid {}) ---\n", p.name, p.pid()));
            for line in &lines[lines.len().saturating_sub(15)..] {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// Polls `ready` every 20 ms for up to ten seconds.
    pub fn wait_for(&self, what: &str, ready: impl FnMut() -> bool) -> Result<(), HarnessError> {
        self.wait_for_within(what, DAEMON_TIMEOUT, ready)
    }

    /// Polls `ready` every 20 ms for up to `timeout`.
    pub fn wait_for_within(
        &self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout {
                    what: what.into(),
                    seconds: timeout.as_secs(),
                    logs: self.logs(),
                });
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Runs a program to completion in the session and returns its stdout.
    pub fn output(&self, program: &str, args: &[&str]) -> Result<String, HarnessError> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .map_err(|e| HarnessError::Spawn {
                program: program.into(),
                source: e,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(HarnessError::Failed {
                command: format!("{program} {}", args.join(" ")),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            })
        }
    }

    /// The `node.name`s of the sinks, as `pactl list short sinks` prints them.
    pub fn sinks(&self) -> Result<Vec<String>, HarnessError> {
        let out = self.output("pactl", &["list", "short", "sinks"])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split('\t').nth(1))
            .map(str::to_owned)
            .collect())
    }

    /// Creates a stereo null sink (`module-null-sink`) and waits until it is listed.
    /// Returns the module index, for [`PwSession::unload_module`].
    pub fn null_sink(&self, name: &str) -> Result<u32, HarnessError> {
        let out = self.output(
            "pactl",
            &[
                "load-module",
                "module-null-sink",
                &format!("sink_name={name}"),
                "channels=2",
                "channel_map=front-left,front-right",
            ],
        )?;
        let module = out.trim().parse().map_err(|_| HarnessError::Failed {
            command: format!("pactl load-module module-null-sink sink_name={name}"),
            output: format!("no module index in {out:?}"),
        })?;
        self.wait_for(&format!("sink {name} to appear"), || {
            self.sinks().is_ok_and(|s| s.iter().any(|n| n == name))
        })?;
        Ok(module)
    }

    /// Unloads a module (removes a null sink) and waits until its sink is gone.
    pub fn unload_module(&self, module: u32, sink: &str) -> Result<(), HarnessError> {
        self.output("pactl", &["unload-module", &module.to_string()])?;
        self.wait_for(&format!("sink {sink} to disappear"), || {
            self.sinks().is_ok_and(|s| !s.iter().any(|n| n == sink))
        })
    }

    /// Forces the graph's sample rate (`clock.force-rate` in the "settings" metadata);
    /// 0 returns to the default.
    pub fn force_rate(&self, rate: u32) -> Result<(), HarnessError> {
        self.output(
            "pw-metadata",
            &["-n", "settings", "0", "clock.force-rate", &rate.to_string()],
        )
        .map(drop)
    }

    /// Forces the graph's quantum (`clock.force-quantum`); 0 returns to the default.
    pub fn force_quantum(&self, quantum: u32) -> Result<(), HarnessError> {
        self.output(
            "pw-metadata",
            &[
                "-n",
                "settings",
                "0",
                "clock.force-quantum",
                &quantum.to_string(),
            ],
        )
        .map(drop)
    }

    /// Runs `pipewire -c FILE` with `config` (written to `NAME.conf` in the session
    /// directory; e.g. a filter-chain that klang-formats exports) as a client of the
    /// session, and waits until its sink `sink` is listed. The process is ended by its
    /// PID when the returned [`Process`] is dropped; its log is `NAME.log`, and a timeout
    /// error includes it.
    pub fn pipewire_config(
        &self,
        name: &str,
        config: &str,
        sink: &str,
    ) -> Result<Process, HarnessError> {
        let path = self.dir.path().join(format!("{name}.conf"));
        let log_path = self.dir.path().join(format!("{name}.log"));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |e| HarnessError::Io { path, source: e }
        };
        std::fs::write(&path, config).map_err(io(&path))?;
        let log = File::create(&log_path).map_err(io(&log_path))?;
        let err = log.try_clone().map_err(io(&log_path))?;
        let child = self
            .command("pipewire")
            .arg("-c")
            .arg(&path)
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| HarnessError::Spawn {
                program: "pipewire -c".into(),
                source: e,
            })?;
        let process = Process::new(&format!("pipewire -c {name}.conf"), child);
        self.wait_for(&format!("the sink {sink} of {name}.conf"), || {
            self.sinks().is_ok_and(|s| s.iter().any(|n| n == sink))
        })
        .map_err(|e| match e {
            HarnessError::Timeout {
                what,
                seconds,
                logs,
            } => HarnessError::Timeout {
                what,
                seconds,
                logs: format!(
                    "{logs}--- {name}.log ---\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                ),
            },
            other => other,
        })?;
        Ok(process)
    }

    /// Writes a tone file into the session directory and returns its path.
    pub fn write_tone(&self, name: &str, tone: &Tone) -> Result<PathBuf, HarnessError> {
        let path = self.dir.path().join(name);
        tone.write(&path)?;
        Ok(path)
    }

    /// Starts `pw-play` on `file`, to `target` (a node name) or, with `None`, wherever
    /// WirePlumber puts it. `props` become stream properties (`application.name`, ...).
    pub fn play(
        &self,
        file: &Path,
        target: Option<&str>,
        props: &[(&str, &str)],
    ) -> Result<Process, HarnessError> {
        let mut cmd = self.command("pw-play");
        if let Some(t) = target {
            cmd.args(["--target", t]);
        }
        if !props.is_empty() {
            let body: Vec<String> = props
                .iter()
                .map(|(k, v)| format!("{k} = \"{v}\""))
                .collect();
            cmd.args(["-P", &format!("{{ {} }}", body.join(" "))]);
        }
        let child = cmd
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| HarnessError::Spawn {
                program: "pw-play".into(),
                source: e,
            })?;
        Ok(Process::new("pw-play", child))
    }

    /// Starts recording `target`'s monitor (a sink's node name) as 32-bit float for
    /// `seconds` (`timeout -s INT`, so pw-record closes the file cleanly), and waits until
    /// the recorder is linked. [`Recorder::finish`] waits for the end and reads the file.
    pub fn record(
        &self,
        target: &str,
        seconds: f64,
        rate: u32,
        channels: u16,
    ) -> Result<Recorder, HarnessError> {
        let path = self
            .dir
            .path()
            .join(format!("rec-{target}-{}.wav", unique()));
        let node_name = format!("klang-pwtest-rec-{}", unique());
        let child = self
            .command("timeout")
            .args([
                "-s",
                "INT",
                &format!("{seconds:.3}"),
                "pw-record",
                "--target",
                target,
            ])
            .args([
                "--rate",
                &rate.to_string(),
                "--channels",
                &channels.to_string(),
                "--format",
                "f32",
            ])
            // `stream.capture.sink` lets WirePlumber 0.4 link a capture stream to a sink's
            // monitor by name; without it, it falls back to the default sink's monitor.
            .args([
                "-P",
                &format!("{{ node.name = \"{node_name}\" stream.capture.sink = true }}"),
            ])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| HarnessError::Spawn {
                program: "timeout pw-record".into(),
                source: e,
            })?;
        let recorder = Recorder {
            process: Process::new("pw-record", child),
            path,
            rate,
            channels,
        };
        self.wait_for(&format!("the recorder of {target} to be linked"), || {
            self.output("pw-link", &["-l"])
                .is_ok_and(|out| out.contains(&format!("{node_name}:input")))
        })?;
        Ok(recorder)
    }
}

impl Drop for PwSession {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "klang-pwtest: session logs at the failure:\n{}",
                self.logs()
            );
        }
        while let Some(mut p) = self.daemons.pop() {
            p.terminate();
        }
        // The test user (if any) is deleted by its own Drop, after the daemons are gone.
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A running `pw-record`.
#[derive(Debug)]
pub struct Recorder {
    process: Process,
    path: PathBuf,
    rate: u32,
    channels: u16,
}

impl Recorder {
    /// Waits until the recording time is over and reads the file.
    pub fn finish(self) -> Result<Recording, HarnessError> {
        let Recorder {
            process,
            path,
            rate,
            channels,
        } = self;
        // `timeout` exits with 124 when it had to send the signal, which is the normal case.
        let _ = process.wait();
        let mut reader = hound::WavReader::open(&path).map_err(|e| HarnessError::Wav {
            path: path.clone(),
            source: e,
        })?;
        let samples: Vec<f32> = reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| HarnessError::Wav {
                path: path.clone(),
                source: e,
            })?;
        Ok(Recording {
            rate,
            channels: usize::from(channels),
            samples,
        })
    }
}

/// Interleaved samples recorded from a sink's monitor.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Sample rate in Hz.
    pub rate: u32,
    /// Channels per frame.
    pub channels: usize,
    /// Interleaved samples.
    pub samples: Vec<f32>,
}

impl Recording {
    /// One channel's samples.
    pub fn channel(&self, index: usize) -> Vec<f32> {
        self.samples
            .iter()
            .skip(index)
            .step_by(self.channels)
            .copied()
            .collect()
    }
}

/// A sum of sines written as a stereo 32-bit float WAV (both channels alike).
#[derive(Debug, Clone)]
pub struct Tone {
    rate: u32,
    seconds: f64,
    partials: Vec<(f64, f32)>,
}

impl Tone {
    /// Silence of `seconds` at `rate`; add partials with [`Tone::with`].
    pub fn new(rate: u32, seconds: f64) -> Self {
        Tone {
            rate,
            seconds,
            partials: Vec::new(),
        }
    }

    /// Adds a sine of `freq` Hz and peak `amplitude`.
    pub fn with(mut self, freq: f64, amplitude: f32) -> Self {
        self.partials.push((freq, amplitude));
        self
    }

    /// Sample `i` of the signal.
    pub fn sample(&self, i: usize) -> f32 {
        let t = i as f64 / f64::from(self.rate);
        self.partials
            .iter()
            .map(|&(f, a)| a * (2.0 * std::f64::consts::PI * f * t).sin() as f32)
            .sum()
    }

    /// Writes the file.
    pub fn write(&self, path: &Path) -> Result<(), HarnessError> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: self.rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let wav = |e| HarnessError::Wav {
            path: path.to_owned(),
            source: e,
        };
        let mut w = hound::WavWriter::create(path, spec).map_err(wav)?;
        let frames = (self.seconds * f64::from(self.rate)) as usize;
        for i in 0..frames {
            let x = self.sample(i);
            w.write_sample(x).map_err(wav)?;
            w.write_sample(x).map_err(wav)?;
        }
        w.finalize().map_err(wav)
    }
}
