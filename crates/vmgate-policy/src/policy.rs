//! The validated policy: every name resolved to numbers, every string checked.
//! Only [`crate::validate`] builds it, so holding one means it is consistent.

use std::net::IpAddr;

use jiff::tz::TimeZone;
use serde::Serialize;

use crate::schedule::Schedule;

/// A checked policy, ready to compile and to decide on.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    /// `[defaults]` with every default filled in.
    pub defaults: Defaults,
    /// KVM hosts.
    pub servers: Vec<Server>,
    /// Consoles.
    pub consoles: Vec<Console>,
    /// Pinned commands.
    pub pins: Vec<Pin>,
    /// Where names were resolved (shown in plans).
    pub directory: String,
}

/// Settings that apply to every console.
#[derive(Debug, Clone, Serialize)]
pub struct Defaults {
    /// The pinned viewer.
    pub viewer: String,
    /// The special group the viewer runs with; it has no members.
    pub group: GroupRef,
    /// Root may connect anywhere.
    pub exempt_root: bool,
    /// Denied connection attempts are logged.
    pub log_denied: bool,
    /// The viewer runs without a password prompt.
    pub nopasswd: bool,
    /// The zone schedules are meant in.
    #[serde(skip)]
    pub timezone: TimeZone,
    /// Its name, for messages.
    pub timezone_name: String,
    /// Kernel log prefix of denied attempts.
    pub log_prefix: String,
    /// Environment variables the viewer keeps through sudo.
    pub env_keep: Vec<String>,
}

/// A group by name and number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRef {
    /// Name.
    pub name: String,
    /// Number.
    pub gid: u32,
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

impl PortRange {
    /// Whether `port` is in the range.
    #[must_use]
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// A KVM host.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// Name.
    pub name: String,
    /// Every address, v4 and v6.
    pub addresses: Vec<IpAddr>,
    /// Console ports: denied unless granted.
    pub guard: PortRange,
}

/// One VM's console.
#[derive(Debug, Clone, Serialize)]
pub struct Console {
    /// Name (file name of its .vv).
    pub name: String,
    /// Index into [`Policy::servers`].
    pub server: usize,
    /// Spice port (TLS port when `tls`).
    pub port: u16,
    /// TLS.
    pub tls: bool,
    /// CA certificate file, embedded into the .vv at apply.
    pub ca_file: Option<String>,
    /// Root-only file with the Spice password, embedded at apply.
    pub password_file: Option<String>,
    /// TLS subject to check.
    pub host_subject: Option<String>,
    /// Window title.
    pub title: Option<String>,
    /// The viewer runs without a password prompt for this console.
    pub nopasswd: bool,
    /// Who may connect, and when.
    pub grants: Vec<Grant>,
}

/// A resolved grant.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    /// 1-based line of the grant in the policy, for explanations.
    pub line: usize,
    /// Users as written.
    pub users: Vec<String>,
    /// Groups as written.
    pub groups: Vec<String>,
    /// Everyone admitted, users and expanded group members, by uid.
    pub principals: Vec<Principal>,
    /// When.
    pub schedule: Schedule,
}

impl Grant {
    /// The principal with `uid`, if admitted by this grant.
    #[must_use]
    pub fn principal(&self, uid: u32) -> Option<&Principal> {
        self.principals.iter().find(|p| p.uid == uid)
    }

    /// `users myself; group bookkeeping` style summary.
    #[must_use]
    pub fn who(&self) -> String {
        let mut parts = Vec::new();
        if !self.users.is_empty() {
            parts.push(format!("users {}", self.users.join(", ")));
        }
        if !self.groups.is_empty() {
            parts.push(format!("groups {}", self.groups.join(", ")));
        }
        parts.join("; ")
    }
}

/// A user admitted by a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// The group through which the user was admitted, when not named directly.
    pub via: Option<String>,
}

/// A command pinned to exact arguments (post 2).
#[derive(Debug, Clone, Serialize)]
pub struct Pin {
    /// Absolute path.
    pub command: String,
    /// The only arguments.
    pub args: Vec<String>,
    /// Owner group of the command, which it runs with.
    pub group: GroupRef,
    /// Users allowed.
    pub principals: Vec<Principal>,
    /// Without a password prompt.
    pub nopasswd: bool,
}

impl Policy {
    /// The console called `name`.
    #[must_use]
    pub fn console(&self, name: &str) -> Option<&Console> {
        self.consoles.iter().find(|c| c.name == name)
    }

    /// The server of a console.
    #[must_use]
    pub fn server_of(&self, c: &Console) -> &Server {
        &self.servers[c.server]
    }

    /// Path of a console's .vv file.
    #[must_use]
    pub fn vv_path(&self, etc_dir: &str, c: &Console) -> String {
        format!("{etc_dir}/consoles/{}.vv", c.name)
    }
}
