//! `klang run`'s configuration file: klang's speaker TOML (klang-dsp's [`Config`] keys, at
//! the top level, exactly as `klang process --config` reads them) plus four tables for the
//! live engine:
//!
//! ```toml
//! [tone]
//! bass_db = 2.0
//! [crossover]
//! freq = 80
//!
//! [output]                      # where the sound goes (node names, `pactl list short sinks`)
//! mains = "alsa_output.pci-0000_00_1f.3.analog-stereo"
//! second = "alsa_output.usb-Creative-00.analog-stereo"
//! second_gain_db = -10.0        # level of the full-range copy when there is no crossover
//! sink_name = "klang"           # the sink applications play to
//!
//! [[route]]                     # streams moved to klang when they appear
//! application = "Clementine"
//! [[route]]
//! binary = "mpv"
//!
//! [control]
//! socket = "/run/user/1000/klang/control.sock"   # default: $XDG_RUNTIME_DIR/klang/control.sock
//!
//! [remote]                      # the phone page (also `klang run --remote`)
//! enabled = true
//! listen = "0.0.0.0:7878"       # default 127.0.0.1:7878: this machine only
//! allow_lan = true              # needed for any address other than loopback
//! url = "http://192.168.1.10:7878/"   # what the QR code opens (default: guessed)
//! hosts = ["klang.home"]        # names besides IP addresses the page may be opened by
//! ```
//!
//! klang-dsp's `Config` denies unknown keys, so the live tables are split off here first
//! and the rest is handed to [`Config::from_toml`]; errors in either part are located in
//! the original text (line, column, field).

use std::net::SocketAddr;
use std::path::PathBuf;

use klang_dsp::config::{Config, ConfigError};
use klang_live::{EngineConfig, LiveError, RouteRule};
use serde::{Deserialize, Serialize};

/// The `[output]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Output {
    /// `node.name` of klang's own sink.
    pub sink_name: String,
    /// The name mixers show for it.
    pub sink_description: String,
    /// The sink that gets the mains (L, R).
    pub mains: Option<String>,
    /// The second sink: the subwoofer with a crossover, else a full-range copy.
    pub second: Option<String>,
    /// Level of the full-range copy on the second sink, in dB.
    pub second_gain_db: f64,
    /// PipeWire socket (name in `$XDG_RUNTIME_DIR` or absolute path); default: libpipewire's.
    pub remote: Option<String>,
}

impl Default for Output {
    fn default() -> Self {
        let e = EngineConfig::default();
        Output {
            sink_name: e.sink_name,
            sink_description: e.sink_description,
            mains: None,
            second: None,
            second_gain_db: 0.0,
            remote: None,
        }
    }
}

/// One `[[route]]` rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The stream's `application.name`.
    pub application: Option<String>,
    /// The stream's `application.process.binary`.
    pub binary: Option<String>,
}

/// The `[control]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSection {
    /// The control socket; default `$XDG_RUNTIME_DIR/klang/control.sock`.
    pub socket: Option<PathBuf>,
}

/// The default address of the phone page: this machine only.
pub const DEFAULT_REMOTE_LISTEN: &str = "127.0.0.1:7878";

/// The `[remote]` table: the phone page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteSection {
    /// Serve the page (`klang run --remote` turns it on too).
    pub enabled: bool,
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Required for any `listen` address that is not loopback: the LAN only on purpose.
    pub allow_lan: bool,
    /// The page's address for the QR code (default: from `listen`, or a guess of this
    /// machine's LAN address when listening on all addresses).
    pub url: Option<String>,
    /// Host names (besides IP addresses and `localhost`) the page may be opened by.
    pub hosts: Vec<String>,
}

impl Default for RemoteSection {
    fn default() -> Self {
        RemoteSection {
            enabled: false,
            listen: DEFAULT_REMOTE_LISTEN.parse().expect("a valid address"),
            allow_lan: false,
            url: None,
            hosts: Vec::new(),
        }
    }
}

/// The live tables, deserialized with spans; everything else goes to klang-dsp.
#[derive(Debug, Deserialize)]
struct Split {
    #[serde(default)]
    output: Output,
    #[serde(default)]
    route: Vec<Route>,
    #[serde(default)]
    control: ControlSection,
    #[serde(default)]
    remote: RemoteSection,
    #[serde(flatten)]
    rest: toml::Table,
}

/// A whole run configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunConfig {
    /// The speaker settings.
    pub dsp: Config,
    /// Output sinks.
    pub output: Output,
    /// Routing rules.
    pub routes: Vec<Route>,
    /// Control socket.
    pub control: ControlSection,
    /// The phone page.
    pub remote: RemoteSection,
}

fn located(text: &str, field: &str, message: impl Into<String>, help: &str) -> ConfigError {
    ConfigError {
        line: None,
        column: None,
        field: field.into(),
        message: message.into(),
        help: help.into(),
    }
    .locate(text)
}

impl RunConfig {
    /// Parses and validates a run configuration (at no particular rate; the engine checks
    /// the rate when it knows it). Errors carry line, column and field.
    pub fn from_toml(text: &str) -> Result<RunConfig, ConfigError> {
        let split: Split = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| line_col(text, s.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            ConfigError {
                line,
                column,
                field: String::new(),
                message: e.message().to_string(),
                help: "see `klang run --help` for the [output], [[route]], [control] and [remote] keys"
                    .into(),
            }
        })?;
        let rest = toml::to_string(&split.rest).map_err(|e| ConfigError {
            line: None,
            column: None,
            field: String::new(),
            message: e.to_string(),
            help: String::new(),
        })?;
        // klang-dsp reports lines in the re-serialized text; find the field in ours instead.
        let dsp = Config::from_toml(&rest).map_err(|mut e| {
            e.line = None;
            e.column = None;
            e.locate(text)
        })?;
        let run = RunConfig {
            dsp,
            output: split.output,
            routes: split.route,
            control: split.control,
            remote: split.remote,
        };
        run.validate(text)?;
        Ok(run)
    }

    fn validate(&self, text: &str) -> Result<(), ConfigError> {
        if let Err(LiveError::Config {
            field,
            message,
            help,
        }) = self.engine_config().validate()
        {
            let field = match field.strip_prefix("routes") {
                Some(rest) => format!("route{rest}"),
                None => format!("output.{field}"),
            };
            return Err(located(text, &field, message, &help));
        }
        if !(-60.0..=24.0).contains(&self.output.second_gain_db) {
            return Err(located(
                text,
                "output.second_gain_db",
                format!("{} dB is out of range", self.output.second_gain_db),
                "use a level between -60 and +24 dB",
            ));
        }
        if let Some(socket) = &self.control.socket
            && !socket.is_absolute()
        {
            return Err(located(
                text,
                "control.socket",
                format!("{} is not an absolute path", socket.display()),
                "write the full path, e.g. /run/user/1000/klang/control.sock",
            ));
        }
        let r = &self.remote;
        if !r.listen.ip().is_loopback() && !r.allow_lan {
            return Err(located(
                text,
                "remote.listen",
                format!(
                    "{} is reachable from other machines, and allow_lan is not set",
                    r.listen
                ),
                "serving the remote on the LAN must be explicit: add `allow_lan = true` to \
                 [remote], or listen on 127.0.0.1",
            ));
        }
        if let Some(url) = &r.url
            && !url.starts_with("http://")
        {
            return Err(located(
                text,
                "remote.url",
                format!("{url:?} is not an http:// address"),
                "write the address phones open, e.g. \"http://192.168.1.10:7878/\"",
            ));
        }
        if let Some(h) = r
            .hosts
            .iter()
            .find(|h| h.is_empty() || h.contains([':', '/', ' ']))
        {
            return Err(located(
                text,
                "remote.hosts",
                format!("{h:?} is not a host name"),
                "list bare names without port, e.g. [\"klang.home\"]",
            ));
        }
        Ok(())
    }

    /// The engine's view of the `[output]` and `[[route]]` tables.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            remote: self.output.remote.clone(),
            sink_name: self.output.sink_name.clone(),
            sink_description: self.output.sink_description.clone(),
            mains: self.output.mains.clone(),
            second: self.output.second.clone(),
            second_gain_db: self.output.second_gain_db as f32,
            routes: self
                .routes
                .iter()
                .map(|r| RouteRule {
                    application_name: r.application.clone(),
                    binary: r.binary.clone(),
                })
                .collect(),
        }
    }

    /// The control socket: the configured one, else `$XDG_RUNTIME_DIR/klang/control.sock`.
    pub fn socket_path(&self, runtime_dir: Option<PathBuf>) -> Option<PathBuf> {
        self.control
            .socket
            .clone()
            .or_else(|| runtime_dir.map(|d| d.join("klang").join("control.sock")))
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsp_keys_and_live_tables_in_one_file() {
        let text = "input_gain_db = -3.0\n[tone]\nbass_db = 2.0\n[crossover]\nfreq = 80\n\
                    [output]\nmains = \"speakers\"\nsecond = \"subwoofer\"\n\
                    [[route]]\napplication = \"Clementine\"\n[control]\nsocket = \"/tmp/k.sock\"\n";
        let run = RunConfig::from_toml(text).unwrap();
        assert_eq!(run.dsp.input_gain_db, -3.0);
        assert_eq!(run.dsp.tone.bass_db, 2.0);
        assert!(run.dsp.crossover.is_some());
        assert_eq!(run.output.mains.as_deref(), Some("speakers"));
        assert_eq!(
            run.engine_config().routes,
            vec![RouteRule::application("Clementine")]
        );
        assert_eq!(run.socket_path(None), Some(PathBuf::from("/tmp/k.sock")));
    }

    #[test]
    fn default_socket_is_in_the_runtime_dir() {
        let run = RunConfig::from_toml("").unwrap();
        assert_eq!(
            run.socket_path(Some("/run/user/7".into())),
            Some(PathBuf::from("/run/user/7/klang/control.sock"))
        );
    }

    #[test]
    fn errors_name_line_and_field_in_the_original_text() {
        let e = RunConfig::from_toml("[output]\nmains = \"a\"\n\n[tone]\nbass_db = 99.0\n")
            .unwrap_err();
        assert_eq!(e.field, "tone.bass_db");
        assert_eq!(e.line, Some(5), "{e}");

        let e =
            RunConfig::from_toml("[tone]\nbass_db = 1.0\n[output]\nmians = \"x\"\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().contains("mians"), "{e}");

        let e = RunConfig::from_toml("[output]\nmains = \"s\"\nsecond = \"s\"\n").unwrap_err();
        assert_eq!(e.field, "output.second");
        assert_eq!(e.line, Some(3), "{e}");

        let e = RunConfig::from_toml("[[route]]\n[[route]]\nbinary = \"mpv\"\n").unwrap_err();
        assert_eq!(e.field, "route[0]");
        assert_eq!(e.line, Some(1), "{e}");

        let e = RunConfig::from_toml("[control]\nsocket = \"rel.sock\"\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");

        let e = RunConfig::from_toml("[output]\nsecond_gain_db = -90.0\n").unwrap_err();
        assert_eq!(e.field, "output.second_gain_db");
    }

    #[test]
    fn the_remote_is_local_unless_the_lan_is_allowed() {
        let run = RunConfig::from_toml("[remote]\nenabled = true\n").unwrap();
        assert_eq!(run.remote.listen, DEFAULT_REMOTE_LISTEN.parse().unwrap());
        assert!(run.remote.listen.ip().is_loopback());
        let e =
            RunConfig::from_toml("[tone]\nbass_db = 1.0\n[remote]\nlisten = \"0.0.0.0:7878\"\n")
                .unwrap_err();
        assert_eq!(e.field, "remote.listen");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().contains("allow_lan = true"), "{e}");
        let lan = RunConfig::from_toml(
            "[remote]\nenabled = true\nlisten = \"0.0.0.0:7878\"\nallow_lan = true\nhosts = [\"klang.home\"]\n",
        )
        .unwrap();
        assert_eq!(lan.remote.hosts, vec!["klang.home".to_string()]);
        let e = RunConfig::from_toml("[remote]\nlisten = \"localhost\"\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let e = RunConfig::from_toml("[remote]\nurl = \"https://x/\"\n").unwrap_err();
        assert_eq!(e.field, "remote.url");
        let e = RunConfig::from_toml("[remote]\nport = 1\n").unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
    }
}
