//! systemd units: installing the files works everywhere; reloading and enabling needs
//! systemd as PID 1, and when it is not we say so plainly instead of pretending.

use std::path::{Path, PathBuf};

use crate::cmd::Cmd;
use crate::error::{Error, Result};
use crate::files::{self, FileAttrs};

/// The directory that exists exactly when systemd is the running init (`sd_booted`).
pub const SYSTEMD_RUN_DIR: &str = "/run/systemd/system";

/// Where administrators' unit files go.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// Whether systemd is PID 1 on this machine.
pub fn is_pid1() -> bool {
    Path::new(SYSTEMD_RUN_DIR).is_dir()
}

/// Unit files in one directory, and the `systemctl` calls that act on them.
#[derive(Debug, Clone)]
pub struct Systemd {
    unit_dir: PathBuf,
    run_dir: PathBuf,
}

impl Default for Systemd {
    fn default() -> Self {
        Systemd {
            unit_dir: UNIT_DIR.into(),
            run_dir: SYSTEMD_RUN_DIR.into(),
        }
    }
}

impl Systemd {
    /// Units in `unit_dir` (tests use a temporary directory), detecting systemd through
    /// `run_dir` (normally [`SYSTEMD_RUN_DIR`]).
    pub fn new(unit_dir: impl Into<PathBuf>, run_dir: impl Into<PathBuf>) -> Self {
        Systemd {
            unit_dir: unit_dir.into(),
            run_dir: run_dir.into(),
        }
    }

    /// Whether systemd is running as init, by this instance's `run_dir`.
    pub fn running(&self) -> bool {
        self.run_dir.is_dir()
    }

    fn require_running(&self) -> Result<()> {
        if self.running() {
            Ok(())
        } else {
            Err(Error::SystemdNotRunning {
                run_dir: self.run_dir.clone(),
            })
        }
    }

    /// The path of unit `name`.
    pub fn unit_path(&self, name: &str) -> Result<PathBuf> {
        let valid_suffix = [".service", ".path", ".timer", ".socket", ".target"]
            .iter()
            .any(|s| name.len() > s.len() && name.ends_with(s));
        if !valid_suffix || name.contains('/') || name.starts_with('.') {
            return Err(Error::InvalidName {
                kind: "systemd unit",
                name: name.to_owned(),
                reason: "use NAME.service, .path, .timer, .socket or .target, without '/'",
            });
        }
        Ok(self.unit_dir.join(name))
    }

    /// Writes the unit file (0644 root:root) unless identical; returns whether it changed.
    pub fn install_unit(&self, name: &str, content: &str) -> Result<bool> {
        files::ensure_file(
            &self.unit_path(name)?,
            content.as_bytes(),
            FileAttrs::root(0o644),
        )
    }

    /// The installed unit's text, or `None`.
    pub fn read_unit(&self, name: &str) -> Result<Option<String>> {
        Ok(files::read_optional(&self.unit_path(name)?)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Removes the unit file; returns `false` when it was absent.
    pub fn remove_unit(&self, name: &str) -> Result<bool> {
        files::remove_file(&self.unit_path(name)?)
    }

    /// `systemctl daemon-reload`, or [`Error::SystemdNotRunning`].
    pub fn daemon_reload(&self) -> Result<()> {
        self.require_running()?;
        Cmd::new("systemctl")
            .arg("daemon-reload")
            .run(None)
            .map(drop)
    }

    /// `systemctl enable --now UNITS`, or [`Error::SystemdNotRunning`].
    pub fn enable_now(&self, units: &[&str]) -> Result<()> {
        self.require_running()?;
        Cmd::new("systemctl")
            .args(["enable", "--now"])
            .args(units)
            .run(None)
            .map(drop)
    }

    /// `systemctl disable --now UNITS`, or [`Error::SystemdNotRunning`].
    pub fn disable_now(&self, units: &[&str]) -> Result<()> {
        self.require_running()?;
        Cmd::new("systemctl")
            .args(["disable", "--now"])
            .args(units)
            .run(None)
            .map(drop)
    }

    /// `systemctl is-enabled UNIT` says "enabled", or [`Error::SystemdNotRunning`].
    pub fn is_enabled(&self, unit: &str) -> Result<bool> {
        self.require_running()?;
        let out = Cmd::new("systemctl")
            .args(["is-enabled", unit])
            .output(None)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim() == "enabled")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_install_and_enabling_reports_missing_systemd() {
        let dir = tempfile::tempdir().unwrap();
        let sd = Systemd::new(dir.path(), dir.path().join("no-systemd-here"));
        assert!(
            sd.install_unit("vmgate-guard.service", "[Service]\nType=oneshot\n")
                .unwrap()
        );
        assert!(
            !sd.install_unit("vmgate-guard.service", "[Service]\nType=oneshot\n")
                .unwrap()
        );
        assert_eq!(
            files::stat(&dir.path().join("vmgate-guard.service"))
                .unwrap()
                .mode,
            0o644
        );
        assert!(!sd.running());
        let err = sd.enable_now(&["vmgate-guard.service"]).unwrap_err();
        assert!(matches!(err, Error::SystemdNotRunning { .. }));
        assert!(err.to_string().contains("systemd is not PID 1"), "{err}");
        assert!(sd.remove_unit("vmgate-guard.service").unwrap());
        assert!(sd.unit_path("../x.service").is_err());
        assert!(sd.unit_path("x.conf").is_err());
    }

    #[test]
    fn pid1_detection_matches_the_run_directory() {
        assert_eq!(is_pid1(), Path::new("/run/systemd/system").is_dir());
    }
}
