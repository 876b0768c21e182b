//! The one place a policy is judged: parse, resolve, check, and report every
//! problem at once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::Range;

use jiff::tz::TimeZone;
use toml::Spanned;

use crate::diag::{Diagnostic, Diagnostics};
use crate::directory::{Directory, GroupEntry, UserEntry};
use crate::policy::{
    Console, Defaults, Grant, GroupRef, Pin, Policy, PortRange, Principal, Server,
};
use crate::raw::{PortsOrString, RawGrant, RawPolicy, S};
use crate::schedule::{DAY_SHORT, Hours, Schedule, parse_day};
use crate::sudoers;

/// Default special group.
pub const DEFAULT_GROUP: &str = "vmconsole";
/// Default viewer.
pub const DEFAULT_VIEWER: &str = "/usr/bin/remote-viewer";
/// Default kernel log prefix.
pub const DEFAULT_LOG_PREFIX: &str = "vmgate denied: ";
/// Display variables a viewer needs under X11 and Wayland (and for its sound
/// and D-Bus session), kept through sudo's `env_reset`.
pub const DISPLAY_ENV: &[&str] = &[
    "DISPLAY",
    "XAUTHORITY",
    "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR",
    "XDG_SESSION_TYPE",
    "DBUS_SESSION_BUS_ADDRESS",
    "PULSE_SERVER",
];

/// What [`check`] needs besides the text.
#[derive(Debug)]
pub struct CheckInput<'a> {
    /// File name for messages.
    pub file: &'a str,
    /// The policy text.
    pub text: &'a str,
    /// The zone used when the policy names none (the system's).
    pub system_timezone: TimeZone,
}

/// Parses and validates a policy, resolving names through `dir`.
///
/// # Errors
/// Every problem found, each with its place and a fix.
pub fn check(input: &CheckInput<'_>, dir: &dyn Directory) -> Result<Policy, Diagnostics> {
    let fail = |items: Vec<Diagnostic>| Diagnostics {
        file: input.file.to_string(),
        text: input.text.to_string(),
        items,
    };
    let shape = crate::shape::check_shape(input.text);
    if !shape.is_empty() {
        let mut items = shape;
        items.sort_by_key(|d| d.span.as_ref().map_or(usize::MAX, |s| s.start));
        return Err(fail(items));
    }
    let raw: RawPolicy = match toml::from_str(input.text) {
        Ok(r) => r,
        Err(e) => {
            return Err(fail(vec![Diagnostic::new(
                e.span(),
                "document",
                e.message().trim().to_string(),
                "fix the TOML shape: see the example policy (`vmgate plan --example`) for every key",
            )]));
        }
    };
    let mut v = Validator {
        dir,
        diags: Vec::new(),
        users: BTreeMap::new(),
        groups: BTreeMap::new(),
        line_starts: std::iter::once(0)
            .chain(input.text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
    };
    let policy = v.policy(raw, &input.system_timezone);
    if v.diags.is_empty() {
        Ok(policy)
    } else {
        let mut items = v.diags;
        items.sort_by_key(|d| d.span.as_ref().map_or(usize::MAX, |s| s.start));
        Err(fail(items))
    }
}

struct Validator<'a> {
    dir: &'a dyn Directory,
    diags: Vec<Diagnostic>,
    users: BTreeMap<String, Option<UserEntry>>,
    groups: BTreeMap<String, Option<GroupEntry>>,
    /// Byte offsets where lines start: grants record their line cheaply.
    line_starts: Vec<usize>,
}

fn span<T>(s: &Spanned<T>) -> Option<Range<usize>> {
    Some(s.span())
}

fn is_safe_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && s.len() <= 64
}

impl Validator<'_> {
    fn err(
        &mut self,
        span: Option<Range<usize>>,
        field: &str,
        msg: String,
        hint: impl Into<String>,
    ) {
        self.diags.push(Diagnostic::new(span, field, msg, hint));
    }

    fn user(&mut self, name: &S, field: &str) -> Option<UserEntry> {
        let n = name.get_ref().clone();
        if !self.users.contains_key(&n) {
            let found = match self.dir.user(&n) {
                Ok(u) => u,
                Err(e) => {
                    self.err(
                        span(name),
                        field,
                        format!("could not look up user `{n}`: {e}"),
                        "check that the user directory (NSS, LDAP, SSSD) is reachable, then run check again",
                    );
                    self.users.insert(n, None);
                    return None;
                }
            };
            if found.is_none() {
                self.err(
                    span(name),
                    field,
                    format!("unknown user `{n}`"),
                    format!(
                        "create the account or correct the name (`getent passwd {n}` finds nothing)"
                    ),
                );
            }
            self.users.insert(n.clone(), found);
        }
        self.users[&n].clone()
    }

    fn group(&mut self, name: &S, field: &str) -> Option<GroupEntry> {
        let n = name.get_ref().clone();
        if !self.groups.contains_key(&n) {
            let found = match self.dir.group(&n) {
                Ok(g) => g,
                Err(e) => {
                    self.err(
                        span(name),
                        field,
                        format!("could not look up group `{n}`: {e}"),
                        "check that the group directory (NSS, LDAP, SSSD) is reachable, then run check again",
                    );
                    self.groups.insert(n, None);
                    return None;
                }
            };
            if found.is_none() {
                self.err(
                    span(name),
                    field,
                    format!("unknown group `{n}`"),
                    format!("create it (`groupadd --system {n}`) or correct the name"),
                );
            }
            self.groups.insert(n.clone(), found);
        }
        self.groups[&n].clone()
    }

    fn policy(&mut self, raw: RawPolicy, system_tz: &TimeZone) -> Policy {
        let defaults = self.defaults(raw.defaults.as_ref(), system_tz);
        let servers = self.servers(&raw.server);
        let consoles = self.consoles(&raw.console, &servers, &defaults);
        let pins = self.pins(&raw.pin, &defaults);
        Policy {
            defaults,
            servers,
            consoles,
            pins,
            directory: self.dir.label(),
        }
    }

    fn command_path(&mut self, s: &S, field: &str) {
        let p = s.get_ref();
        if !p.starts_with('/') || p.split('/').any(|c| c == "..") || p.ends_with('/') {
            self.err(
                span(s),
                field,
                format!("`{p}` is not an absolute path of a file"),
                "write the full path, e.g. /usr/bin/remote-viewer (`command -v NAME` prints it)",
            );
        }
        if let Err(m) = sudoers::escape_word(p) {
            self.err(
                span(s),
                field,
                format!("`{p}` cannot be placed safely in sudoers: {m}"),
                "use a path made of letters, digits and / . _ + - (a symlink with a plain name works)",
            );
        }
    }

    fn defaults(
        &mut self,
        raw: Option<&Spanned<crate::raw::RawDefaults>>,
        system_tz: &TimeZone,
    ) -> Defaults {
        let empty = crate::raw::RawDefaults::default();
        let (d, dspan) = match raw {
            Some(r) => (r.get_ref(), Some(r.span())),
            None => (&empty, None),
        };
        let viewer = match &d.viewer {
            Some(v) => {
                self.command_path(v, "defaults.viewer");
                v.get_ref().clone()
            }
            None => DEFAULT_VIEWER.to_string(),
        };
        let group_name = d.group.clone().unwrap_or_else(|| {
            Spanned::new(dspan.clone().unwrap_or(0..0), DEFAULT_GROUP.to_string())
        });
        let group = self.special_group(&group_name);
        let (timezone, timezone_name) = match &d.timezone {
            Some(tz) => match jiff::tz::db().get(tz.get_ref()) {
                Ok(z) => (z, tz.get_ref().clone()),
                Err(_) => {
                    self.err(
                        span(tz),
                        "defaults.timezone",
                        format!("unknown time zone `{}`", tz.get_ref()),
                        "use an IANA name such as Europe/Berlin or UTC (`timedatectl list-timezones`)",
                    );
                    (TimeZone::UTC, "UTC".to_string())
                }
            },
            None => (
                system_tz.clone(),
                system_tz.iana_name().unwrap_or("system").to_string(),
            ),
        };
        let log_prefix = match &d.log_prefix {
            Some(p) => {
                let s = p.get_ref();
                if s.is_empty()
                    || s.len() > 127
                    || !s.chars().all(|c| c.is_ascii_graphic() || c == ' ')
                    || s.contains(['"', '\\'])
                {
                    self.err(
                        span(p),
                        "defaults.log_prefix",
                        format!("log prefix `{s}` is not 1 to 127 printable ASCII characters without quotes or backslashes"),
                        "use a short plain prefix such as \"vmgate denied: \"",
                    );
                }
                s.clone()
            }
            None => DEFAULT_LOG_PREFIX.to_string(),
        };
        let mut env_keep: Vec<String> = DISPLAY_ENV.iter().map(|s| (*s).to_string()).collect();
        for e in d.env_keep.iter().flatten() {
            let s = e.get_ref();
            let ok = s
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                self.err(
                    span(e),
                    "defaults.env_keep",
                    format!("`{s}` is not an environment variable name"),
                    "use letters, digits and underscores, e.g. QT_SCALE_FACTOR",
                );
            } else if !env_keep.contains(s) {
                env_keep.push(s.clone());
            }
        }
        Defaults {
            viewer,
            group: group.unwrap_or(GroupRef {
                name: group_name.get_ref().clone(),
                gid: u32::MAX,
            }),
            exempt_root: d.exempt_root.unwrap_or(false),
            log_denied: d.log_denied.unwrap_or(true),
            nopasswd: d.nopasswd.unwrap_or(false),
            timezone,
            timezone_name,
            log_prefix,
            env_keep,
        }
    }

    fn special_group(&mut self, name: &S) -> Option<GroupRef> {
        let field = "defaults.group";
        let g = self.group(name, field)?;
        if g.gid == 0 {
            self.err(
                span(name),
                field,
                format!("the special group `{}` is root's group (gid 0)", g.name),
                "create a group of its own for the viewer: `groupadd --system vmconsole`",
            );
        }
        let mut members: BTreeSet<String> = g.members.iter().cloned().collect();
        members.extend(self.dir.primary_members(g.gid));
        for m in members {
            self.err(
                span(name),
                field,
                format!("user `{m}` is a member of the special group `{}`", g.name),
                format!(
                    "remove the membership (`gpasswd -d {m} {}`, or give the user another primary group): a member could run the viewer freely, with any arguments",
                    g.name
                ),
            );
        }
        Some(GroupRef {
            name: g.name,
            gid: g.gid,
        })
    }

    fn servers(&mut self, raw: &[Spanned<crate::raw::RawServer>]) -> Vec<Server> {
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut addr_owner: BTreeMap<IpAddr, String> = BTreeMap::new();
        let mut out = Vec::new();
        for (i, rs) in raw.iter().enumerate() {
            let s = rs.get_ref();
            let f = |k: &str| format!("server[{i}].{k}");
            let name = s.name.get_ref().clone();
            if !is_safe_name(&name) {
                self.err(
                    span(&s.name),
                    &f("name"),
                    format!("server name `{name}` is not a plain name"),
                    "use letters, digits and . _ - (up to 64 characters)",
                );
            }
            if names.insert(name.clone(), i).is_some() {
                self.err(
                    span(&s.name),
                    &f("name"),
                    format!("duplicate server name `{name}`"),
                    "give every [[server]] its own name",
                );
            }
            let mut addresses = Vec::new();
            if s.addresses.get_ref().is_empty() {
                self.err(
                    span(&s.addresses),
                    &f("addresses"),
                    "a server needs at least one address".to_string(),
                    "list every address of the KVM host, v4 and v6, e.g. [\"192.168.10.5\", \"fd00::5\"]",
                );
            }
            for a in s.addresses.get_ref() {
                match a.get_ref().parse::<IpAddr>() {
                    Ok(ip) if ip.is_unspecified() || ip.is_multicast() => self.err(
                        span(a),
                        &f("addresses"),
                        format!("`{ip}` is not the address of a host"),
                        "write the KVM host's unicast address",
                    ),
                    Ok(ip) => {
                        if let Some(other) = addr_owner.insert(ip, name.clone()) {
                            self.err(
                                span(a),
                                &f("addresses"),
                                format!("address {ip} is listed for server `{other}` too"),
                                "an address belongs to one server: remove it from one of them",
                            );
                        } else {
                            addresses.push(ip);
                        }
                    }
                    Err(_) => {
                        let text = a.get_ref();
                        let looks_like_host = !text.is_empty()
                            && text
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
                        let (msg, hint) = if looks_like_host {
                            (
                                format!("`{text}` is a host name where an address is needed"),
                                format!(
                                    "write its addresses (`getent ahosts {text}`): the kernel matches addresses, and a name could resolve elsewhere"
                                ),
                            )
                        } else {
                            (
                                format!("`{text}` is not an IPv4 or IPv6 address"),
                                "write an address such as 192.168.10.5 or fd00::5".to_string(),
                            )
                        };
                        self.err(span(a), &f("addresses"), msg, hint);
                    }
                }
            }
            let guard = self.port_range(&s.guard_ports, &f("guard_ports"));
            out.push(Server {
                name,
                addresses,
                guard: guard.unwrap_or(PortRange { first: 1, last: 0 }),
            });
        }
        out
    }

    fn port_range(&mut self, p: &Spanned<PortsOrString>, field: &str) -> Option<PortRange> {
        let bad = |v: &mut Self| {
            v.err(
                span(p),
                field,
                "guard ports must be a port or a range FIRST-LAST within 1-65535".to_string(),
                "write e.g. \"20001-20010\": every console port of the host",
            );
            None
        };
        let port = |s: &str| s.trim().parse::<u16>().ok().filter(|&n| n > 0);
        match p.get_ref() {
            PortsOrString::Number(n) => match u16::try_from(*n) {
                Ok(n) if n > 0 => Some(PortRange { first: n, last: n }),
                _ => bad(self),
            },
            PortsOrString::Text(t) => {
                let (a, b) = t.split_once('-').unwrap_or((t, t));
                match (port(a), port(b)) {
                    (Some(first), Some(last)) if first <= last => Some(PortRange { first, last }),
                    _ => bad(self),
                }
            }
        }
    }

    fn consoles(
        &mut self,
        raw: &[Spanned<crate::raw::RawConsole>],
        servers: &[Server],
        defaults: &Defaults,
    ) -> Vec<Console> {
        let mut names = BTreeSet::new();
        let mut ports: BTreeMap<(usize, u16), String> = BTreeMap::new();
        let mut out = Vec::new();
        for (i, rc) in raw.iter().enumerate() {
            let c = rc.get_ref();
            let f = |k: &str| format!("console[{i}].{k}");
            let name = c.name.get_ref().clone();
            if !is_safe_name(&name) {
                self.err(
                    span(&c.name),
                    &f("name"),
                    format!("console name `{name}` is not a plain name"),
                    "use letters, digits and . _ - (it becomes the file name NAME.vv)",
                );
            }
            if !names.insert(name.clone()) {
                self.err(
                    span(&c.name),
                    &f("name"),
                    format!("duplicate console name `{name}`"),
                    "give every [[console]] its own name",
                );
            }
            let server = servers.iter().position(|s| s.name == *c.server.get_ref());
            if server.is_none() {
                let known: Vec<_> = servers.iter().map(|s| s.name.as_str()).collect();
                self.err(
                    span(&c.server),
                    &f("server"),
                    format!("unknown server `{}`", c.server.get_ref()),
                    format!("name one of the [[server]] entries: {}", known.join(", ")),
                );
            }
            let port = match u16::try_from(*c.port.get_ref()) {
                Ok(p) if p > 0 => p,
                _ => {
                    self.err(
                        span(&c.port),
                        &f("port"),
                        format!("port {} is not within 1-65535", c.port.get_ref()),
                        "write the console's Spice (or TLS) port",
                    );
                    0
                }
            };
            if let (Some(si), true) = (server, port > 0) {
                let g = servers[si].guard;
                if g.first <= g.last && !g.contains(port) {
                    self.err(
                        span(&c.port),
                        &f("port"),
                        format!(
                            "port {port} is outside the guard range {}-{} of server `{}`",
                            g.first, g.last, servers[si].name
                        ),
                        "widen the server's guard_ports to cover every console port, or correct the port: an unguarded port is open to everyone",
                    );
                }
                if let Some(other) = ports.insert((si, port), name.clone()) {
                    self.err(
                        span(&c.port),
                        &f("port"),
                        format!(
                            "console `{other}` already uses port {port} on server `{}`",
                            servers[si].name
                        ),
                        "every console on a server needs its own port",
                    );
                }
            }
            let tls = c.tls.unwrap_or(false);
            for (key, val) in [("ca_file", &c.ca_file), ("password_file", &c.password_file)] {
                if let Some(v) = val {
                    if !v.get_ref().starts_with('/') || v.get_ref().contains(['\n', '\r']) {
                        self.err(
                            span(v),
                            &f(key),
                            format!("`{}` is not an absolute path", v.get_ref()),
                            "write the full path, e.g. /etc/vmgate/mysrv-ca.pem",
                        );
                    }
                }
            }
            if let (Some(ca), false) = (&c.ca_file, tls) {
                self.err(
                    span(ca),
                    &f("ca_file"),
                    "ca_file is set but tls is not".to_string(),
                    "add `tls = true` (the CA is only used for TLS) or remove ca_file",
                );
            }
            for (key, val) in [("host_subject", &c.host_subject), ("title", &c.title)] {
                if let Some(v) = val {
                    if v.get_ref().chars().any(char::is_control) {
                        self.err(
                            span(v),
                            &f(key),
                            format!("{key} contains a control character"),
                            "write it on one line",
                        );
                    }
                }
            }
            let grants = c
                .allow
                .iter()
                .enumerate()
                .map(|(gi, g)| self.grant(g, &format!("console[{i}].allow[{gi}]"), defaults))
                .collect();
            out.push(Console {
                name,
                server: server.unwrap_or(0),
                port,
                tls,
                ca_file: c.ca_file.as_ref().map(|s| s.get_ref().clone()),
                password_file: c.password_file.as_ref().map(|s| s.get_ref().clone()),
                host_subject: c.host_subject.as_ref().map(|s| s.get_ref().clone()),
                title: c.title.as_ref().map(|s| s.get_ref().clone()),
                nopasswd: c.nopasswd.unwrap_or(defaults.nopasswd),
                grants,
            });
        }
        out
    }

    /// Resolves users and groups to principals; `forbidden` is a group the
    /// principals must not belong to.
    fn principals(
        &mut self,
        users: &[S],
        groups: &[S],
        field: &str,
        forbidden: Option<&GroupRef>,
        what: &str,
    ) -> Vec<Principal> {
        let mut out: Vec<Principal> = Vec::new();
        let forbidden_entry = forbidden.and_then(|g| self.groups.get(&g.name).cloned().flatten());
        let check_member = |v: &mut Self, u: &UserEntry, at: &S| {
            if let Some(fg) = forbidden {
                let supp = forbidden_entry
                    .as_ref()
                    .is_some_and(|e| e.members.contains(&u.name));
                if u.gid == fg.gid || supp {
                    v.err(
                        span(at),
                        field,
                        format!("user `{}` is a member of {what} `{}`", u.name, fg.name),
                        format!(
                            "remove the membership (`gpasswd -d {} {}`) or give the user another primary group: a member could run the command freely",
                            u.name, fg.name
                        ),
                    );
                }
            }
        };
        for u in users {
            if let Some(e) = self.user(u, field) {
                check_member(self, &e, u);
                if !out.iter().any(|p| p.uid == e.uid) {
                    out.push(Principal {
                        name: e.name,
                        uid: e.uid,
                        via: None,
                    });
                }
            }
        }
        for g in groups {
            let Some(ge) = self.group(g, field) else {
                continue;
            };
            let mut members: BTreeSet<String> = ge.members.iter().cloned().collect();
            members.extend(self.dir.primary_members(ge.gid));
            for m in members {
                let ms = Spanned::new(g.span(), m.clone());
                match self.dir.user(&m) {
                    Ok(Some(e)) => {
                        check_member(self, &e, &ms);
                        if !out.iter().any(|p| p.uid == e.uid) {
                            out.push(Principal {
                                name: e.name,
                                uid: e.uid,
                                via: Some(ge.name.clone()),
                            });
                        }
                    }
                    Ok(None) => self.err(
                        span(g),
                        field,
                        format!("group `{}` lists `{m}`, who does not exist", ge.name),
                        format!(
                            "remove the stale member (`gpasswd -d {m} {}`) or create the account",
                            ge.name
                        ),
                    ),
                    Err(e) => self.err(
                        span(g),
                        field,
                        format!(
                            "could not look up `{m}`, a member of group `{}`: {e}",
                            ge.name
                        ),
                        "check that the user directory is reachable, then run check again",
                    ),
                }
            }
        }
        out.sort_by_key(|p| p.uid);
        out
    }

    fn grant(&mut self, g: &Spanned<RawGrant>, field: &str, defaults: &Defaults) -> Grant {
        let r = g.get_ref();
        if r.users.is_empty() && r.groups.is_empty() {
            self.err(
                span(g),
                field,
                "this grant names nobody".to_string(),
                "add `users = [\"name\"]` or `groups = [\"name\"]`",
            );
        }
        let principals = self.principals(
            &r.users,
            &r.groups,
            field,
            Some(&defaults.group),
            "the special group",
        );
        let mut days = [true; 7];
        if let Some(ds) = &r.days {
            days = [false; 7];
            if ds.get_ref().is_empty() {
                self.err(
                    span(ds),
                    &format!("{field}.days"),
                    "an empty list of days never opens".to_string(),
                    "list days such as [\"mon\", \"tue\"], or remove `days` for every day",
                );
            }
            for d in ds.get_ref() {
                match parse_day(d.get_ref()) {
                    Some(i) => days[i as usize] = true,
                    None => self.err(
                        span(d),
                        &format!("{field}.days"),
                        format!("`{}` is not a day", d.get_ref()),
                        format!("use one of {}", DAY_SHORT.join(", ")),
                    ),
                }
            }
        }
        let hours = r.hours.as_ref().and_then(|h| match Hours::parse(h.get_ref()) {
            Ok(x) => Some(x),
            Err(m) => {
                self.err(
                    span(h),
                    &format!("{field}.hours"),
                    format!("{m}; hours must be HH:MM-HH:MM"),
                    "write e.g. \"08:00-18:00\" (24-hour clock; \"22:00-06:00\" runs past midnight; remove `hours` for the whole day)",
                );
                None
            }
        });
        let line = self.line_starts.partition_point(|&o| o <= g.span().start);
        Grant {
            line,
            users: r.users.iter().map(|s| s.get_ref().clone()).collect(),
            groups: r.groups.iter().map(|s| s.get_ref().clone()).collect(),
            principals,
            schedule: Schedule { days, hours },
        }
    }

    fn pins(&mut self, raw: &[Spanned<crate::raw::RawPin>], defaults: &Defaults) -> Vec<Pin> {
        let mut out = Vec::new();
        // One owner group per file: the command's mode is root:GROUP 0750.
        let mut owner: BTreeMap<String, String> = BTreeMap::new();
        owner.insert(defaults.viewer.clone(), defaults.group.name.clone());
        for (i, rp) in raw.iter().enumerate() {
            let p = rp.get_ref();
            let f = |k: &str| format!("pin[{i}].{k}");
            self.command_path(&p.command, &f("command"));
            let cmd = p.command.get_ref().clone();
            match owner.get(&cmd) {
                Some(g) if g != p.group.get_ref() => self.err(
                    span(&p.group),
                    &f("group"),
                    format!("`{cmd}` is already pinned with group `{g}`"),
                    format!("a file has one owner group: use `group = \"{g}\"` here too"),
                ),
                _ => {
                    owner.insert(cmd, p.group.get_ref().clone());
                }
            }
            for a in &p.args {
                if let Err(m) = sudoers::escape_word(a.get_ref()) {
                    self.err(
                        span(a),
                        &f("args"),
                        format!("argument `{}` cannot be placed safely in sudoers: {m}", a.get_ref()),
                        "sudo 1.9 and sudo-rs must both read it as exactly one argument: use letters, digits and / . _ + - @ % , : = (no spaces, quotes or wildcards * ? [ ])",
                    );
                }
            }
            let group = self.group(&p.group, &f("group"));
            if let Some(g) = &group {
                if g.gid == 0 {
                    self.err(
                        span(&p.group),
                        &f("group"),
                        format!("`{}` is root's group (gid 0)", g.name),
                        "create a group of its own for the command: `groupadd --system mygroup`",
                    );
                }
            }
            if p.users.is_empty() && p.groups.is_empty() {
                self.err(
                    span(rp),
                    &format!("pin[{i}]"),
                    "this pin names nobody".to_string(),
                    "add `users = [\"name\"]` or `groups = [\"name\"]`",
                );
            }
            let gref = group.map(|g| GroupRef {
                name: g.name,
                gid: g.gid,
            });
            let principals = self.principals(
                &p.users,
                &p.groups,
                &f("users"),
                gref.as_ref(),
                "the pinned command's group",
            );
            out.push(Pin {
                command: p.command.get_ref().clone(),
                args: p.args.iter().map(|a| a.get_ref().clone()).collect(),
                group: gref.unwrap_or(GroupRef {
                    name: p.group.get_ref().clone(),
                    gid: u32::MAX,
                }),
                principals,
                nopasswd: p.nopasswd.unwrap_or(defaults.nopasswd),
            });
        }
        out
    }
}
