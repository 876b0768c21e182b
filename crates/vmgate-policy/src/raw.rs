//! The policy exactly as written: serde structs with spans, before validation.
//!
//! Shape errors (an unknown key, a string where a number belongs) stop parsing
//! here, as the rest of the document cannot be read reliably; everything that
//! can be judged on a well-formed document is left to [`crate::validate`],
//! which reports all problems at once.

use serde::Deserialize;
use toml::Spanned;

/// A string with its place in the file.
pub type S = Spanned<String>;

/// The whole policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// `[defaults]`.
    #[serde(default)]
    pub defaults: Option<Spanned<RawDefaults>>,
    /// `[[server]]`.
    #[serde(default)]
    pub server: Vec<Spanned<RawServer>>,
    /// `[[console]]`.
    #[serde(default)]
    pub console: Vec<Spanned<RawConsole>>,
    /// `[[pin]]`.
    #[serde(default)]
    pub pin: Vec<Spanned<RawPin>>,
}

/// `[defaults]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// The pinned viewer command.
    pub viewer: Option<S>,
    /// The special group the viewer runs with.
    pub group: Option<S>,
    /// Root may connect anywhere.
    pub exempt_root: Option<bool>,
    /// Log denied connection attempts.
    pub log_denied: Option<bool>,
    /// The pinned commands run without a password prompt.
    pub nopasswd: Option<bool>,
    /// IANA zone the schedules are meant in.
    pub timezone: Option<S>,
    /// Prefix of the kernel log line for a denied attempt.
    pub log_prefix: Option<S>,
    /// Extra environment variables the viewer keeps (besides the display ones).
    pub env_keep: Option<Vec<S>>,
}

/// `[[server]]`: a KVM host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Unique name.
    pub name: S,
    /// Every address of the host.
    pub addresses: Spanned<Vec<S>>,
    /// All console ports of the host, `"20001-20010"` or a single port.
    pub guard_ports: Spanned<PortsOrString>,
}

/// A port range written as a string or a single number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PortsOrString {
    /// `20001`.
    Number(i64),
    /// `"20001-20010"`.
    Text(String),
}

/// `[[console]]`: one VM's Spice console.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    /// Unique name, used for the .vv file.
    pub name: S,
    /// The `[[server]]` it runs on.
    pub server: S,
    /// Its Spice port (the TLS port when `tls`).
    pub port: Spanned<i64>,
    /// Connect with TLS.
    pub tls: Option<bool>,
    /// The CA certificate the viewer trusts (embedded into the .vv at apply).
    pub ca_file: Option<S>,
    /// A root-only file holding the VM's Spice password (embedded at apply).
    pub password_file: Option<S>,
    /// The TLS certificate subject to check (`host-subject`).
    pub host_subject: Option<S>,
    /// Window title.
    pub title: Option<S>,
    /// Override of `defaults.nopasswd` for this console.
    pub nopasswd: Option<bool>,
    /// Who may connect, and when.
    #[serde(default)]
    pub allow: Vec<Spanned<RawGrant>>,
}

/// One grant: principals and an optional schedule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    /// User names.
    #[serde(default)]
    pub users: Vec<S>,
    /// Group names (expanded to their members at plan time).
    #[serde(default)]
    pub groups: Vec<S>,
    /// Open days, `mon`..`sun`.
    pub days: Option<Spanned<Vec<S>>>,
    /// Daily window `HH:MM-HH:MM`.
    pub hours: Option<S>,
}

/// `[[pin]]`: a command pinned to exact arguments (post 2).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPin {
    /// Absolute path of the command.
    pub command: S,
    /// The only arguments allowed.
    #[serde(default)]
    pub args: Vec<S>,
    /// Users allowed.
    #[serde(default)]
    pub users: Vec<S>,
    /// Groups whose members are allowed.
    #[serde(default)]
    pub groups: Vec<S>,
    /// The group the command is owned by and runs with.
    pub group: S,
    /// Override of `defaults.nopasswd`.
    pub nopasswd: Option<bool>,
}
