//! `vmgate uninstall`: everything vmgate installed goes, every recorded original comes
//! back. Driven by the manifest alone, so it works without the policy.

use vmgate_system::files;
use vmgate_system::lock::ApplyLock;
use vmgate_system::nft::NftTable;
use vmgate_system::originals::OriginalStore;
use vmgate_system::systemd::Systemd;
use vmgate_system::{statoverride, users};

use crate::apply::Change;
use crate::error::Result;
use crate::options::Options;
use crate::state::{Journal, Manifest, delete_group, read_json, write_json};

/// What uninstall removed and restored.
#[derive(Debug, Clone, serde::Serialize)]
#[must_use]
pub struct UninstallReport {
    /// An interrupted run that was rolled back (or finished) first.
    pub recovered: Option<String>,
    /// Everything removed or restored.
    pub changes: Vec<Change>,
}

impl UninstallReport {
    /// Human-readable report.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if let Some(r) = &self.recovered {
            s.push_str(&format!("recovered: {r}\n"));
        }
        if self.changes.is_empty() {
            s.push_str("nothing to uninstall: vmgate has not installed anything here\n");
        }
        for c in &self.changes {
            s.push_str(&format!("{}: {}\n", c.item, c.action));
        }
        s
    }
}

/// Removes our table, sudoers drop-in, connection files, boot ruleset, units,
/// statoverrides and the groups vmgate created, and restores the recorded original
/// owners and modes. Journaled: an interrupted uninstall is finished by the next run.
///
/// # Errors
/// System errors; the journal stays and the next run continues.
pub fn uninstall(opts: &Options) -> Result<UninstallReport> {
    let _lock = ApplyLock::try_acquire(&opts.lock_path)?;
    // An interrupted apply is rolled back first, so the manifest is a committed one.
    let recovered = crate::apply::recover_locked(opts)?;
    if !opts.manifest_path().exists() {
        return Ok(UninstallReport {
            recovered,
            changes: Vec::new(),
        });
    }
    write_json(&opts.journal_path(), &Journal::Uninstall)?;
    let changes = uninstall_steps(opts)?;
    files::remove_file(&opts.journal_path())?;
    // vmgate's own state directory goes too when nothing else is in it.
    let _ = std::fs::remove_dir(&opts.state_dir);
    Ok(UninstallReport { recovered, changes })
}

/// The steps, each idempotent, in an order that never opens more than the policy did:
/// the sudo rule goes first, the table last.
pub(crate) fn uninstall_steps(opts: &Options) -> Result<Vec<Change>> {
    let Some(m): Option<Manifest> = read_json(&opts.manifest_path())? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut note = |item: String, action: &str| {
        out.push(Change {
            item,
            action: action.into(),
        });
    };
    if files::remove_file(&m.sudoers)? {
        note(m.sudoers.display().to_string(), "removed");
    }
    for v in &m.vv_files {
        if files::remove_file(v)? {
            note(v.display().to_string(), "removed");
        }
    }
    if files::remove_file(&m.ruleset_file)? {
        note(m.ruleset_file.display().to_string(), "removed");
    }
    for p in &m.statoverrides {
        if statoverride::available() && statoverride::remove(p)? {
            note(
                p.display().to_string(),
                "dpkg-statoverride registration removed",
            );
        }
    }
    let mut store = OriginalStore::open(opts.originals_path())?;
    for p in store.restore_all()? {
        note(p.display().to_string(), "original owner and mode restored");
    }
    files::remove_file(&opts.originals_path())?;
    let sd = Systemd::new(&m.unit_dir, &opts.systemd_run_dir);
    if m.units_enabled && sd.running() {
        let names: Vec<&str> = m.units.iter().map(String::as_str).collect();
        let _ = sd.disable_now(&names);
    }
    for u in &m.units {
        if sd.remove_unit(u)? {
            note(sd.unit_path(u)?.display().to_string(), "removed");
        }
    }
    if !m.units.is_empty() && sd.running() {
        sd.daemon_reload()?;
    }
    let table = NftTable::new(&m.table)?;
    if table.exists()? {
        table.delete()?;
        note(format!("nft table inet {}", m.table), "deleted");
    }
    for g in &m.groups_created {
        if users::group_by_name(g)?.is_some() {
            delete_group(g)?;
            note(format!("group {g}"), "removed (vmgate had created it)");
        }
    }
    for d in m.dirs_created.iter().rev() {
        if std::fs::remove_dir(d).is_ok() {
            note(d.display().to_string(), "removed (empty)");
        }
    }
    files::remove_file(&opts.manifest_path())?;
    Ok(out)
}
