//! `klang run`: load and validate everything, start the engine, serve the control socket
//! until the engine stops.

use std::io::IsTerminal;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use klang_live::Engine;

use crate::controller::{Controller, FALLBACK_RATE, PresetLookup, Startup, load_run_config};
use crate::remote::{self, Remote};
use crate::runconfig::RunConfig;
use crate::state::State;

/// How `klang run` failed; the binary maps these to exit codes.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is invalid (exit 3).
    #[error("{0}")]
    Config(String),
    /// Starting failed, or the engine stopped (exit 1, so systemd restarts it).
    #[error("{0}")]
    Runtime(String),
}

/// `klang run`'s inputs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `--config FILE`; without it `$XDG_CONFIG_HOME/klang/config.toml` if it exists.
    pub config: Option<PathBuf>,
    /// Built-in presets.
    pub lookup: PresetLookup,
    /// Names of the built-in presets (the phone page lists them).
    pub presets: Vec<String>,
    /// `--remote`: serve the phone page even if `[remote] enabled` is not set.
    pub remote: bool,
    /// Where the state is saved; default [`State::default_path`]. The remote's paired
    /// devices are kept beside it, in `remote-devices.toml`.
    pub state_path: Option<PathBuf>,
    /// Set to end the loop (tests run the engine in-process); none: runs until killed.
    pub stop: Option<Arc<AtomicBool>>,
}

impl RunOptions {
    /// The options of a plain `klang run`.
    pub fn new(config: Option<PathBuf>, lookup: PresetLookup, presets: Vec<String>) -> Self {
        RunOptions {
            config,
            lookup,
            presets,
            remote: false,
            state_path: None,
            stop: None,
        }
    }
}

/// `$XDG_CONFIG_HOME/klang/config.toml` (or `~/.config/klang/config.toml`).
pub fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("klang").join("config.toml"))
}

/// The control socket for a run config (for `klang ctl`, which reads the same config).
pub fn socket_for(run: &RunConfig) -> Result<PathBuf, String> {
    run.socket_path(std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from))
        .ok_or_else(|| {
            "XDG_RUNTIME_DIR is not set: set it or give [control] socket in the config".into()
        })
}

/// Reads `--config FILE` or the default config (defaults if there is none).
pub fn read_config(path: Option<&Path>) -> Result<(RunConfig, Option<PathBuf>), RunError> {
    match path {
        Some(p) => Ok((
            load_run_config(p, Some(FALLBACK_RATE)).map_err(RunError::Config)?,
            Some(p.to_owned()),
        )),
        None => match default_config_path().filter(|p| p.exists()) {
            Some(p) => Ok((
                load_run_config(&p, Some(FALLBACK_RATE)).map_err(RunError::Config)?,
                Some(p),
            )),
            None => Ok((RunConfig::default(), None)),
        },
    }
}

/// Removes the socket file when `klang run` ends.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn bind(socket: &Path) -> Result<(UnixListener, SocketFile), RunError> {
    let rt = |m: String| RunError::Runtime(m);
    if let Some(dir) = socket.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| rt(format!("cannot create {}: {e}", dir.display())))?;
    }
    if socket.exists() {
        if UnixStream::connect(socket).is_ok() {
            return Err(rt(format!(
                "another klang is already running on {} (help: `klang ctl status`, or stop it first)",
                socket.display()
            )));
        }
        // Left behind by a klang that was killed: nobody listens.
        let _ = std::fs::remove_file(socket);
    }
    let listener = UnixListener::bind(socket)
        .map_err(|e| rt(format!("cannot listen on {}: {e}", socket.display())))?;
    // Only the user may talk to their speakers.
    let _ = std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600));
    listener
        .set_nonblocking(true)
        .map_err(|e| rt(e.to_string()))?;
    Ok((listener, SocketFile(socket.to_owned())))
}

/// Runs until the engine stops (an error: PipeWire went away) or the process is killed.
pub fn run(opts: RunOptions) -> Result<(), RunError> {
    let (run, run_path) = read_config(opts.config.as_deref())?;
    let socket = socket_for(&run).map_err(RunError::Config)?;
    let state_path = opts.state_path.clone().or_else(State::default_path);
    let startup = Startup::new(run, run_path, state_path.clone(), opts.lookup);
    for w in &startup.warnings {
        eprintln!("klang: warning: {w}");
    }
    if startup.run.output.mains.is_none() {
        eprintln!(
            "klang: warning: no [output] mains configured: the processed sound goes nowhere \
             (help: set mains to a sink from `pactl list short sinks`)"
        );
    }
    let (processor, retired, live) = startup.processor().map_err(RunError::Config)?;
    let (listener, _socket_file) = bind(&socket)?;
    let engine = Engine::start(startup.run.engine_config(), processor)
        .map_err(|e| RunError::Runtime(format!("cannot start the engine: {e}")))?;
    eprintln!(
        "klang: running: sink \"{}\", preset {}, control socket {}",
        startup.run.output.sink_name,
        startup.source.label,
        socket.display()
    );
    let remote_section = startup.run.remote.clone();
    let mut controller = Controller::new(startup, engine.handle(), retired, live, opts.lookup);
    if opts.remote || remote_section.enabled {
        let devices = state_path
            .as_deref()
            .and_then(Path::parent)
            .map(|d| d.join("remote-devices.toml"));
        let config = remote::server_config(&remote_section, devices);
        let server = Remote::start(&config).map_err(|e| RunError::Runtime(e.to_string()))?;
        eprintln!("klang: remote: {}", server.url());
        if server.devices().is_empty() && std::io::stderr().is_terminal() {
            // Only to a terminal: a code in the journal would outlive its use.
            let (code, valid) = server.new_code();
            eprint!("{}", remote::pairing_text(server.url(), &code, valid));
        } else {
            eprintln!("klang: remote: pair a phone with `klang ctl remote pair`");
        }
        controller.attach_remote(server, opts.presets.clone());
    }
    loop {
        if opts
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
        {
            return Ok(());
        }
        if !controller.handle().is_running() {
            let why = controller
                .handle()
                .last_error()
                .unwrap_or_else(|| "PipeWire went away".into());
            return Err(RunError::Runtime(format!("the engine stopped: {why}")));
        }
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = controller.serve(stream) {
                    eprintln!("klang: warning: a control connection failed: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => eprintln!("klang: warning: accepting a control connection: {e}"),
        }
        controller.tick();
    }
}
