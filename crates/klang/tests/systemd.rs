//! The shipped systemd user unit passes `systemd-analyze verify` (the real tool), with its
//! `ExecStart` pointed at the klang binary just built.

use std::process::Command;

const UNIT: &str = include_str!("../dist/klang.service");

#[test]
fn the_user_unit_verifies() {
    assert!(UNIT.contains("ExecStart=/usr/bin/klang run\n"));
    assert!(UNIT.contains("After=pipewire.service"));
    assert!(UNIT.contains("Restart=on-failure"));
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("klang.service");
    let text = UNIT.replace(
        "ExecStart=/usr/bin/klang run",
        &format!("ExecStart={} run", env!("CARGO_BIN_EXE_klang")),
    );
    std::fs::write(&unit, text).unwrap();
    // System-manager mode: `--user` needs a running user manager, which CI lacks; the
    // unit's syntax and references are checked the same way.
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian package systemd) is installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        !stderr.contains("klang.service"),
        "systemd-analyze warns about the unit:\n{stderr}"
    );
}
