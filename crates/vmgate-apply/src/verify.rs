//! `vmgate verify` (the live state against the policy, the access matrix computed from
//! the live table) and `vmgate guard` (the cheap part: modes and group membership).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use vmgate_policy::matrix::{self, Cell};
use vmgate_policy::nft::Ruleset;
use vmgate_system::files::{self, FileAttrs};
use vmgate_system::lock::ApplyLock;
use vmgate_system::{Error as SysError, statoverride, users};

use crate::apply::{
    CONSOLES_DIR_ATTRS, Change, Desired, PINNED_MODE, file_changes, recover_locked,
};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::source::{Source, load_lenient};
use crate::state::{Manifest, read_json};

/// One user × console entry of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccessRow {
    /// User (through the viewer's group).
    pub user: String,
    /// Console.
    pub console: String,
    /// What the policy says now.
    pub policy: bool,
    /// What the live table does now.
    pub live: bool,
    /// Per weekday in the policy's zone, Monday first: (policy, live) open at some
    /// time that day, over the next seven days.
    pub week: [(bool, bool); 7],
}

/// What `verify` found.
#[derive(Debug, Clone, serde::Serialize)]
#[must_use]
pub struct VerifyReport {
    /// The instant verified.
    pub at: Timestamp,
    /// An interrupted run that was rolled back (or finished) first.
    pub recovered: Option<String>,
    /// The nft table.
    pub table: String,
    /// Users × consoles.
    pub matrix: Vec<AccessRow>,
    /// Every difference between the live state and the policy, each named.
    pub drift: Vec<Change>,
}

impl VerifyReport {
    /// True exactly when the live state equals the policy (exit 0).
    #[must_use]
    pub fn ok(&self) -> bool {
        self.drift.is_empty()
    }

    /// Human-readable report: the matrix, then each drift.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if let Some(r) = &self.recovered {
            let _ = writeln!(s, "recovered: {r}");
        }
        let _ = writeln!(
            s,
            "access through the viewer at {} (policy/live; Y open, - closed, ! differs):",
            self.at.strftime("%Y-%m-%d %H:%M:%S UTC")
        );
        let _ = writeln!(
            s,
            "{:<16} {:<14} {:<5} Mo Tu We Th Fr Sa Su",
            "user", "console", "now"
        );
        let mark = |(p, l): (bool, bool)| match (p, l) {
            (true, true) => "Y",
            (false, false) => "-",
            _ => "!",
        };
        for r in &self.matrix {
            let _ = write!(
                s,
                "{:<16} {:<14} {:<5}",
                r.user,
                r.console,
                mark((r.policy, r.live))
            );
            for d in r.week {
                let _ = write!(s, " {} ", mark(d));
            }
            s.push('\n');
        }
        if self.drift.is_empty() {
            let _ = writeln!(s, "\nno drift: the live state equals the policy");
        } else {
            let _ = writeln!(s, "\n{} drift(s):", self.drift.len());
            for d in &self.drift {
                let _ = writeln!(s, "drift: {}: {}", d.item, d.action);
            }
        }
        s
    }
}

/// Reads the live state and compares it with the policy. Recovers an interrupted run
/// first (when no other vmgate holds the lock).
///
/// # Errors
/// [`Error::Invalid`] for an invalid policy; system errors.
pub fn verify(src: &Source, opts: &Options) -> Result<VerifyReport> {
    let at = src.plan.now;
    let recovered = try_recover(opts)?;
    let loaded = load_lenient(src).map_err(Error::Invalid)?;
    let d = Desired::new(&loaded.policy, &loaded.plan)?;
    let manifest: Option<Manifest> = read_json(&opts.manifest_path())?;
    let mut drift: Vec<Change> = file_changes(&d, &loaded.missing_groups, manifest.as_ref(), opts)?;
    drift.extend(membership_drift(&d)?);
    if let (Some(m), Some(listing)) = (manifest.as_ref(), d.table.list_text()?) {
        if m.table == d.table.name() && m.table_text != d.table_text {
            drift.push(Change {
                item: format!("nft table inet {}", d.table.name()),
                action: "loaded from another policy or another UTC offset than this one: run vmgate apply".into(),
            });
        } else if m.table == d.table.name() && m.table_listing != listing {
            drift.push(Change {
                item: format!("nft table inet {}", d.table.name()),
                action: "changed by hand since vmgate apply loaded it".into(),
            });
        }
    }
    let live = match d.table.list_json()? {
        Some(json) => {
            let doc: serde_json::Value =
                serde_json::from_str(&json).map_err(|e| Error::Listing {
                    table: d.table.name().into(),
                    cause: e.to_string(),
                })?;
            Ruleset::from_json(&doc, d.table.name()).map_err(|e| Error::Listing {
                table: d.table.name().into(),
                cause: e.to_string(),
            })?
        }
        None => {
            drift.push(Change {
                item: format!("nft table inet {}", d.table.name()),
                action: "missing: nothing guards the console ports".into(),
            });
            Ruleset {
                table: d.table.name().into(),
                sets: Vec::new(),
                chains: Vec::new(),
            }
        }
    };
    let policy = &loaded.policy;
    let mut times = matrix::probe_times(policy, at, at + SignedDuration::from_hours(7 * 24));
    // The start of each of the next seven days in the policy's zone too: with the
    // edges above, every state of every day is probed (a grant that never changes has
    // no edges), at 7 more instants rather than one per hour.
    let tz = &policy.defaults.timezone;
    let mut day = at.to_zoned(tz.clone());
    for _ in 0..7 {
        match day.tomorrow().and_then(|d| d.start_of_day()) {
            Ok(next) => {
                times.push(next.timestamp());
                day = next;
            }
            Err(_) => break,
        }
    }
    times.retain(|t| *t < at + SignedDuration::from_hours(7 * 24));
    times.sort();
    times.dedup();
    let cells = matrix::matrix(policy, &live, &times);
    drift.extend(access_drift(&cells, policy));
    let mut rows: BTreeMap<(String, String), AccessRow> = BTreeMap::new();
    for c in cells
        .iter()
        .filter(|c| c.who.via_sudo && c.who.uid != matrix::STRANGER_UID)
    {
        let row = rows
            .entry((c.who.name.clone(), c.console.clone()))
            .or_insert_with(|| AccessRow {
                user: c.who.name.clone(),
                console: c.console.clone(),
                policy: false,
                live: false,
                week: [(false, false); 7],
            });
        if c.at == at {
            row.policy |= c.policy_allows;
            row.live |= c.ruleset_allows;
        }
        let wd = c.at.to_zoned(tz.clone()).weekday().to_monday_zero_offset() as usize;
        row.week[wd].0 |= c.policy_allows;
        row.week[wd].1 |= c.ruleset_allows;
    }
    Ok(VerifyReport {
        at,
        recovered,
        table: d.table.name().into(),
        matrix: rows.into_values().collect(),
        drift,
    })
}

/// The cells where the live table does not do what the policy says, one line per
/// (who, console, address), with the first instant.
fn access_drift(cells: &[Cell], policy: &vmgate_policy::Policy) -> Vec<Change> {
    let mut first: BTreeMap<(String, bool, String, String), &Cell> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.policy_allows != c.ruleset_allows) {
        first
            .entry((
                c.who.name.clone(),
                c.who.via_sudo,
                c.console.clone(),
                c.address.to_string(),
            ))
            .or_insert(c);
    }
    first
        .into_values()
        .map(|c| {
            let how = if c.who.via_sudo {
                format!("through {}", policy.defaults.group.name)
            } else {
                "without the viewer's group".into()
            };
            let port = policy.console(&c.console).map_or(0, |x| x.port);
            let (live, pol) = if c.ruleset_allows {
                ("admits", "refuses")
            } else {
                ("refuses", "admits")
            };
            Change {
                item: format!(
                    "access {} {how} to {} ({}:{port})",
                    c.who.name, c.console, c.address
                ),
                action: format!(
                    "the live table {live}, the policy {pol} (first at {})",
                    c.at.strftime("%Y-%m-%d %H:%M:%S UTC")
                ),
            }
        })
        .collect()
}

fn membership_drift(d: &Desired) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    for g in &d.groups {
        match users::group_members(g) {
            Ok(m) if !m.all().is_empty() => out.push(Change {
                item: format!("group {g}"),
                action: format!(
                    "has members {}: they can run the pinned command freely; remove them (gpasswd -d USER {g}); guard does not change accounts",
                    m.all().join(", ")
                ),
            }),
            Ok(_) | Err(SysError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

fn try_recover(opts: &Options) -> Result<Option<String>> {
    match ApplyLock::try_acquire(&opts.lock_path) {
        Ok(_lock) => recover_locked(opts),
        // An apply is running: its journal is live, not a crash's leftover.
        Err(SysError::Locked { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What `guard` found and did.
#[derive(Debug, Clone, serde::Serialize)]
#[must_use]
pub struct GuardReport {
    /// An interrupted run that was rolled back (or finished) first.
    pub recovered: Option<String>,
    /// Owner/mode and membership problems found.
    pub drift: Vec<Change>,
    /// What `--repair` restored.
    pub repaired: Vec<Change>,
}

impl GuardReport {
    /// True when nothing is (any longer) wrong: exit 0.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.drift.len() == self.repaired.len()
    }

    /// Human-readable report.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if let Some(r) = &self.recovered {
            let _ = writeln!(s, "recovered: {r}");
        }
        if self.drift.is_empty() {
            s.push_str("guard: owners, modes and group memberships are as the policy says\n");
        }
        for d in &self.drift {
            let fixed = self.repaired.contains(d);
            let _ = writeln!(
                s,
                "{}: {}: {}",
                if fixed { "repaired" } else { "drift" },
                d.item,
                d.action
            );
        }
        s
    }
}

/// The permission and membership part of verify, cheap enough for a path unit: the
/// pinned commands, the connection files, the sudoers drop-in, the consoles directory,
/// the statoverride registrations and the special groups' members. With `repair` it
/// restores owners and modes; it changes nothing when all is right (a path unit must not
/// retrigger itself). Group memberships are reported, never changed.
///
/// # Errors
/// [`Error::Invalid`] for an invalid policy; system errors.
pub fn guard(src: &Source, opts: &Options, repair: bool) -> Result<GuardReport> {
    // A repair waits for a running apply: the path unit fires on apply's own chmod,
    // and after the apply there is nothing left to repair.
    let lock = if repair {
        Some(ApplyLock::acquire(&opts.lock_path)?)
    } else {
        None
    };
    let recovered = match &lock {
        Some(_) => recover_locked(opts)?,
        None => try_recover(opts)?,
    };
    let loaded = load_lenient(src).map_err(Error::Invalid)?;
    let d = Desired::new(&loaded.policy, &loaded.plan)?;
    let mut drift = Vec::new();
    let mut repaired = Vec::new();
    let mut check =
        |path: &std::path::Path, want: FileAttrs, group: &str, what: &str| -> Result<()> {
            let Ok(now) = files::stat(path) else {
                drift.push(Change {
                    item: path.display().to_string(),
                    action: format!("missing ({what}); run vmgate apply"),
                });
                return Ok(());
            };
            if now != want {
                let c = Change {
                    item: path.display().to_string(),
                    action: format!(
                        "owner and mode {now}, the policy says root:{group} {:04o} ({what})",
                        want.mode
                    ),
                };
                if repair {
                    files::set_attrs(path, want)?;
                    repaired.push(c.clone());
                }
                drift.push(c);
            }
            Ok(())
        };
    for p in &d.pinned {
        check(&p.path, p.attrs, &p.group, "pinned command")?;
    }
    check(
        &d.consoles_dir,
        CONSOLES_DIR_ATTRS,
        "root",
        "connection files' directory",
    )?;
    for (path, _, attrs) in &d.vv {
        check(path, *attrs, &d.group, "connection file")?;
    }
    check(
        d.sudoers.path(),
        vmgate_system::sudoers::SUDOERS_ATTRS,
        "root",
        "sudoers drop-in",
    )?;
    if opts.statoverride {
        for p in &d.pinned {
            let want = statoverride::StatOverride {
                owner: "root".into(),
                group: p.group.clone(),
                mode: PINNED_MODE,
            };
            if statoverride::get(&p.path)?.as_ref() != Some(&want) {
                let c = Change {
                    item: p.path.display().to_string(),
                    action: "not registered with dpkg-statoverride".into(),
                };
                if repair {
                    statoverride::set(&p.path, "root", &p.group, PINNED_MODE)?;
                    repaired.push(c.clone());
                }
                drift.push(c);
            }
        }
    }
    drift.extend(membership_drift(&d)?);
    Ok(GuardReport {
        recovered,
        drift,
        repaired,
    })
}
