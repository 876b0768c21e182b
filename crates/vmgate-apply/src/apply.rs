//! `vmgate apply`: validate, compare, journal, change step by step, commit; roll back on
//! any failure. See the crate docs for the order of the steps and why it is safe.

use std::path::{Path, PathBuf};

use vmgate_policy::units::Unit;
use vmgate_policy::vv::Secrets;
use vmgate_policy::{Plan, Policy};
use vmgate_system::files::{self, FileAttrs};
use vmgate_system::lock::ApplyLock;
use vmgate_system::nft::NftTable;
use vmgate_system::originals::OriginalStore;
use vmgate_system::sudoers::{self, SudoersDropIn};
use vmgate_system::systemd::Systemd;
use vmgate_system::{statoverride, users};

use crate::error::{Error, Result};
use crate::options::{Options, Step};
use crate::source::{Loaded, Source, load};
use crate::state::{BeforeImage, Journal, Manifest, read_json, write_json};

/// Apply for real, or only say what would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Mode {
    /// Change the system.
    Apply,
    /// Change nothing; report what an apply would change (`--check`).
    Check,
}

/// One thing that differs from the policy (apply: what it changes; verify: drift).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The path, table, group or unit.
    pub item: String,
    /// What differs and what apply does about it.
    pub action: String,
}

impl Change {
    fn new(item: impl std::fmt::Display, action: impl Into<String>) -> Self {
        Self {
            item: item.to_string(),
            action: action.into(),
        }
    }
}

/// What an apply did (or, with [`Mode::Check`], would do).
#[derive(Debug, Clone, serde::Serialize)]
#[must_use]
pub struct ApplyReport {
    /// Apply or check.
    pub mode: Mode,
    /// An interrupted earlier run that was rolled back (or finished) first.
    pub recovered: Option<String>,
    /// Everything changed, in order; empty: the system already matched the policy.
    pub changes: Vec<Change>,
    /// Things the administrator should know (systemd not PID 1, ...).
    pub notes: Vec<String>,
}

impl ApplyReport {
    /// Whether anything was (or would be) changed.
    #[must_use]
    pub fn changed(&self) -> bool {
        !self.changes.is_empty() || self.recovered.is_some()
    }

    /// Human-readable report.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if let Some(r) = &self.recovered {
            s.push_str(&format!("recovered: {r}\n"));
        }
        let verb = match self.mode {
            Mode::Apply => "changed",
            Mode::Check => "would change",
        };
        if self.changes.is_empty() {
            s.push_str("no changes: the system already matches the policy\n");
        } else {
            for c in &self.changes {
                s.push_str(&format!("{verb}: {}: {}\n", c.item, c.action));
            }
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        s
    }
}

/// A command whose owner and mode the policy pins.
#[derive(Debug, Clone)]
pub(crate) struct Pinned {
    pub path: PathBuf,
    pub group: String,
    pub attrs: FileAttrs,
}

/// The state the policy asks for, with every path and attribute resolved.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub table: NftTable,
    pub table_text: String,
    pub groups: Vec<String>,
    /// The special group's name.
    pub group: String,
    pub pinned: Vec<Pinned>,
    pub etc_dir: PathBuf,
    pub consoles_dir: PathBuf,
    pub vv: Vec<(PathBuf, String, FileAttrs)>,
    pub sudoers: SudoersDropIn,
    pub sudoers_text: String,
    pub ruleset_file: PathBuf,
    pub ruleset_text: String,
    pub units: Vec<Unit>,
    pub log_prefix: String,
}

pub(crate) const PINNED_MODE: u32 = 0o750;
pub(crate) const CONSOLES_DIR_ATTRS: FileAttrs = FileAttrs::root(0o755);
pub(crate) const RULESET_ATTRS: FileAttrs = FileAttrs::root(0o644);
const SUDOERS_ATTRS: FileAttrs = sudoers::SUDOERS_ATTRS;

fn read_secret(path: &str, console: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Precondition {
        what: format!("cannot read {path} for console {console}: {e}"),
        fix: "the file must exist and be readable by root".into(),
    })
}

impl Desired {
    pub(crate) fn new(policy: &Policy, plan: &Plan) -> Result<Self> {
        let g = &policy.defaults.group;
        let mut pinned = vec![Pinned {
            path: policy.defaults.viewer.clone().into(),
            group: g.name.clone(),
            attrs: FileAttrs {
                uid: 0,
                gid: g.gid,
                mode: PINNED_MODE,
            },
        }];
        let mut groups = vec![g.name.clone()];
        for p in &policy.pins {
            if !pinned.iter().any(|x| x.path == Path::new(&p.command)) {
                pinned.push(Pinned {
                    path: p.command.clone().into(),
                    group: p.group.name.clone(),
                    attrs: FileAttrs {
                        uid: 0,
                        gid: p.group.gid,
                        mode: PINNED_MODE,
                    },
                });
            }
            if !groups.contains(&p.group.name) {
                groups.push(p.group.name.clone());
            }
        }
        let mut vv = Vec::new();
        for v in &plan.vv_files {
            let ca = v
                .ca_file
                .as_deref()
                .map(|f| read_secret(f, &v.console))
                .transpose()?;
            let password = v
                .password_file
                .as_deref()
                .map(|f| read_secret(f, &v.console).map(|p| p.trim_end().to_string()))
                .transpose()?;
            let text = v.render(Secrets {
                ca: ca.as_deref(),
                password: password.as_deref(),
            });
            vv.push((
                PathBuf::from(&v.path),
                text,
                FileAttrs {
                    uid: 0,
                    gid: g.gid,
                    mode: v.mode,
                },
            ));
        }
        let sudoers_path = PathBuf::from(&plan.sudoers_path);
        let (dir, name) = match (sudoers_path.parent(), sudoers_path.file_name()) {
            (Some(d), Some(n)) => (d.to_path_buf(), n.to_string_lossy().into_owned()),
            _ => {
                return Err(Error::Precondition {
                    what: format!("`{}` is not a file path", plan.sudoers_path),
                    fix: "give the sudoers drop-in as DIR/NAME".into(),
                });
            }
        };
        let ruleset_file = PathBuf::from(&plan.ruleset_path);
        let etc_dir = ruleset_file
            .parent()
            .map_or_else(|| PathBuf::from("/etc/vmgate"), Path::to_path_buf);
        Ok(Self {
            table: NftTable::new(&plan.table)?,
            table_text: plan.ruleset.to_table_text(),
            groups,
            group: g.name.clone(),
            pinned,
            consoles_dir: etc_dir.join("consoles"),
            etc_dir,
            vv,
            sudoers: SudoersDropIn::new(dir, &name)?,
            sudoers_text: plan.sudoers.clone(),
            ruleset_file,
            ruleset_text: plan.nft_text.clone(),
            units: plan.units.clone(),
            log_prefix: policy.defaults.log_prefix.clone(),
        })
    }
}

fn attrs_of(path: &Path) -> Option<FileAttrs> {
    files::stat(path).ok()
}

fn describe(a: Option<FileAttrs>) -> String {
    a.map_or_else(|| "missing".into(), |a| a.to_string())
}

/// A file whose content and attributes must be exactly these.
pub(crate) fn file_change(
    path: &Path,
    text: &str,
    attrs: FileAttrs,
    group: &str,
) -> Result<Option<Change>> {
    let content = files::read_optional(path)?;
    let now = attrs_of(path);
    let want = format!("root:{group} {:04o}", attrs.mode);
    Ok(match content {
        None => Some(Change::new(path.display(), format!("create ({want})"))),
        Some(c) if c != text.as_bytes() => Some(Change::new(
            path.display(),
            format!("rewrite: the content differs ({want})"),
        )),
        Some(_) if now != Some(attrs) => Some(Change::new(
            path.display(),
            format!("set owner and mode {want} (now {})", describe(now)),
        )),
        Some(_) => None,
    })
}

/// Everything that differs from `d`, except the table (the caller decides how to compare
/// that: by listing for apply, by meaning for verify).
pub(crate) fn file_changes(
    d: &Desired,
    missing_groups: &[String],
    old: Option<&Manifest>,
    opts: &Options,
) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    for g in missing_groups {
        out.push(Change::new(
            format!("group {g}"),
            "create as a system group (groupadd --system)",
        ));
    }
    for p in &d.pinned {
        let now = attrs_of(&p.path);
        if now != Some(p.attrs) {
            out.push(Change::new(
                p.path.display(),
                format!(
                    "set owner and mode root:{} {:04o} (now {})",
                    p.group,
                    p.attrs.mode,
                    describe(now)
                ),
            ));
        }
        if opts.statoverride {
            let want = statoverride::StatOverride {
                owner: "root".into(),
                group: p.group.clone(),
                mode: PINNED_MODE,
            };
            if statoverride::get(&p.path)?.as_ref() != Some(&want) {
                out.push(Change::new(
                    p.path.display(),
                    format!(
                        "register root {} {:o} with dpkg-statoverride, so package updates keep it",
                        p.group, PINNED_MODE
                    ),
                ));
            }
        }
    }
    let now = attrs_of(&d.consoles_dir);
    if now != Some(CONSOLES_DIR_ATTRS) {
        out.push(Change::new(
            d.consoles_dir.display(),
            format!(
                "directory with owner and mode root:root 0755 (now {})",
                describe(now)
            ),
        ));
    }
    for (path, text, attrs) in &d.vv {
        out.extend(file_change(path, text, *attrs, &d.group)?);
    }
    out.extend(file_change(
        d.sudoers.path(),
        &d.sudoers_text,
        SUDOERS_ATTRS,
        "root",
    )?);
    out.extend(file_change(
        &d.ruleset_file,
        &d.ruleset_text,
        RULESET_ATTRS,
        "root",
    )?);
    if let Some(m) = old {
        for s in stale(d, m) {
            out.push(s.change());
        }
    }
    Ok(out)
}

/// Something the previous apply installed that the policy no longer has.
#[derive(Debug, Clone)]
pub(crate) enum Stale {
    Vv(PathBuf),
    Pinned(PathBuf),
    Table(String),
    Sudoers(PathBuf),
    RulesetFile(PathBuf),
}

impl Stale {
    fn change(&self) -> Change {
        match self {
            Stale::Vv(p) => Change::new(p.display(), "remove: the console is gone"),
            Stale::Pinned(p) => Change::new(
                p.display(),
                "restore the original owner and mode: no longer pinned",
            ),
            Stale::Table(t) => Change::new(
                format!("nft table inet {t}"),
                "delete: the policy names another table",
            ),
            Stale::Sudoers(p) | Stale::RulesetFile(p) => {
                Change::new(p.display(), "remove: the policy puts it elsewhere")
            }
        }
    }
}

pub(crate) fn stale(d: &Desired, m: &Manifest) -> Vec<Stale> {
    let mut out = Vec::new();
    for v in &m.vv_files {
        if !d.vv.iter().any(|(p, ..)| p == v) && v.exists() {
            out.push(Stale::Vv(v.clone()));
        }
    }
    for p in &m.pinned {
        if !d.pinned.iter().any(|x| &x.path == p) {
            out.push(Stale::Pinned(p.clone()));
        }
    }
    if !m.table.is_empty() && m.table != d.table.name() {
        out.push(Stale::Table(m.table.clone()));
    }
    if m.sudoers != d.sudoers.path() && m.sudoers.exists() {
        out.push(Stale::Sudoers(m.sudoers.clone()));
    }
    if m.ruleset_file != d.ruleset_file && m.ruleset_file.exists() {
        out.push(Stale::RulesetFile(m.ruleset_file.clone()));
    }
    out
}

fn table_change(d: &Desired, old: Option<&Manifest>) -> Result<Option<Change>> {
    let live = d.table.list_text()?;
    let item = format!("nft table inet {}", d.table.name());
    Ok(match (live, old) {
        (None, _) => Some(Change::new(item, "load (one transaction)")),
        (Some(l), Some(m))
            if m.table == d.table.name()
                && m.table_text == d.table_text
                && m.table_listing == l =>
        {
            None
        }
        (Some(_), Some(m)) if m.table == d.table.name() && m.table_text == d.table_text => Some(
            Change::new(item, "replace: the live table was changed by hand"),
        ),
        (Some(_), _) => Some(Change::new(item, "replace (one transaction)")),
    })
}

fn systemd(opts: &Options) -> Systemd {
    Systemd::new(&opts.unit_dir, &opts.systemd_run_dir)
}

/// The units a running systemd enables.
const ENABLED_UNITS: [&str; 4] = [
    "vmgate-ruleset.service",
    "vmgate-reload.timer",
    "vmgate-guard.path",
    "vmgate-guard.timer",
];

fn unit_changes(d: &Desired, opts: &Options, notes: &mut Vec<String>) -> Result<Vec<Change>> {
    let sd = systemd(opts);
    if !sd.running() {
        notes.push(format!(
            "systemd is not PID 1 on this machine ({} does not exist): the units were not installed; load {} at boot and run `vmgate guard --repair` from another scheduler",
            opts.systemd_run_dir.display(),
            d.ruleset_file.display()
        ));
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for u in &d.units {
        if sd.read_unit(&u.name)?.as_deref() != Some(u.text.as_str()) {
            out.push(Change::new(
                sd.unit_path(&u.name)?.display(),
                "install the unit",
            ));
        }
    }
    for u in ENABLED_UNITS {
        if !sd.is_enabled(u)? {
            out.push(Change::new(u, "enable and start"));
        }
    }
    Ok(out)
}

/// Rolls back or finishes what an interrupted run left, when the journal says so. Call
/// with the lock held.
pub(crate) fn recover_locked(opts: &Options) -> Result<Option<String>> {
    let path = opts.journal_path();
    let Some(j) = read_json::<Journal>(&path)? else {
        return Ok(None);
    };
    let msg = match j {
        Journal::Apply(before) => {
            before.restore()?;
            "an interrupted apply was rolled back to the state before it".to_string()
        }
        Journal::Uninstall => {
            crate::uninstall::uninstall_steps(opts)?;
            "an interrupted uninstall was finished".to_string()
        }
    };
    files::remove_file(&path)?;
    Ok(Some(msg))
}

/// Validates, compares and (in [`Mode::Apply`]) changes the system to match the policy.
///
/// # Errors
/// [`Error::Invalid`] (nothing changed), [`Error::Precondition`] (nothing changed),
/// [`Error::RolledBack`] (a step failed; the previous state is back), or another error.
pub fn apply(src: &Source, opts: &Options, mode: Mode) -> Result<ApplyReport> {
    // Validate first: an invalid policy changes nothing, not even a pending recovery.
    let loaded = load(src).map_err(Error::Invalid)?;
    let _lock = ApplyLock::try_acquire(&opts.lock_path)?;
    let mut report = ApplyReport {
        mode,
        recovered: None,
        changes: Vec::new(),
        notes: Vec::new(),
    };
    if mode == Mode::Check {
        if opts.journal_path().exists() {
            report.recovered = Some(format!(
                "an interrupted run left {}: the next apply rolls it back first",
                opts.journal_path().display()
            ));
        }
    } else {
        report.recovered = recover_locked(opts)?;
    }
    // A recovery may have removed the groups this policy needs: check again.
    let loaded = if report.recovered.is_some() {
        load(src).map_err(Error::Invalid)?
    } else {
        loaded
    };
    let desired = Desired::new(&loaded.policy, &loaded.plan)?;
    preconditions(&desired)?;
    let old: Option<Manifest> = read_json(&opts.manifest_path())?;
    let mut changes = file_changes(&desired, &loaded.missing_groups, old.as_ref(), opts)?;
    changes.extend(table_change(&desired, old.as_ref())?);
    changes.extend(unit_changes(&desired, opts, &mut report.notes)?);
    if changes.is_empty() || mode == Mode::Check {
        report.changes = changes;
        return Ok(report);
    }
    let before = before_image(&desired, &loaded, old.as_ref(), opts)?;
    write_json(
        &opts.journal_path(),
        &Journal::Apply(Box::new(before.clone())),
    )?;
    let mut step = Step::Journal;
    let result = opts
        .fire(Step::Journal)
        .map_err(|e| format!("injected failure: {e}"))
        .and_then(|()| {
            run_steps(src, opts, loaded, old.as_ref(), &before, &mut step)
                .map_err(|e| e.to_string())
        });
    match result {
        Ok(()) => {
            files::remove_file(&opts.journal_path())?;
            report.changes = changes;
            Ok(report)
        }
        Err(cause) => match before.restore() {
            Ok(()) => {
                files::remove_file(&opts.journal_path())?;
                Err(Error::RolledBack { step, cause })
            }
            Err(e) => Err(Error::RollbackFailed {
                step,
                cause,
                rollback: e.to_string(),
                journal: opts.journal_path().display().to_string(),
            }),
        },
    }
}

/// Checks everything that can be checked before a change: the commands exist, nft and
/// visudo accept the texts.
fn preconditions(d: &Desired) -> Result<()> {
    for p in &d.pinned {
        if !p.path.is_file() {
            return Err(Error::Precondition {
                what: format!("{} does not exist", p.path.display()),
                fix: "install the program first, or correct the path in the policy".into(),
            });
        }
    }
    if !d.sudoers.path().parent().is_some_and(Path::is_dir) {
        return Err(Error::Precondition {
            what: format!("{} has no directory", d.sudoers.path().display()),
            fix: "sudoers drop-ins go into an existing @includedir, normally /etc/sudoers.d".into(),
        });
    }
    d.table.check(&d.table_text)?;
    sudoers::check_text(&d.sudoers_text)?;
    Ok(())
}

fn before_image(
    d: &Desired,
    loaded: &Loaded,
    old: Option<&Manifest>,
    opts: &Options,
) -> Result<BeforeImage> {
    let mut b = BeforeImage {
        use_statoverride: opts.statoverride,
        absent_groups: loaded.missing_groups.clone(),
        ..BeforeImage::default()
    };
    b.dir(&d.consoles_dir);
    for p in &d.pinned {
        b.attrs(&p.path)?;
        if opts.statoverride {
            b.statoverride(&p.path)?;
        }
    }
    for (p, ..) in &d.vv {
        b.file(p)?;
    }
    b.file(d.sudoers.path())?;
    b.file(&d.ruleset_file)?;
    b.file(&opts.manifest_path())?;
    b.file(&opts.originals_path())?;
    b.table(d.table.name())?;
    let sd = systemd(opts);
    if sd.running() {
        for u in &d.units {
            b.file(&sd.unit_path(&u.name)?)?;
        }
    }
    if let Some(m) = old {
        for s in stale(d, m) {
            match s {
                Stale::Vv(p) | Stale::Sudoers(p) | Stale::RulesetFile(p) => b.file(&p)?,
                Stale::Pinned(p) => {
                    b.attrs(&p)?;
                    if opts.statoverride {
                        b.statoverride(&p)?;
                    }
                }
                Stale::Table(t) => b.table(&t)?,
            }
        }
    }
    Ok(b)
}

fn run_steps(
    src: &Source,
    opts: &Options,
    mut loaded: Loaded,
    old: Option<&Manifest>,
    before: &BeforeImage,
    step: &mut Step,
) -> Result<()> {
    let fire = |s: Step, step: &mut Step| -> Result<()> {
        *step = s;
        opts.fire(s).map_err(|e| Error::Precondition {
            what: format!("injected failure after step {s}: {e}"),
            fix: "this is a test failpoint".into(),
        })
    };

    // Groups first: every later step needs their real gids.
    *step = Step::Groups;
    let mut created = Vec::new();
    for g in &loaded.missing_groups {
        let (_, new) = users::ensure_system_group(g)?;
        if new {
            created.push(g.clone());
        }
    }
    if !loaded.missing_groups.is_empty() {
        loaded = load(src).map_err(Error::Invalid)?;
        if !loaded.missing_groups.is_empty() {
            return Err(Error::Precondition {
                what: format!("groups {:?} still do not resolve", loaded.missing_groups),
                fix: "check /etc/nsswitch.conf".into(),
            });
        }
    }
    let d = Desired::new(&loaded.policy, &loaded.plan)?;
    fire(Step::Groups, step)?;

    *step = Step::Originals;
    let mut store = OriginalStore::open(opts.originals_path())?;
    for p in &d.pinned {
        store.record_current(&p.path)?;
    }
    store.save()?;
    fire(Step::Originals, step)?;

    *step = Step::Modes;
    for p in &d.pinned {
        if opts.statoverride {
            statoverride::set(&p.path, "root", &p.group, PINNED_MODE)?;
        }
        files::ensure_attrs(&p.path, p.attrs)?;
    }
    fire(Step::Modes, step)?;

    *step = Step::ConnectionFiles;
    files::create_dir_all(&d.consoles_dir, 0o755)?;
    files::ensure_attrs(&d.consoles_dir, CONSOLES_DIR_ATTRS)?;
    for (path, text, attrs) in &d.vv {
        files::ensure_file(path, text.as_bytes(), *attrs)?;
    }
    fire(Step::ConnectionFiles, step)?;

    *step = Step::Sudoers;
    d.sudoers.install(&d.sudoers_text)?;
    fire(Step::Sudoers, step)?;

    *step = Step::Table;
    d.table.load(&d.table_text)?;
    let listing = d.table.list_text()?.unwrap_or_default();
    fire(Step::Table, step)?;

    *step = Step::RulesetFile;
    files::ensure_file(&d.ruleset_file, d.ruleset_text.as_bytes(), RULESET_ATTRS)?;
    fire(Step::RulesetFile, step)?;

    *step = Step::Stale;
    if let Some(m) = old {
        for s in stale(&d, m) {
            match s {
                Stale::Vv(p) | Stale::Sudoers(p) | Stale::RulesetFile(p) => {
                    files::remove_file(&p)?;
                }
                Stale::Pinned(p) => {
                    if opts.statoverride {
                        statoverride::remove(&p)?;
                    }
                    if let Some(a) = store.forget(&p) {
                        if p.exists() {
                            files::ensure_attrs(&p, a)?;
                        }
                    }
                    store.save()?;
                }
                Stale::Table(t) => NftTable::new(t)?.delete()?,
            }
        }
    }
    fire(Step::Stale, step)?;

    *step = Step::Units;
    let sd = systemd(opts);
    let mut units = Vec::new();
    if sd.running() {
        for u in &d.units {
            sd.install_unit(&u.name, &u.text)?;
            units.push(u.name.clone());
        }
        sd.daemon_reload()?;
        sd.enable_now(&ENABLED_UNITS)?;
    }
    fire(Step::Units, step)?;

    *step = Step::Manifest;
    let mut groups_created = old.map(|m| m.groups_created.clone()).unwrap_or_default();
    for g in created {
        if !groups_created.contains(&g) {
            groups_created.push(g);
        }
    }
    let mut dirs_created = old.map(|m| m.dirs_created.clone()).unwrap_or_default();
    for dir in &before.absent_dirs {
        if !dirs_created.contains(dir) {
            dirs_created.push(dir.clone());
        }
    }
    let manifest = Manifest {
        version: 1,
        table: d.table.name().to_string(),
        table_text: d.table_text.clone(),
        table_listing: listing,
        sudoers: d.sudoers.path().to_path_buf(),
        etc_dir: d.etc_dir.clone(),
        vv_files: d.vv.iter().map(|(p, ..)| p.clone()).collect(),
        ruleset_file: d.ruleset_file.clone(),
        pinned: d.pinned.iter().map(|p| p.path.clone()).collect(),
        statoverrides: if opts.statoverride {
            d.pinned.iter().map(|p| p.path.clone()).collect()
        } else {
            Vec::new()
        },
        groups_created,
        dirs_created,
        units,
        unit_dir: opts.unit_dir.clone(),
        units_enabled: sd.running(),
        log_prefix: d.log_prefix.clone(),
    };
    write_json(&opts.manifest_path(), &manifest)?;
    fire(Step::Manifest, step)?;
    Ok(())
}
