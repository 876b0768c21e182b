//! A sudoers drop-in, installed so that sudo never sees a broken or half-written file:
//! the content goes to a temporary file whose name contains a `.` (sudoers(5): files in
//! an `@includedir` whose names end in `~` or contain a `.` are skipped), gets mode 0440
//! root:root, is fsynced, checked with `visudo -cf`, and only then renamed into place.

use std::path::{Path, PathBuf};

use crate::cmd::Cmd;
use crate::error::{Error, Result};
use crate::files::{self, FileAttrs};

/// The system's drop-in directory.
pub const SUDOERS_D: &str = "/etc/sudoers.d";

/// Owner, group and mode sudo expects of a sudoers file.
pub const SUDOERS_ATTRS: FileAttrs = FileAttrs::root(0o440);

/// One drop-in file, `DIR/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SudoersDropIn {
    path: PathBuf,
}

impl SudoersDropIn {
    /// The drop-in `NAME` in `dir` (normally [`SUDOERS_D`]).
    ///
    /// The name must be one that sudo reads: no `.`, not ending in `~`, no `/`.
    pub fn new(dir: impl AsRef<Path>, name: &str) -> Result<Self> {
        let reason = if name.is_empty() {
            Some("the name is empty")
        } else if name.contains('.') {
            Some("sudo skips drop-ins whose name contains '.'; use e.g. 'vmgate'")
        } else if name.ends_with('~') {
            Some("sudo skips drop-ins whose name ends in '~'")
        } else if name.contains('/') || name.chars().any(char::is_control) {
            Some("a drop-in name is a plain file name")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Error::InvalidName {
                kind: "sudoers drop-in",
                name: name.to_owned(),
                reason,
            });
        }
        Ok(SudoersDropIn {
            path: dir.as_ref().join(name),
        })
    }

    /// Where the drop-in lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Installs `content` unless the same content is already in place with 0440 root:root;
    /// returns whether anything changed. When visudo rejects the text nothing is replaced
    /// and the error carries visudo's message.
    pub fn install(&self, content: &str) -> Result<bool> {
        if self.read()?.as_deref() == Some(content) && files::stat(&self.path)? == SUDOERS_ATTRS {
            return Ok(false);
        }
        files::write_atomic_checked(&self.path, content.as_bytes(), SUDOERS_ATTRS, |tmp| {
            visudo_check(tmp).map_err(|e| match e {
                Error::Tool { stderr, .. } => Error::SudoersRejected {
                    path: self.path.clone(),
                    stderr,
                },
                other => other,
            })
        })?;
        Ok(true)
    }

    /// The installed content, or `None` when there is no drop-in.
    pub fn read(&self) -> Result<Option<String>> {
        Ok(files::read_optional(&self.path)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Removes the drop-in; returns `false` when it was not there.
    pub fn remove(&self) -> Result<bool> {
        files::remove_file(&self.path)
    }
}

/// `visudo -cf PATH`: syntax, owner and mode of one sudoers file.
pub fn visudo_check(path: &Path) -> Result<()> {
    Cmd::new("visudo").arg("-cf").arg(path).run(None).map(drop)
}

/// Checks sudoers text without installing it (in a private temporary directory).
pub fn check_text(content: &str) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("create", std::env::temp_dir(), e))?;
    let path = dir.path().join("check");
    files::write_atomic(&path, content.as_bytes(), SUDOERS_ATTRS)?;
    visudo_check(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_sudo_would_skip_are_refused() {
        for bad in ["", "vmgate.conf", "vmgate~", "a/b"] {
            assert!(SudoersDropIn::new(SUDOERS_D, bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            SudoersDropIn::new(SUDOERS_D, "vmgate").unwrap().path(),
            Path::new("/etc/sudoers.d/vmgate")
        );
    }
}
