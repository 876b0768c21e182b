//! `vmgate explain`: may this user open this console at this time, and why.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::directory::UserEntry;
use crate::policy::Policy;

/// The console is not in the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no console `{name}` in the policy (consoles: {known})")]
pub struct UnknownConsole {
    /// Asked for.
    pub name: String,
    /// What exists.
    pub known: String,
}

/// The answer, with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[must_use]
pub struct Explanation {
    /// User name.
    pub user: String,
    /// Uid.
    pub uid: u32,
    /// Console.
    pub console: String,
    /// The instant asked about.
    pub at: Timestamp,
    /// The instant in the policy's zone, for people.
    pub local_time: String,
    /// The answer.
    pub allowed: bool,
    /// The grant that admits the user now (1-based index, line, who, when).
    pub grant: Option<GrantRef>,
    /// When the admitting window closes.
    pub closes_at: Option<Timestamp>,
    /// When a closed grant opens next.
    pub next_opening: Option<Timestamp>,
    /// `closes_at` in the policy's zone, for people.
    pub closes_at_local: Option<String>,
    /// `next_opening` in the policy's zone, for people.
    pub next_opening_local: Option<String>,
    /// Why, sentence by sentence.
    pub reasons: Vec<String>,
    /// The command the user types, when granted at some time.
    pub command: Option<String>,
}

/// A grant, as people find it in the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrantRef {
    /// 1-based position in the console's `allow`.
    pub number: usize,
    /// Line in the policy file.
    pub line: usize,
    /// Who it names.
    pub who: String,
    /// When it is open.
    pub when: String,
}

fn local(policy: &Policy, t: Timestamp) -> String {
    t.to_zoned(policy.defaults.timezone.clone())
        .strftime("%a %Y-%m-%d %H:%M %Z")
        .to_string()
}

/// Explains `user` on `console` at `at`.
///
/// # Errors
/// The console is not in the policy.
pub fn explain(
    policy: &Policy,
    etc_dir: &str,
    user: &UserEntry,
    console: &str,
    at: Timestamp,
) -> Result<Explanation, UnknownConsole> {
    let c = policy.console(console).ok_or_else(|| UnknownConsole {
        name: console.to_string(),
        known: policy
            .consoles
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let tz = &policy.defaults.timezone;
    let server = policy.server_of(c);
    let mut e = Explanation {
        user: user.name.clone(),
        uid: user.uid,
        console: c.name.clone(),
        at,
        local_time: local(policy, at),
        allowed: false,
        grant: None,
        closes_at: None,
        next_opening: None,
        closes_at_local: None,
        next_opening_local: None,
        reasons: Vec::new(),
        command: None,
    };
    let addrs: Vec<String> = server.addresses.iter().map(ToString::to_string).collect();
    e.reasons.push(format!(
        "{} runs on server {} ({}) port {}{}",
        c.name,
        server.name,
        addrs.join(", "),
        c.port,
        if c.tls { " (TLS)" } else { "" }
    ));
    if user.gid == policy.defaults.group.gid {
        e.reasons.push(format!(
            "warning: {}'s primary group is the special group {}: `vmgate check` refuses this",
            user.name, policy.defaults.group.name
        ));
    }
    if policy.defaults.exempt_root && user.uid == 0 {
        e.allowed = true;
        e.reasons.push("root is exempt (exempt_root = true)".into());
        return Ok(e);
    }
    let mut next: Option<Timestamp> = None;
    let mut named = false;
    for (i, g) in c.grants.iter().enumerate() {
        let Some(p) = g.principal(user.uid) else {
            continue;
        };
        named = true;
        let via = p.via.as_ref().map_or(String::new(), |grp| {
            format!(" (as a member of group {grp})")
        });
        let when = if g.schedule.is_always() {
            "always".to_string()
        } else {
            g.schedule.describe()
        };
        let gref = GrantRef {
            number: i + 1,
            line: g.line,
            who: g.who(),
            when: when.clone(),
        };
        if g.schedule.contains(tz, at) {
            let closes = g.schedule.next_edge(tz, at, false);
            e.reasons.push(format!(
                "grant #{} (line {}: {}; {when}) admits {}{via} now",
                gref.number, gref.line, gref.who, user.name
            ));
            if !e.allowed {
                e.allowed = true;
                e.grant = Some(gref);
                e.closes_at = closes;
                e.closes_at_local = closes.map(|t| local(policy, t));
            }
        } else {
            let opens = g.schedule.next_edge(tz, at, true);
            e.reasons.push(format!(
                "grant #{} (line {}: {}; {when}) names {}{via} but is closed at {}",
                gref.number, gref.line, gref.who, user.name, e.local_time
            ));
            if let Some(t) = opens {
                if next.is_none_or(|n| t < n) {
                    next = Some(t);
                }
            }
        }
    }
    if named {
        e.command = Some(format!(
            "sudo -u {} -g {} {} -- {}",
            user.name,
            policy.defaults.group.name,
            policy.defaults.viewer,
            policy.vv_path(etc_dir, c)
        ));
    } else {
        let mut admitted: Vec<String> = Vec::new();
        for g in &c.grants {
            let when = if g.schedule.is_always() {
                String::new()
            } else {
                format!(" ({})", g.schedule.describe())
            };
            admitted.push(format!("{}{when}", g.who()));
        }
        e.reasons.push(format!(
            "no grant on {} names {} (uid {}); it admits: {}",
            c.name,
            user.name,
            user.uid,
            if admitted.is_empty() {
                "nobody".to_string()
            } else {
                admitted.join("; ")
            }
        ));
    }
    if !e.allowed {
        e.next_opening = next;
        e.next_opening_local = next.map(|t| local(policy, t));
    }
    Ok(e)
}

impl Explanation {
    /// Human-readable answer.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let verdict = if self.allowed { "ALLOWED" } else { "DENIED" };
        let _ = writeln!(
            s,
            "{verdict}: {} (uid {}) {} open console {} at {}",
            self.user,
            self.uid,
            if self.allowed { "may" } else { "may not" },
            self.console,
            self.local_time
        );
        for r in &self.reasons {
            let _ = writeln!(s, "  - {r}");
        }
        if let Some(g) = &self.grant {
            let _ = writeln!(
                s,
                "  granted by: grant #{} at line {} ({})",
                g.number, g.line, g.when
            );
        }
        if let Some(t) = &self.closes_at_local {
            let _ = writeln!(s, "  window closes: {t}");
        }
        if let Some(t) = &self.next_opening_local {
            let _ = writeln!(s, "  next opening: {t}");
        } else if !self.allowed && self.command.is_some() {
            let _ = writeln!(s, "  next opening: none within two weeks");
        }
        if let Some(c) = &self.command {
            let _ = writeln!(s, "  command: {c}");
        }
        s
    }
}

/// Reads the `--at` of `explain`: an RFC 3339 instant
/// (`2026-12-02T10:00:00+01:00`), a civil time in the policy's zone
/// (`2026-12-02T10:00`), or a weekday with an optional time (`wed`,
/// `wed 10:00`): the next such moment after `now` in the policy's zone
/// (noon when no time is given).
///
/// # Errors
/// A message saying which forms are understood.
pub fn parse_when(policy: &Policy, text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let tz = &policy.defaults.timezone;
    let text = text.trim();
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return tz
            .to_ambiguous_zoned(dt)
            .compatible()
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string());
    }
    let mut parts = text.split_whitespace();
    let day = parts.next().and_then(crate::schedule::parse_day);
    let time = match parts.next() {
        None => Some((12, 0)),
        Some(t) => t
            .split_once(':')
            .and_then(|(h, m)| Some((h.parse::<i8>().ok()?, m.parse::<i8>().ok()?)))
            .filter(|&(h, m)| (0..24).contains(&h) && (0..60).contains(&m)),
    };
    if let (Some(day), Some((h, m)), None) = (day, time, parts.next()) {
        let local = now.to_zoned(tz.clone());
        for ahead in 0..8 {
            let Ok(date) = local.date().checked_add(jiff::Span::new().days(ahead)) else {
                continue;
            };
            if date.weekday().to_sunday_zero_offset() as u8 != day {
                continue;
            }
            let dt = date.at(h, m, 0, 0);
            if let Ok(z) = tz.to_ambiguous_zoned(dt).compatible() {
                if z.timestamp() > now {
                    return Ok(z.timestamp());
                }
            }
        }
    }
    Err(format!(
        "`{text}` is not a time: write 2026-12-02T10:00:00+01:00, 2026-12-02T10:00 (in {}), or a weekday such as `wed` or `wed 10:00`",
        policy.defaults.timezone_name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckInput, check, example};

    #[test]
    fn weekdays_and_civil_times_are_read_in_the_policys_zone() {
        let p = check(
            &CheckInput {
                file: "office.toml",
                text: example::OFFICE_TOML,
                system_timezone: jiff::tz::TimeZone::UTC,
            },
            &example::demo_directory(),
        )
        .unwrap();
        // Thursday 2026-12-03 15:00 UTC.
        let now: Timestamp = "2026-12-03T15:00:00Z".parse().unwrap();
        let t = |s: &str| parse_when(&p, s, now).unwrap().to_string();
        assert_eq!(t("wed"), "2026-12-09T11:00:00Z");
        assert_eq!(t("Thu 17:30"), "2026-12-03T16:30:00Z");
        assert_eq!(t("thu 08:00"), "2026-12-10T07:00:00Z");
        assert_eq!(t("2026-12-02T10:00"), "2026-12-02T09:00:00Z");
        assert_eq!(t("2026-12-02T10:00:00Z"), "2026-12-02T10:00:00Z");
        assert!(parse_when(&p, "someday", now).is_err());
        assert!(parse_when(&p, "wed 25:00", now).is_err());
    }
}
