//! One apply at a time: an exclusive `flock` on a lock file, released when the
//! [`ApplyLock`] is dropped or the process dies (even by `kill -9`).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};
use crate::files;

/// Where the real lock lives.
pub const DEFAULT_LOCK_PATH: &str = "/run/vmgate/apply.lock";

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct ApplyLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl ApplyLock {
    /// Takes the lock or fails at once with [`Error::Locked`] when another process has it.
    pub fn try_acquire(path: impl AsRef<Path>) -> Result<Self> {
        Self::take(path.as_ref(), FlockArg::LockExclusiveNonblock)
    }

    /// Waits until the lock is free, then takes it.
    pub fn acquire(path: impl AsRef<Path>) -> Result<Self> {
        Self::take(path.as_ref(), FlockArg::LockExclusive)
    }

    fn take(path: &Path, arg: FlockArg) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::create_dir_all(dir, 0o755)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::io("open the lock file", path, e))?;
        match Flock::lock(file, arg) {
            Ok(lock) => Ok(ApplyLock {
                _lock: lock,
                path: path.to_owned(),
            }),
            Err((_, Errno::EWOULDBLOCK)) => Err(Error::Locked {
                path: path.to_owned(),
            }),
            Err((_, source)) => Err(Error::Sys {
                what: format!("locking {}", path.display()),
                source,
            }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/apply.lock");
        let first = ApplyLock::try_acquire(&path).unwrap();
        // flock locks belong to the open file description, so a second open in the
        // same process conflicts just as another process would.
        assert!(matches!(
            ApplyLock::try_acquire(&path),
            Err(Error::Locked { .. })
        ));
        drop(first);
        let _again = ApplyLock::try_acquire(&path).unwrap();
    }
}
