//! The recorded original owner, group and mode of every file vmgate changes, kept in a
//! small JSON state file, so `uninstall` can put each one back exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::files::{self, FileAttrs};

/// Where the real store lives.
pub const DEFAULT_ORIGINALS_PATH: &str = "/var/lib/vmgate/originals.json";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    files: BTreeMap<PathBuf, FileAttrs>,
}

/// Originals recorded so far. Changes are in memory until [`OriginalStore::save`].
///
/// **Invariant:** the first recorded value wins: recording a file again (on the next
/// apply, when it already carries our mode) never overwrites the true original.
#[derive(Debug)]
pub struct OriginalStore {
    path: PathBuf,
    files: BTreeMap<PathBuf, FileAttrs>,
}

impl OriginalStore {
    /// Opens the store at `path`; a missing file is an empty store.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let files = match files::read_optional(&path)? {
            None => BTreeMap::new(),
            Some(bytes) => {
                let state: StateFile =
                    serde_json::from_slice(&bytes).map_err(|source| Error::BadState {
                        path: path.clone(),
                        source,
                    })?;
                state.files
            }
        };
        Ok(OriginalStore { path, files })
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `attrs` as the original of `file` unless one is recorded already;
    /// returns whether it was recorded now.
    pub fn record(&mut self, file: &Path, attrs: FileAttrs) -> bool {
        if self.files.contains_key(file) {
            return false;
        }
        self.files.insert(file.to_owned(), attrs);
        true
    }

    /// Records the file's current owner, group and mode (see [`OriginalStore::record`]).
    pub fn record_current(&mut self, file: &Path) -> Result<bool> {
        let attrs = files::stat(file)?;
        Ok(self.record(file, attrs))
    }

    /// The recorded original of `file`.
    pub fn get(&self, file: &Path) -> Option<FileAttrs> {
        self.files.get(file).copied()
    }

    /// Every recorded file and its original, in path order.
    pub fn entries(&self) -> impl Iterator<Item = (&Path, FileAttrs)> {
        self.files.iter().map(|(p, a)| (p.as_path(), *a))
    }

    /// Forgets `file` (after its original was restored, or when it no longer exists).
    pub fn forget(&mut self, file: &Path) -> Option<FileAttrs> {
        self.files.remove(file)
    }

    /// Writes the store atomically (0600 root:root), creating its directory when missing.
    pub fn save(&self) -> Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::create_dir_all(dir, 0o755)?;
        }
        let state = StateFile {
            version: 1,
            files: self.files.clone(),
        };
        let mut text =
            serde_json::to_string_pretty(&state).expect("a map of paths to numbers serialises");
        text.push('\n');
        files::write_atomic(&self.path, text.as_bytes(), FileAttrs::root(0o600))
    }

    /// Restores every recorded original that still exists, forgets them all and saves;
    /// returns the files whose attributes were changed back.
    pub fn restore_all(&mut self) -> Result<Vec<PathBuf>> {
        let mut restored = Vec::new();
        for (file, attrs) in self.files.clone() {
            if file.exists() && files::ensure_attrs(&file, attrs)? {
                restored.push(file.clone());
            }
            self.files.remove(&file);
            // Saved after each file so a crash half-way restores the rest next time.
            self.save()?;
        }
        Ok(restored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_record_wins_and_restore_puts_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state/originals.json");
        let file = dir.path().join("viewer");
        std::fs::write(&file, b"x").unwrap();
        files::set_attrs(&file, FileAttrs::root(0o755)).unwrap();

        let mut store = OriginalStore::open(&state).unwrap();
        assert!(store.record_current(&file).unwrap());
        store.save().unwrap();
        files::set_attrs(
            &file,
            FileAttrs {
                uid: 0,
                gid: 1,
                mode: 0o750,
            },
        )
        .unwrap();

        let mut store = OriginalStore::open(&state).unwrap();
        assert!(
            !store.record_current(&file).unwrap(),
            "second apply must not overwrite the original"
        );
        assert_eq!(store.get(&file), Some(FileAttrs::root(0o755)));
        assert_eq!(store.restore_all().unwrap(), vec![file.clone()]);
        assert_eq!(files::stat(&file).unwrap(), FileAttrs::root(0o755));
        assert_eq!(OriginalStore::open(&state).unwrap().entries().count(), 0);
        assert_eq!(files::stat(&state).unwrap().mode, 0o600);
    }

    #[test]
    fn a_broken_state_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("originals.json");
        std::fs::write(&state, b"{\"version\":1,\"files\":{},\"extra\":1}").unwrap();
        let err = OriginalStore::open(&state).unwrap_err().to_string();
        assert!(
            err.contains("originals.json") && err.contains("extra"),
            "{err}"
        );
    }
}
