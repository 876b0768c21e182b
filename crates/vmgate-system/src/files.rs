//! Files with an exact owner, group and mode: read them, set them, and write them
//! atomically (temporary file in the same directory, fsync, rename, fsync the directory),
//! so a crash leaves either the old or the new file, never half of one.

use std::fs::{self, File, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Owner, group and permission bits (including setuid/setgid/sticky, `mode & 0o7777`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAttrs {
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Permission bits, `0o7777` at most.
    pub mode: u32,
}

impl FileAttrs {
    /// Owned by root:root with the given mode.
    pub const fn root(mode: u32) -> Self {
        FileAttrs {
            uid: 0,
            gid: 0,
            mode,
        }
    }
}

impl std::fmt::Display for FileAttrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} {:04o}", self.uid, self.gid, self.mode)
    }
}

/// The owner, group and mode of `path` (following symlinks, as chmod and chown do).
pub fn stat(path: &Path) -> Result<FileAttrs> {
    let m = fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
    Ok(FileAttrs {
        uid: m.uid(),
        gid: m.gid(),
        mode: m.mode() & 0o7777,
    })
}

/// Sets owner, group and mode. The mode is set after the owner, because `chown` clears
/// the setuid and setgid bits.
pub fn set_attrs(path: &Path, attrs: FileAttrs) -> Result<()> {
    std::os::unix::fs::chown(path, Some(attrs.uid), Some(attrs.gid))
        .map_err(|e| Error::io("change the owner of", path, e))?;
    fs::set_permissions(path, Permissions::from_mode(attrs.mode))
        .map_err(|e| Error::io("change the mode of", path, e))
}

/// Sets owner, group and mode only when they differ; returns whether anything changed.
pub fn ensure_attrs(path: &Path, attrs: FileAttrs) -> Result<bool> {
    if stat(path)? == attrs {
        return Ok(false);
    }
    set_attrs(path, attrs)?;
    Ok(true)
}

/// Writes `content` to `path` atomically with exactly `attrs`.
///
/// The temporary file is created in the same directory with a name starting with `.`
/// and containing `.`, which `sudo`'s `@includedir` and systemd both ignore; it gets its
/// owner and mode before any content becomes visible under the final name.
pub fn write_atomic(path: &Path, content: &[u8], attrs: FileAttrs) -> Result<()> {
    write_atomic_checked(path, content, attrs, |_| Ok(()))
}

/// Like [`write_atomic`], but runs `check` on the complete temporary file (with its final
/// owner and mode) before the rename; when `check` fails nothing is replaced.
pub fn write_atomic_checked(
    path: &Path,
    content: &[u8],
    attrs: FileAttrs,
    check: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let dir = parent_dir(path);
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{base}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    let tmp_path = tmp.path().to_owned();
    let file = tmp.as_file_mut();
    std::os::unix::fs::fchown(&*file, Some(attrs.uid), Some(attrs.gid))
        .map_err(|e| Error::io("change the owner of", &tmp_path, e))?;
    file.set_permissions(Permissions::from_mode(attrs.mode))
        .map_err(|e| Error::io("change the mode of", &tmp_path, e))?;
    file.write_all(content)
        .map_err(|e| Error::io("write", &tmp_path, e))?;
    file.sync_all()
        .map_err(|e| Error::io("fsync", &tmp_path, e))?;
    check(tmp.path())?;
    tmp.persist(path)
        .map_err(|e| Error::io("rename into place", path, e.error))?;
    sync_dir(dir)
}

/// Removes temporaries that [`write_atomic`] left next to `path` when a process writing
/// it was killed (`.NAME.*.tmp`); returns what it removed. Call it only while holding the
/// apply lock, so no writer is still using one.
pub fn remove_stale_temporaries(path: &Path) -> Result<Vec<std::path::PathBuf>> {
    let dir = parent_dir(path);
    let Some(base) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(Vec::new());
    };
    let prefix = format!(".{base}.");
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            remove_file(&entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

/// Writes the file only when its content or attributes differ; returns whether it did.
pub fn ensure_file(path: &Path, content: &[u8], attrs: FileAttrs) -> Result<bool> {
    if read_optional(path)?.is_some_and(|old| old == content) && stat(path)? == attrs {
        return Ok(false);
    }
    write_atomic(path, content, attrs)?;
    Ok(true)
}

/// The file's bytes, or `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Removes the file and syncs its directory; returns `false` when it was already absent.
pub fn remove_file(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(parent_dir(path))?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Creates `dir` (and parents) when missing, with `mode` on the directories it creates.
pub fn create_dir_all(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| Error::io("create the directory", dir, e))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a rename or unlink in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync the directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_owner_and_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let attrs = FileAttrs {
            uid: 0,
            gid: 0,
            mode: 0o640,
        };
        write_atomic(&path, b"one", attrs).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(stat(&path).unwrap(), attrs);
        assert!(!ensure_file(&path, b"one", attrs).unwrap());
        assert!(ensure_file(&path, b"two", attrs).unwrap());
        assert!(ensure_file(&path, b"two", FileAttrs::root(0o600)).unwrap());
        assert_eq!(stat(&path).unwrap().mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
    }

    #[test]
    fn stale_temporaries_of_a_killed_writer_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vmgate");
        let stale = dir.path().join(".vmgate.Ab12Cd.tmp");
        fs::write(&stale, b"half").unwrap();
        fs::write(dir.path().join("other"), b"keep").unwrap();
        fs::write(dir.path().join(".other.x.tmp"), b"keep").unwrap();
        assert_eq!(remove_stale_temporaries(&path).unwrap(), vec![stale]);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn failed_check_replaces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"old", FileAttrs::root(0o644)).unwrap();
        let err = write_atomic_checked(&path, b"new", FileAttrs::root(0o644), |_| {
            Err(Error::InvalidName {
                kind: "test",
                name: "x".into(),
                reason: "rejected",
            })
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn setuid_survives_owner_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        fs::write(&path, b"#!/bin/sh\n").unwrap();
        let attrs = FileAttrs {
            uid: 0,
            gid: 1,
            mode: 0o2750,
        };
        assert!(ensure_attrs(&path, attrs).unwrap());
        assert_eq!(stat(&path).unwrap(), attrs);
        assert!(!ensure_attrs(&path, attrs).unwrap());
        assert!(remove_file(&path).unwrap());
        assert!(!remove_file(&path).unwrap());
    }
}
