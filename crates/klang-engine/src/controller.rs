//! The remote's brain, off the real-time thread: it owns the saved [`State`], loads and
//! validates presets and configs, builds new chains, sends them to the [`LiveChain`], frees
//! the ones that come back, and answers `klang ctl`.
//!
//! **Invariant:** a request either fully lands (chain built and sent, state saved) or is
//! refused with the reason and changes nothing: the old chain keeps playing.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use klang_dsp::Chain;
use klang_dsp::config::Config;
use klang_live::{EngineHandle, OutputState};

use crate::processor::{Control, LiveChain, LiveStatus, Retired};
use crate::protocol::{RemoteDevice, RemoteReport, Request, Response, StatusReport};
use crate::remote::{self, Limits, Outcome, Remote};
use crate::runconfig::RunConfig;
use crate::state::State;

/// Looks up a built-in preset's TOML text by name (the binary embeds them).
pub type PresetLookup = fn(&str) -> Option<&'static str>;

/// Rate used to validate before the graph's rate is known; the engine rebuilds at the
/// real rate before the first block.
pub const FALLBACK_RATE: u32 = 48_000;

/// Where the speaker settings come from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The preset's configuration, before the user's overrides.
    pub config: Config,
    /// "config" or the preset's name / path.
    pub label: String,
}

/// Checks `config` at `rate` (if known), locating the problem in the text it came from.
fn check_rate(config: &Config, rate: Option<u32>, text: &str, name: &str) -> Result<(), String> {
    match rate {
        Some(r) => config
            .validate_for_rate(r)
            .map_err(|e| format!("{name}: not usable at {r} Hz: {}", e.locate(text))),
        None => Ok(()),
    }
}

/// Loads a preset: a built-in name, or a file path (klang TOML or APO, by content),
/// validated at `rate` if given. Errors name the file, line and field.
pub fn load_preset(name: &str, lookup: PresetLookup, rate: Option<u32>) -> Result<Source, String> {
    let path = Path::new(name);
    if name.contains('/') || path.exists() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the preset {name}: {e}"))?;
        let config =
            klang_dsp::parse_preset(&text).map_err(|e| format!("invalid preset {name}: {e}"))?;
        check_rate(&config, rate, &text, name)?;
        return Ok(Source {
            config,
            label: name.to_string(),
        });
    }
    let text = lookup(name).ok_or_else(|| {
        format!("no built-in preset named {name:?} (help: give a built-in name or a file path)")
    })?;
    let config = if text.is_empty() {
        Config::default()
    } else {
        Config::from_toml(text).map_err(|e| format!("built-in preset {name}: {e}"))?
    };
    Ok(Source {
        config,
        label: name.to_string(),
    })
}

/// Reads and validates a run config file (at `rate` if given); errors name the file,
/// line and field.
pub fn load_run_config(path: &Path, rate: Option<u32>) -> Result<RunConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the configuration {}: {e}", path.display()))?;
    let run = RunConfig::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    check_rate(&run.dsp, rate, &text, &path.display().to_string())?;
    Ok(run)
}

/// Builds a chain, with the file or preset named in the error.
fn build(config: &Config, rate: u32, label: &str) -> Result<Chain, String> {
    Chain::new(config, rate).map_err(|e| format!("{label}: not usable at {rate} Hz: {e}"))
}

/// Everything `klang run` decided before the engine starts.
#[derive(Debug)]
pub struct Startup {
    /// The run config.
    pub run: RunConfig,
    /// Its file, if any (for `reload`).
    pub run_path: Option<PathBuf>,
    /// The restored state.
    pub state: State,
    /// Where the state is saved.
    pub state_path: Option<PathBuf>,
    /// The active speaker settings.
    pub source: Source,
    /// Things the user should know (a state that could not be restored, ...).
    pub warnings: Vec<String>,
}

impl Startup {
    /// Restores the state and the active preset; anything saved that no longer loads
    /// falls back to the run config's own settings, with a warning.
    pub fn new(
        run: RunConfig,
        run_path: Option<PathBuf>,
        state_path: Option<PathBuf>,
        lookup: PresetLookup,
    ) -> Startup {
        let mut warnings = Vec::new();
        let mut state = match &state_path {
            Some(p) => State::load(p).unwrap_or_else(|e| {
                warnings.push(format!("saved state not restored: {e}"));
                State::default()
            }),
            None => State::default(),
        };
        let own = Source {
            config: run.dsp.clone(),
            label: "config".into(),
        };
        let source = match state.preset.clone() {
            Some(name) => load_preset(&name, lookup, None).unwrap_or_else(|e| {
                warnings.push(format!("saved preset not restored: {e}"));
                state.preset = None;
                own.clone()
            }),
            None => own.clone(),
        };
        let mut startup = Startup {
            run,
            run_path,
            state,
            state_path,
            source,
            warnings,
        };
        if let Err(e) = build(
            &startup.state.apply(&startup.source.config),
            FALLBACK_RATE,
            &startup.source.label,
        ) {
            startup
                .warnings
                .push(format!("saved settings not restored: {e}"));
            startup.state = State {
                volume_db: startup.state.volume_db,
                muted: startup.state.muted,
                ..State::default()
            };
            startup.source = own;
        }
        startup
    }

    /// The processor to start the engine with: muted, ramping to the saved volume.
    pub fn processor(&self) -> Result<(LiveChain, Retired, Arc<LiveStatus>), String> {
        let config = self.state.apply(&self.source.config);
        let chain = build(&config, FALLBACK_RATE, &self.source.label)?;
        Ok(LiveChain::new(chain, self.state.target_db(&config)))
    }
}

/// The running remote. See the module docs.
#[derive(Debug)]
pub struct Controller {
    handle: EngineHandle<LiveChain>,
    retired: Retired,
    live: Arc<LiveStatus>,
    run: RunConfig,
    run_path: Option<PathBuf>,
    state: State,
    state_path: Option<PathBuf>,
    source: Source,
    effective: Config,
    lookup: PresetLookup,
    seen_stale: u64,
    remote: Option<PagePush>,
}

/// The phone page's server and what was last computed for it.
#[derive(Debug)]
struct PagePush {
    server: Remote,
    presets: Vec<String>,
    freqs: Vec<f64>,
    /// The configuration, rate and volume the cached curves were computed for.
    curves_for: Option<(Config, u32, f64)>,
    curves: Vec<remote::Curve>,
    /// When the state was last offered to the pages.
    published: Instant,
}

/// How often the pages get the state even when no request came in (a rate change, a
/// rebuilt chain).
const REPUBLISH: Duration = Duration::from_secs(1);

impl Controller {
    /// Takes over a started engine.
    pub fn new(
        startup: Startup,
        handle: EngineHandle<LiveChain>,
        retired: Retired,
        live: Arc<LiveStatus>,
        lookup: PresetLookup,
    ) -> Controller {
        let effective = startup.state.apply(&startup.source.config);
        Controller {
            handle,
            retired,
            live,
            run: startup.run,
            run_path: startup.run_path,
            state: startup.state,
            state_path: startup.state_path,
            source: startup.source,
            effective,
            lookup,
            seen_stale: 0,
            remote: None,
        }
    }

    /// Serves the phone page: its commands are carried out in [`Controller::tick`], and
    /// every change (from a page or `klang ctl`) is pushed to every open page. `presets`
    /// are the names a page may switch to.
    pub fn attach_remote(&mut self, server: Remote, presets: Vec<String>) {
        self.remote = Some(PagePush {
            server,
            presets,
            freqs: remote::plot_freqs(),
            curves_for: None,
            curves: Vec::new(),
            published: Instant::now(),
        });
        self.publish();
    }

    /// The phone page's server, if it runs.
    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref().map(|r| &r.server)
    }

    /// Pushes the current state to the pages (only what changed reaches them).
    fn publish(&mut self) {
        let status = self.status();
        let rate = self.rate();
        let Some(push) = &mut self.remote else {
            return;
        };
        push.published = Instant::now();
        let key = (self.effective.clone(), rate, status.volume_db);
        if push.curves_for.as_ref() != Some(&key) {
            push.curves = remote::curves(&self.effective, rate, status.volume_db, &push.freqs);
            push.curves_for = Some(key);
        }
        let state = remote::page_state(
            &status,
            &push.presets,
            push.freqs.clone(),
            push.curves.clone(),
        );
        push.server.publish(state);
    }

    /// Carries out one command from a page: checked against the current maximum and
    /// preset list, then the same request `klang ctl` would send.
    pub fn remote_command(&mut self, command: remote::Command) -> Outcome {
        let limits = Limits {
            max_db: self.effective.volume.max_db,
            presets: self
                .remote
                .as_ref()
                .map(|r| r.presets.clone())
                .unwrap_or_default(),
        };
        if let Err(message) = command.validate(&limits) {
            return Outcome { ok: false, message };
        }
        let r = self.handle_request(remote::request_for(command));
        Outcome {
            ok: r.ok,
            message: r.message,
        }
    }

    fn remote_report(&self, code: Option<(String, u64)>) -> Option<RemoteReport> {
        let server = self.remote()?;
        let (code, code_valid_s) = match code {
            Some((c, s)) => (Some(c), s),
            None => (None, 0),
        };
        Some(RemoteReport {
            url: server.url().to_string(),
            code,
            code_valid_s,
            devices: server
                .devices()
                .into_iter()
                .map(|d| RemoteDevice {
                    id: d.id,
                    name: d.name,
                    paired_at: d.paired_at,
                })
                .collect(),
        })
    }

    fn remote_request(&mut self, req: Request) -> Response {
        let Some(server) = self.remote() else {
            return self.refuse(
                "the remote is off (help: start `klang run --remote`, or set [remote] enabled = true)"
                    .into(),
            );
        };
        let (message, code) = match req {
            Request::RemotePair => {
                let (code, valid) = server.new_code();
                (
                    format!(
                        "pairing code {code} for {} (valid {} min, once)",
                        server.url(),
                        valid.div_ceil(60)
                    ),
                    Some((code, valid)),
                )
            }
            Request::RemoteRevoke { id } => match server.revoke(id.as_deref()) {
                Ok(0) if id.is_some() => {
                    let id = id.unwrap_or_default();
                    return self.refuse(format!(
                        "no paired device {id:?} (help: `klang ctl remote devices` lists them)"
                    ));
                }
                Ok(n) => (format!("revoked {n} device(s)"), None),
                Err(e) => (format!("revoked, but not saved: {e}"), None),
            },
            _ => (format!("{} device(s) paired", server.devices().len()), None),
        };
        let mut r = self.answer(true, message);
        r.remote = self.remote_report(code);
        r
    }

    /// The engine handle.
    pub fn handle(&self) -> &EngineHandle<LiveChain> {
        &self.handle
    }

    /// The state as saved.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Housekeeping, every few tens of ms: frees retired chains, rebuilds a switch the
    /// processor dropped because the rate changed under it.
    pub fn tick(&mut self) {
        self.retired.drain();
        while let Some(p) = self.remote.as_ref().and_then(|r| r.server.next()) {
            let outcome = self.remote_command(p.command.clone());
            p.answer(outcome);
        }
        if self
            .remote
            .as_ref()
            .is_some_and(|r| r.published.elapsed() >= REPUBLISH)
        {
            self.publish();
        }
        let stale = self.live.stale.load(Relaxed);
        if stale != self.seen_stale {
            self.seen_stale = stale;
            if let Ok(chain) = build(&self.effective, self.rate(), &self.source.label) {
                let _ = self.handle.send(Control::Switch(Box::new(chain)));
            }
        }
    }

    fn rate(&self) -> u32 {
        match self.live.rate.load(Relaxed) {
            0 => FALLBACK_RATE,
            r => r,
        }
    }

    fn save(&self) -> Result<(), String> {
        match &self.state_path {
            Some(p) => self.state.save(p).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Makes `state` + `source` the running configuration: validated and built at the
    /// graph's rate first; on any error nothing changes.
    fn switch_to(&mut self, state: State, source: Source, message: String) -> Response {
        let config = state.apply(&source.config);
        let chain = match build(&config, self.rate(), &source.label) {
            Ok(c) => c,
            Err(e) => return self.refuse(format!("{e}; the current settings keep playing")),
        };
        if let Err(Control::Switch(chain)) = self.handle.send(Control::Switch(Box::new(chain))) {
            drop(chain);
            return self.refuse("the engine's control queue is full; try again".into());
        }
        let target = state.target_db(&config);
        let _ = self.handle.send(Control::Volume(target));
        self.state = state;
        self.source = source;
        self.effective = config;
        self.saved(message)
    }

    fn set_volume(&mut self, state: State, message: String) -> Response {
        let target = state.target_db(&self.effective);
        if self.handle.send(Control::Volume(target)).is_err() {
            return self.refuse("the engine's control queue is full; try again".into());
        }
        self.state = state;
        self.saved(message)
    }

    fn saved(&self, message: String) -> Response {
        match self.save() {
            Ok(()) => self.answer(true, message),
            Err(e) => self.answer(true, format!("{message} (warning: state not saved: {e})")),
        }
    }

    fn refuse(&self, message: String) -> Response {
        self.answer(false, message)
    }

    fn answer(&self, ok: bool, message: String) -> Response {
        Response {
            ok,
            message,
            status: Some(self.status()),
            remote: None,
        }
    }

    /// Carries out one request, then pushes the new state to the phone pages.
    pub fn handle_request(&mut self, req: Request) -> Response {
        let response = self.carry_out(req);
        if response.ok {
            self.publish();
        }
        response
    }

    fn carry_out(&mut self, req: Request) -> Response {
        let max = self.effective.volume.max_db;
        let volume = |db: f64, state: &State| -> (State, String) {
            let mut s = state.clone();
            let clamped = db.clamp(klang_dsp::chain::MIN_VOLUME_DB, max);
            s.volume_db = Some(clamped);
            let note = if db > max {
                format!(" (capped at volume.max_db {max:+.1} dB)")
            } else {
                String::new()
            };
            (s, format!("volume {clamped:+.1} dB{note}"))
        };
        match req {
            Request::Status => self.answer(true, String::new()),
            Request::Volume { db } | Request::VolumeStep { db } if !db.is_finite() => {
                self.refuse(format!("{db} is not a volume in dB"))
            }
            Request::Volume { db } => {
                let (s, m) = volume(db, &self.state);
                self.set_volume(s, m)
            }
            Request::VolumeStep { db } => {
                let now = self.state.volume_for(&self.effective);
                let (s, m) = volume(now + db, &self.state);
                self.set_volume(s, m)
            }
            Request::Mute { on } => {
                let s = State {
                    muted: on,
                    ..self.state.clone()
                };
                self.set_volume(s, format!("mute {}", if on { "on" } else { "off" }))
            }
            Request::Bass { db } | Request::Treble { db } if !db.is_finite() => {
                self.refuse(format!("{db} is not a gain in dB"))
            }
            Request::Bass { db } => {
                let s = State {
                    bass_db: Some(db),
                    ..self.state.clone()
                };
                self.switch_to(s, self.source.clone(), format!("bass {db:+.1} dB"))
            }
            Request::Treble { db } => {
                let s = State {
                    treble_db: Some(db),
                    ..self.state.clone()
                };
                self.switch_to(s, self.source.clone(), format!("treble {db:+.1} dB"))
            }
            Request::Loudness { on } => {
                let s = State {
                    loudness: Some(on),
                    ..self.state.clone()
                };
                let m = format!("loudness {}", if on { "on" } else { "off" });
                self.switch_to(s, self.source.clone(), m)
            }
            Request::Bypass { on } => {
                let s = State {
                    bypass: on,
                    ..self.state.clone()
                };
                let m = format!("bypass {}", if on { "on" } else { "off" });
                self.switch_to(s, self.source.clone(), m)
            }
            Request::Preset { name } => match load_preset(&name, self.lookup, Some(self.rate())) {
                Ok(source) => {
                    // A preset is a sound mode: it brings its own tone and loudness.
                    let s = State {
                        preset: Some(name.clone()),
                        bass_db: None,
                        treble_db: None,
                        loudness: None,
                        ..self.state.clone()
                    };
                    self.switch_to(s, source, format!("preset {name}"))
                }
                Err(e) => self.refuse(format!("{e}; the current settings keep playing")),
            },
            Request::Reload { file } => self.reload(file),
            r @ (Request::RemotePair | Request::RemoteDevices | Request::RemoteRevoke { .. }) => {
                self.remote_request(r)
            }
        }
    }

    fn reload(&mut self, file: Option<PathBuf>) -> Response {
        let refuse =
            |this: &Self, e: String| this.refuse(format!("{e}; the current settings keep playing"));
        match (file, self.state.preset.clone()) {
            (None, Some(name)) => match load_preset(&name, self.lookup, Some(self.rate())) {
                Ok(source) => {
                    let s = self.state.clone();
                    self.switch_to(s, source, format!("reloaded preset {name}"))
                }
                Err(e) => refuse(self, e),
            },
            (file, _) => {
                let Some(path) = file.or_else(|| self.run_path.clone()) else {
                    return refuse(
                        self,
                        "klang run was started without --config: name a file to reload".into(),
                    );
                };
                let run = match load_run_config(&path, Some(self.rate())) {
                    Ok(r) => r,
                    Err(e) => return refuse(self, e),
                };
                let source = Source {
                    config: run.dsp.clone(),
                    label: "config".into(),
                };
                let s = State {
                    preset: None,
                    ..self.state.clone()
                };
                let mut message = format!("reloaded {}", path.display());
                let restart = run.output.sink_name != self.run.output.sink_name
                    || run.output.mains != self.run.output.mains
                    || run.output.second != self.run.output.second
                    || run.output.remote != self.run.output.remote
                    || run.routes != self.run.routes
                    || run.control != self.run.control
                    || run.remote != self.run.remote;
                if restart {
                    message.push_str(
                        " (changed outputs, routes, socket or remote take effect when klang restarts)",
                    );
                }
                let response = self.switch_to(s, source, message);
                if response.ok {
                    self.handle
                        .set_second_gain_db(run.output.second_gain_db as f32);
                    self.run_path = Some(path);
                    self.run = run;
                }
                response
            }
        }
    }

    /// The status report.
    pub fn status(&self) -> StatusReport {
        let stats = self.handle.stats();
        let out = |s: OutputState| match s {
            OutputState::Connected => "connected",
            OutputState::Missing => "missing",
            OutputState::NotConfigured => "not configured",
        };
        let c = &self.effective;
        StatusReport {
            volume_db: self.state.volume_for(c),
            current_volume_db: self.live.volume_db(),
            max_db: c.volume.max_db,
            muted: self.state.muted,
            preset: self.source.label.clone(),
            bass_db: c.tone.bass_db,
            treble_db: c.tone.treble_db,
            loudness: c.loudness.enabled,
            bypass: self.state.bypass,
            crossover: c.crossover.is_some(),
            ceiling_db: c.limiter.ceiling_db,
            fading: self.live.fading.load(Relaxed),
            sample_rate: stats.sample_rate,
            quantum: stats.quantum,
            load: stats.load,
            max_load: stats.max_load,
            xruns: stats.xruns,
            mains: out(stats.mains).into(),
            second: out(stats.second).into(),
            fallback: self.live.fallback.load(Relaxed),
            last_error: self.handle.last_error(),
        }
    }

    /// Serves one connection: one request line, one answer line.
    pub fn serve(&mut self, stream: UnixStream) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        let mut line = String::new();
        BufReader::new(&stream).take_line(&mut line)?;
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(req) => self.handle_request(req),
            Err(e) => self.refuse(format!("bad request {:?}: {e}", line.trim_end())),
        };
        let mut text = serde_json::to_string(&response).expect("responses serialize");
        text.push('\n');
        (&stream).write_all(text.as_bytes())
    }
}

/// Reads one line of at most 64 KiB (a request is small; this bounds a bad client).
trait TakeLine {
    fn take_line(&mut self, line: &mut String) -> std::io::Result<usize>;
}

impl<R: BufRead> TakeLine for R {
    fn take_line(&mut self, line: &mut String) -> std::io::Result<usize> {
        use std::io::Read;
        self.by_ref().take(64 * 1024).read_line(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_builtins(_: &str) -> Option<&'static str> {
        None
    }

    #[test]
    fn a_saved_preset_that_no_longer_loads_falls_back_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let state_path = dir.path().join("state.toml");
        State {
            volume_db: Some(-12.0),
            preset: Some("/nonexistent/preset.toml".into()),
            bass_db: Some(4.0),
            ..State::default()
        }
        .save(&state_path)
        .unwrap();
        let run = RunConfig::from_toml("[volume]\nmax_db = -15.0\n").unwrap();
        let s = Startup::new(run, None, Some(state_path), no_builtins);
        assert_eq!(s.source.label, "config");
        assert_eq!(s.state.preset, None);
        assert!(
            s.warnings[0].contains("/nonexistent/preset.toml"),
            "{:?}",
            s.warnings
        );
        // The saved volume is restored, capped at the config's maximum.
        let (p, _, _) = s.processor().unwrap();
        assert_eq!(s.state.volume_for(&s.source.config), -15.0);
        assert_eq!(p.target_db(), -15.0);
        assert!(p.volume_db() < -140.0, "starts muted");
    }

    #[test]
    fn presets_load_by_name_or_file_and_are_checked_at_the_rate() {
        fn builtin(name: &str) -> Option<&'static str> {
            (name == "sub80").then_some("[crossover]\nfreq = 80\n")
        }
        assert!(
            load_preset("sub80", builtin, Some(48_000))
                .unwrap()
                .config
                .crossover
                .is_some()
        );
        let e = load_preset("nope", builtin, None).unwrap_err();
        assert!(e.contains("no built-in preset named \"nope\""), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hi.toml");
        std::fs::write(&f, "[tone]\nbass_db = 1.0\n\n[crossover]\nfreq = 30000\n").unwrap();
        let e = load_preset(f.to_str().unwrap(), builtin, Some(48_000)).unwrap_err();
        assert!(e.contains("line 5") && e.contains("crossover.freq"), "{e}");
        let apo = dir.path().join("apo.txt");
        std::fs::write(
            &apo,
            "Preamp: -3 dB\nFilter 1: ON PK Fc 100 Hz Gain -2 dB Q 1.0\n",
        )
        .unwrap();
        let s = load_preset(apo.to_str().unwrap(), builtin, Some(48_000)).unwrap();
        assert_eq!(s.config.eq.len(), 1);
    }
}
