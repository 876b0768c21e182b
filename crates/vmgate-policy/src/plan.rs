//! Everything a policy compiles to, computed without touching the system.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::nft::Ruleset;
use crate::policy::Policy;
use crate::schedule::Schedule;
use crate::units::{Unit, UnitPaths, units};
use crate::vv::{Secrets, VvFile};
use crate::{ruleset, sudoers};

/// Where things go, and the table name (tests use a unique one).
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// nft table name (family inet).
    pub table: String,
    /// The instant the plan is made for (fixes the UTC offset).
    pub now: Timestamp,
    /// vmgate's directory under /etc.
    pub etc_dir: String,
    /// The sudoers drop-in.
    pub sudoers_path: String,
    /// The vmgate binary, for the units.
    pub vmgate_bin: String,
    /// The nft binary, for the units.
    pub nft_bin: String,
    /// The policy path, for the units.
    pub policy_path: String,
}

impl PlanOptions {
    /// The real defaults, for a plan made at `now`.
    #[must_use]
    pub fn new(now: Timestamp) -> Self {
        Self {
            table: "vmgate".into(),
            now,
            etc_dir: "/etc/vmgate".into(),
            sudoers_path: "/etc/sudoers.d/vmgate".into(),
            vmgate_bin: "/usr/bin/vmgate".into(),
            nft_bin: "/usr/sbin/nft".into(),
            policy_path: "/etc/vmgate/policy.toml".into(),
        }
    }
}

/// A file to write or whose owner and mode to set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    /// Path.
    pub path: String,
    /// Owner user.
    pub owner: String,
    /// Owner group.
    pub group: String,
    /// Permission bits.
    pub mode: u32,
    /// Why.
    pub purpose: String,
}

/// When the compiled windows are valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleInfo {
    /// The policy's zone.
    pub timezone: String,
    /// Its UTC offset at plan time, `+01:00`.
    pub utc_offset: String,
    /// The same in seconds east of UTC.
    pub offset_seconds: i64,
    /// The plan's instant.
    pub compiled_at: Timestamp,
    /// Since when this offset holds (the last change), if known.
    pub valid_from: Option<Timestamp>,
    /// When the offset changes next: the reload instant.
    pub next_change: Option<Timestamp>,
}

/// The ruleset for the period after the next UTC-offset change, compiled
/// ahead so the switch needs neither the policy nor the user directory.
#[derive(Debug, Clone, Serialize)]
pub struct NextOffset {
    /// When it takes over.
    pub at: Timestamp,
    /// The offset from then on.
    pub utc_offset: String,
    /// The same in seconds.
    pub offset_seconds: i64,
    /// When that offset changes again, if it does.
    pub until: Option<Timestamp>,
    /// Where it is stored.
    pub ruleset_path: String,
    /// The ruleset as data.
    pub ruleset: Ruleset,
    /// `nft -f` text.
    pub nft_text: String,
}

/// One line of the access matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    /// Console.
    pub console: String,
    /// User.
    pub user: String,
    /// Uid.
    pub uid: u32,
    /// Group the user was admitted through.
    pub via: Option<String>,
    /// When, in the policy's zone.
    pub when: String,
    /// The command the user types.
    pub command: String,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Where users and groups came from.
    pub directory: String,
    /// Table name.
    pub table: String,
    /// Time-zone facts.
    pub schedule: ScheduleInfo,
    /// Who may open what, when.
    pub access: Vec<Access>,
    /// The ruleset as data.
    pub ruleset: Ruleset,
    /// Where the compiled ruleset is stored for the boot unit.
    pub ruleset_path: String,
    /// `nft -f` text (load with `TZ=UTC`).
    pub nft_text: String,
    /// The ruleset for after the next offset change, loaded by
    /// `vmgate-offset.timer` at that instant.
    pub next_offset: Option<NextOffset>,
    /// The same as `nft -j list table` prints it.
    pub nft_json: serde_json::Value,
    /// Sudoers drop-in path.
    pub sudoers_path: String,
    /// Sudoers drop-in text.
    pub sudoers: String,
    /// Connection files.
    pub vv_files: Vec<VvFile>,
    /// Owners and modes to set.
    pub files: Vec<PlannedFile>,
    /// systemd units.
    pub units: Vec<Unit>,
    /// Rules a guarded packet traverses at most (independent of users).
    pub max_rules_per_packet: usize,
}

/// The offset in force at `now`, and the surrounding offset changes.
#[must_use]
pub fn offset_window(tz: &TimeZone, now: Timestamp) -> (i64, Option<Timestamp>, Option<Timestamp>) {
    let off = tz.to_offset(now);
    let next = tz
        .following(now)
        .take(64)
        .find(|t| t.offset() != off)
        .map(|t| t.timestamp());
    // The last transition at or before now that brought this offset in.
    let mut from = None;
    for t in tz
        .preceding(now + jiff::SignedDuration::from_nanos(1))
        .take(64)
    {
        if t.offset() == off {
            from = Some(t.timestamp());
        } else {
            break;
        }
    }
    (i64::from(off.seconds()), from, next)
}

/// Compiles a checked policy.
#[must_use]
pub fn plan(policy: &Policy, opts: &PlanOptions) -> Plan {
    let tz = &policy.defaults.timezone;
    let (offset_seconds, valid_from, next_change) = offset_window(tz, opts.now);
    let rs = ruleset::compile(policy, &opts.table, offset_seconds);
    let etc = opts.etc_dir.as_str();
    let ruleset_path = format!("{etc}/ruleset.nft");
    let next_path = format!("{etc}/ruleset-next.nft");
    let next_offset = next_change.map(|at| {
        let (off, _, until) = offset_window(tz, at);
        let rs = ruleset::compile(policy, &opts.table, off);
        NextOffset {
            at,
            utc_offset: format_offset(off),
            offset_seconds: off,
            until,
            ruleset_path: next_path.clone(),
            nft_text: rs.to_text(),
            ruleset: rs,
        }
    });
    let g = &policy.defaults.group.name;
    let vv_files: Vec<VvFile> = policy
        .consoles
        .iter()
        .map(|c| VvFile::new(policy, etc, c))
        .collect();
    let mut files = vec![PlannedFile {
        path: policy.defaults.viewer.clone(),
        owner: "root".into(),
        group: g.clone(),
        mode: 0o750,
        purpose: "the viewer runs only through sudo with the special group".into(),
    }];
    for pin in &policy.pins {
        files.push(PlannedFile {
            path: pin.command.clone(),
            owner: "root".into(),
            group: pin.group.name.clone(),
            mode: 0o750,
            purpose: "pinned command: runs only through sudo with its group".into(),
        });
    }
    files.push(PlannedFile {
        path: format!("{etc}/consoles"),
        owner: "root".into(),
        group: "root".into(),
        mode: 0o755,
        purpose: "connection files".into(),
    });
    for v in &vv_files {
        files.push(PlannedFile {
            path: v.path.clone(),
            owner: "root".into(),
            group: v.group.clone(),
            mode: v.mode,
            purpose: format!(
                "connection file of {}: readable by the viewer only",
                v.console
            ),
        });
    }
    files.push(PlannedFile {
        path: opts.sudoers_path.clone(),
        owner: "root".into(),
        group: "root".into(),
        mode: 0o440,
        purpose: "sudoers drop-in".into(),
    });
    files.push(PlannedFile {
        path: ruleset_path.clone(),
        owner: "root".into(),
        group: "root".into(),
        mode: 0o644,
        purpose: "compiled ruleset, loaded at boot".into(),
    });
    if next_offset.is_some() {
        files.push(PlannedFile {
            path: next_path.clone(),
            owner: "root".into(),
            group: "root".into(),
            mode: 0o644,
            purpose: "ruleset for after the next UTC-offset change".into(),
        });
    }
    let unit_paths = UnitPaths {
        vmgate: &opts.vmgate_bin,
        nft: &opts.nft_bin,
        ruleset: &ruleset_path,
        next_ruleset: &next_path,
        policy: &opts.policy_path,
        sudoers: &opts.sudoers_path,
        table: &opts.table,
    };
    let mut access = Vec::new();
    for c in &policy.consoles {
        for gr in &c.grants {
            for p in &gr.principals {
                access.push(Access {
                    console: c.name.clone(),
                    user: p.name.clone(),
                    uid: p.uid,
                    via: p.via.clone(),
                    when: describe(&gr.schedule),
                    command: format!(
                        "sudo -u {} -g {g} {} -- {}",
                        p.name,
                        policy.defaults.viewer,
                        policy.vv_path(etc, c)
                    ),
                });
            }
        }
    }
    let max_rules_per_packet = max_rules(&rs);
    let units = units(policy, &unit_paths, next_change);
    Plan {
        directory: policy.directory.clone(),
        table: opts.table.clone(),
        schedule: ScheduleInfo {
            timezone: policy.defaults.timezone_name.clone(),
            utc_offset: format_offset(offset_seconds),
            offset_seconds,
            compiled_at: opts.now,
            valid_from,
            next_change,
        },
        access,
        nft_text: rs.to_text(),
        nft_json: rs.to_json(),
        next_offset,
        ruleset: rs,
        ruleset_path,
        sudoers_path: opts.sudoers_path.clone(),
        sudoers: sudoers::render(policy, etc),
        units,
        vv_files,
        files,
        max_rules_per_packet,
    }
}

fn describe(s: &Schedule) -> String {
    if s.is_always() {
        "always".into()
    } else {
        s.describe()
    }
}

/// The longest path through the table: the output rules, the longer check chain, deny.
fn max_rules(rs: &Ruleset) -> usize {
    let len = |n: &str| rs.chain(n).map_or(0, |c| c.rules.len());
    len("output") + len("check4").max(len("check6")) + len("deny")
}

/// `+01:00`.
#[must_use]
pub fn format_offset(secs: i64) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
}

fn mode(m: u32) -> String {
    format!("{m:04o}")
}

/// A generated file's text and where it belongs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedFile {
    /// Absolute path on the target system.
    pub path: String,
    /// Contents (connection files without their secrets).
    pub text: String,
    /// Permission bits it gets.
    pub mode: u32,
}

impl Plan {
    /// Every generated text with its target path: the ruleset(s), the sudoers
    /// drop-in, the connection files (secrets left out) and the units (under
    /// `/etc/systemd/system`).
    #[must_use]
    pub fn generated_files(&self) -> Vec<GeneratedFile> {
        let mut out = vec![GeneratedFile {
            path: self.ruleset_path.clone(),
            text: self.nft_text.clone(),
            mode: 0o644,
        }];
        if let Some(n) = &self.next_offset {
            out.push(GeneratedFile {
                path: n.ruleset_path.clone(),
                text: n.nft_text.clone(),
                mode: 0o644,
            });
        }
        out.push(GeneratedFile {
            path: self.sudoers_path.clone(),
            text: self.sudoers.clone(),
            mode: 0o440,
        });
        for v in &self.vv_files {
            out.push(GeneratedFile {
                path: v.path.clone(),
                text: v.render(Secrets::default()),
                mode: v.mode,
            });
        }
        for u in &self.units {
            out.push(GeneratedFile {
                path: format!("/etc/systemd/system/{}", u.name),
                text: u.text.clone(),
                mode: 0o644,
            });
        }
        out
    }

    /// Human-readable plan.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let sc = &self.schedule;
        let _ = writeln!(s, "users and groups from: {}", self.directory);
        let _ = writeln!(
            s,
            "time zone {} (UTC{}) at {}; {}",
            sc.timezone,
            sc.utc_offset,
            sc.compiled_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            match sc.next_change {
                Some(t) => format!(
                    "the offset changes next at {}: vmgate-offset.timer switches to the table precompiled for it",
                    t.strftime("%Y-%m-%d %H:%M:%S UTC")
                ),
                None => "the offset never changes".into(),
            }
        );
        let _ = writeln!(
            s,
            "a guarded packet traverses at most {} rules, however many users are granted",
            self.max_rules_per_packet
        );
        s.push_str("\n== who may open which console ==\n");
        for a in &self.access {
            let via = a
                .via
                .as_ref()
                .map_or(String::new(), |g| format!(" via group {g}"));
            let _ = writeln!(
                s,
                "{:<12} {:<10} uid {:<6} {}{via}",
                a.console, a.user, a.uid, a.when
            );
        }
        let _ = writeln!(
            s,
            "\n== nftables: {} (load with: TZ=UTC nft -f {}) ==",
            self.ruleset_path, self.ruleset_path
        );
        s.push_str(&self.nft_text);
        if let Some(n) = &self.next_offset {
            let _ = writeln!(
                s,
                "\n== nftables from {} (UTC{}): {} ==",
                n.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                n.utc_offset,
                n.ruleset_path
            );
            s.push_str("# the same table with the day/hour windows shifted for the new offset;\n");
            s.push_str("# vmgate-offset.timer loads it at that instant (no directory needed)\n");
        }
        let _ = writeln!(s, "\n== sudoers: {} (root:root 0440) ==", self.sudoers_path);
        s.push_str(&self.sudoers);
        s.push_str("\n== connection files ==\n");
        for v in &self.vv_files {
            let _ = writeln!(s, "-- {} (root:{} {})", v.path, v.group, mode(v.mode));
            s.push_str(&v.render(Secrets::default()));
        }
        s.push_str("\n== owners and modes ==\n");
        for f in &self.files {
            let _ = writeln!(
                s,
                "{} {}:{} {}  # {}",
                mode(f.mode),
                f.owner,
                f.group,
                f.path,
                f.purpose
            );
        }
        s.push_str("\n== systemd units ==\n");
        for u in &self.units {
            let _ = writeln!(s, "-- {}", u.name);
            s.push_str(&u.text);
        }
        s.push_str(
            "\n== how users open their console (`vmgate connect` runs this for the caller) ==\n",
        );
        for a in &self.access {
            let _ = writeln!(s, "{}: {}", a.user, a.command);
        }
        s
    }
}
