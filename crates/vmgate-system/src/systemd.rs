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

/// Checks unit texts with `systemd-analyze verify` (works without systemd as PID 1):
/// they are written under their names into a private directory and verified together, so
/// a `.path` unit finds its service. Any complaint is an error carrying systemd's words.
/// With `ignore_missing_commands`, complaints that an `ExecStart=` binary does not exist
/// are ignored (tests verify units for a vmgate that is not installed).
pub fn verify_units(units: &[(&str, &str)], ignore_missing_commands: bool) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("create", std::env::temp_dir(), e))?;
    let sd = Systemd::new(dir.path(), SYSTEMD_RUN_DIR);
    let mut cmd = Cmd::new("systemd-analyze").arg("verify");
    for (name, text) in units {
        let path = sd.unit_path(name)?;
        files::write_atomic(&path, text.as_bytes(), FileAttrs::root(0o644))?;
        cmd = cmd.arg(path);
    }
    let out = cmd.output(None)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !(ignore_missing_commands && l.contains("is not executable: No such file or directory"))
        })
        .collect();
    if complaints.is_empty() && (out.status.success() || ignore_missing_commands) {
        Ok(())
    } else {
        Err(Error::Tool {
            command: "systemd-analyze verify".into(),
            status: out.status.to_string(),
            stderr: complaints.join("\n"),
        })
    }
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
    fn units_are_verified_by_systemd_analyze() {
        let service = "[Unit]\nDescription=guard\n[Service]\nType=oneshot\nExecStart=/usr/bin/vmgate-not-installed guard\n";
        let path = "[Unit]\nDescription=watch\n[Path]\nPathChanged=/etc/hostname\nUnit=vmgt-guard.service\n[Install]\nWantedBy=multi-user.target\n";
        verify_units(
            &[("vmgt-guard.service", service), ("vmgt-guard.path", path)],
            true,
        )
        .unwrap();
        let err = verify_units(&[("vmgt-guard.service", service)], false).unwrap_err();
        assert!(err.to_string().contains("not executable"), "{err}");
        let bad = "[Service]\nType=bogus\nExecStart=/bin/true\n";
        let err = verify_units(&[("vmgt-bad.service", bad)], true).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn pid1_detection_matches_the_run_directory() {
        assert_eq!(is_pid1(), Path::new("/run/systemd/system").is_dir());
    }
}
