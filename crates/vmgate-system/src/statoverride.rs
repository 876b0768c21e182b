//! Debian's `dpkg-statoverride`: registering the viewer's owner and mode with dpkg, so a
//! package upgrade that replaces the binary keeps them. It works on any path, packaged
//! or not.

use std::path::Path;

use crate::cmd::{self, Cmd};
use crate::error::Result;

/// One registered override, as `dpkg-statoverride --list` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatOverride {
    /// Owner name (or `#uid`).
    pub owner: String,
    /// Group name (or `#gid`).
    pub group: String,
    /// Permission bits.
    pub mode: u32,
}

/// Whether this is a dpkg system (the tool is on `PATH`).
pub fn available() -> bool {
    cmd::on_path("dpkg-statoverride")
}

/// The override registered for `path`, if any.
pub fn get(path: &Path) -> Result<Option<StatOverride>> {
    let c = Cmd::new("dpkg-statoverride").arg("--list").arg(path);
    let out = c.output(None)?;
    // Exit status 1 with no output means "no override for this path".
    if out.status.code() == Some(1) && out.stdout.is_empty() {
        return Ok(None);
    }
    if !out.status.success() {
        return Err(c.failed(&out));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(parse_line))
}

/// `OWNER GROUP MODE PATH` (the path may contain spaces; it is the rest of the line).
fn parse_line(line: &str) -> Option<StatOverride> {
    let mut it = line.splitn(4, ' ');
    let owner = it.next()?.to_owned();
    let group = it.next()?.to_owned();
    let mode = u32::from_str_radix(it.next()?, 8).ok()?;
    it.next()?;
    Some(StatOverride { owner, group, mode })
}

/// Registers `owner group mode` for `path` and applies it at once (`--update --add`).
/// An existing different override is replaced; an equal one is left alone. Returns
/// whether the registration changed.
pub fn set(path: &Path, owner: &str, group: &str, mode: u32) -> Result<bool> {
    let wanted = StatOverride {
        owner: owner.to_owned(),
        group: group.to_owned(),
        mode,
    };
    match get(path)? {
        Some(existing) if existing == wanted => return Ok(false),
        Some(_) => {
            remove(path)?;
        }
        None => {}
    }
    run_waiting_for_lock(
        &Cmd::new("dpkg-statoverride")
            .args(["--update", "--add", owner, group, &format!("{mode:o}")])
            .arg(path),
    )?;
    Ok(true)
}

/// Removes the override for `path` (the file's owner and mode are left as they are);
/// returns `false` when there was none.
pub fn remove(path: &Path) -> Result<bool> {
    if get(path)?.is_none() {
        return Ok(false);
    }
    run_waiting_for_lock(&Cmd::new("dpkg-statoverride").arg("--remove").arg(path))?;
    Ok(true)
}

/// Runs a dpkg tool, retrying for up to a minute while dpkg's database lock is held by
/// another process (an upgrade running at the same time).
fn run_waiting_for_lock(cmd: &Cmd) -> Result<()> {
    let mut tries = 0;
    loop {
        match cmd.run(None) {
            Err(crate::Error::Tool { stderr, .. }) if stderr.contains("lock") && tries < 120 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            other => return other.map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines_parse() {
        assert_eq!(
            parse_line("root spicegrp 750 /usr/bin/remote viewer"),
            Some(StatOverride {
                owner: "root".into(),
                group: "spicegrp".into(),
                mode: 0o750
            })
        );
        assert_eq!(parse_line("garbage"), None);
    }
}
