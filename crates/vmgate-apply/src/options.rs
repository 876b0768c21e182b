//! Where vmgate keeps its state, and the failpoint hook the crash tests use.

use std::path::PathBuf;
use std::sync::Arc;

/// The steps of an apply, in order. A [`Hook`] is called after each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The journal with the before-image is on disk; nothing else changed yet.
    Journal,
    /// The special group and the pin groups exist.
    Groups,
    /// The original owners and modes of the pinned commands are recorded.
    Originals,
    /// The pinned commands are root:GROUP 0750 (and registered with dpkg-statoverride).
    Modes,
    /// The connection files are written.
    ConnectionFiles,
    /// The sudoers drop-in is in place.
    Sudoers,
    /// The nft table is loaded (one transaction).
    Table,
    /// The boot copy of the ruleset is written.
    RulesetFile,
    /// What the previous policy had and this one has not is removed.
    Stale,
    /// The systemd units are installed and enabled (or skipped, when systemd is not PID 1).
    Units,
    /// The manifest of what is installed is written.
    Manifest,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 11] = [
        Step::Journal,
        Step::Groups,
        Step::Originals,
        Step::Modes,
        Step::ConnectionFiles,
        Step::Sudoers,
        Step::Table,
        Step::RulesetFile,
        Step::Stale,
        Step::Units,
        Step::Manifest,
    ];
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self).ok();
        write!(f, "{}", s.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
    }
}

/// Called after each [`Step`]; an `Err` is treated as that step failing (fault injection).
/// Tests also make it kill the process, to prove the journal's recovery.
pub type Hook = Arc<dyn Fn(Step) -> Result<(), String> + Send + Sync>;

/// Where vmgate keeps its own state, the units, and the test hook.
#[derive(Clone)]
pub struct Options {
    /// vmgate's state: the manifest, the journal, the recorded originals.
    pub state_dir: PathBuf,
    /// The apply lock (one vmgate acting at a time).
    pub lock_path: PathBuf,
    /// Where unit files go.
    pub unit_dir: PathBuf,
    /// The directory that exists when systemd is PID 1.
    pub systemd_run_dir: PathBuf,
    /// Register pinned modes with `dpkg-statoverride` (default: when the tool exists).
    pub statoverride: bool,
    /// Failpoint: called after each step. Only tests set it.
    pub hook: Option<Hook>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("state_dir", &self.state_dir)
            .field("lock_path", &self.lock_path)
            .field("unit_dir", &self.unit_dir)
            .field("systemd_run_dir", &self.systemd_run_dir)
            .field("statoverride", &self.statoverride)
            .field("hook", &self.hook.as_ref().map(|_| "set"))
            .finish()
    }
}

impl Default for Options {
    /// The real locations.
    fn default() -> Self {
        Self {
            state_dir: "/var/lib/vmgate".into(),
            lock_path: vmgate_system::lock::DEFAULT_LOCK_PATH.into(),
            unit_dir: vmgate_system::systemd::UNIT_DIR.into(),
            systemd_run_dir: vmgate_system::systemd::SYSTEMD_RUN_DIR.into(),
            statoverride: vmgate_system::statoverride::available(),
            hook: None,
        }
    }
}

impl Options {
    /// Everything under `root` (tests): state, lock and units in private directories,
    /// systemd detected through a directory that does not exist, no statoverride.
    #[must_use]
    pub fn under(root: &std::path::Path) -> Self {
        Self {
            state_dir: root.join("state"),
            lock_path: root.join("run/apply.lock"),
            unit_dir: root.join("units"),
            systemd_run_dir: root.join("no-systemd"),
            statoverride: false,
            hook: None,
        }
    }

    pub(crate) fn manifest_path(&self) -> PathBuf {
        self.state_dir.join("installed.json")
    }

    pub(crate) fn journal_path(&self) -> PathBuf {
        self.state_dir.join("journal.json")
    }

    pub(crate) fn originals_path(&self) -> PathBuf {
        self.state_dir.join("originals.json")
    }

    pub(crate) fn fire(&self, step: Step) -> Result<(), String> {
        match &self.hook {
            Some(h) => h(step),
            None => Ok(()),
        }
    }
}
