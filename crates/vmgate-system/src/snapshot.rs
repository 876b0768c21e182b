//! The affected state of the machine, captured before a change so that a failed apply can
//! be rolled back and a test can show that "nothing changed" or "uninstall restored
//! everything" by comparing two captures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::files::{self, FileAttrs};
use crate::nft::NftTable;

/// One file as it was: absent, or its attributes and (when captured) its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// The file did not exist.
    Absent,
    /// The file existed with these attributes.
    Present {
        /// Owner, group and mode.
        attrs: FileAttrs,
        /// The content, when it was captured (not for large binaries whose content we
        /// never change, only their mode).
        content: Option<Vec<u8>>,
    },
}

/// Files and nft tables as they were at capture time. Two snapshots compare equal exactly
/// when every captured file and table is the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    files: BTreeMap<PathBuf, FileState>,
    tables: Vec<(NftTable, Option<String>)>,
}

impl Snapshot {
    /// An empty snapshot; add what the change will touch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Captures a file's attributes and content (or its absence).
    pub fn file(&mut self, path: &Path) -> Result<&mut Self> {
        self.capture(path, true)
    }

    /// Captures a file's attributes only (or its absence), e.g. the viewer binary.
    pub fn attrs(&mut self, path: &Path) -> Result<&mut Self> {
        self.capture(path, false)
    }

    fn capture(&mut self, path: &Path, with_content: bool) -> Result<&mut Self> {
        let state = match files::read_optional(path)? {
            None => FileState::Absent,
            Some(bytes) => FileState::Present {
                attrs: files::stat(path)?,
                content: with_content.then_some(bytes),
            },
        };
        self.files.insert(path.to_owned(), state);
        Ok(self)
    }

    /// Captures a table's ruleset text (or its absence).
    pub fn table(&mut self, table: &NftTable) -> Result<&mut Self> {
        let text = table.list_text()?;
        self.tables.retain(|(t, _)| t != table);
        self.tables.push((table.clone(), text));
        Ok(self)
    }

    /// The captured state of `path`, if it was captured.
    pub fn file_state(&self, path: &Path) -> Option<&FileState> {
        self.files.get(path)
    }

    /// Captures the same files (same content mode) and tables again, now.
    pub fn recapture(&self) -> Result<Snapshot> {
        let mut now = Snapshot::new();
        for (path, state) in &self.files {
            let with_content = matches!(
                state,
                FileState::Present {
                    content: Some(_),
                    ..
                } | FileState::Absent
            );
            now.capture(path, with_content)?;
        }
        for (table, _) in &self.tables {
            now.table(table)?;
        }
        Ok(now)
    }

    /// Human-readable differences between `self` (before) and `other` (after): one line
    /// per file or table that differs. Empty when they are equal.
    pub fn diff(&self, other: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (path, before) in &self.files {
            let after = other.files.get(path);
            if after != Some(before) {
                out.push(format!(
                    "{}: {} -> {}",
                    path.display(),
                    describe(Some(before)),
                    describe(after)
                ));
            }
        }
        for (path, after) in &other.files {
            if !self.files.contains_key(path) {
                out.push(format!(
                    "{}: not captured -> {}",
                    path.display(),
                    describe(Some(after))
                ));
            }
        }
        for (table, before) in &self.tables {
            let after = other
                .tables
                .iter()
                .find(|(t, _)| t == table)
                .map(|(_, s)| s);
            if after != Some(before) {
                out.push(format!("nft table inet {}: ruleset changed", table.name()));
            }
        }
        out
    }

    /// Puts every captured file and table back as it was: files with content are
    /// rewritten atomically (or removed when they were absent), attribute-only files get
    /// their attributes back, tables are reloaded from their text (or deleted).
    pub fn restore(&self) -> Result<()> {
        for (path, state) in &self.files {
            match state {
                FileState::Absent => {
                    files::remove_file(path)?;
                }
                FileState::Present {
                    attrs,
                    content: Some(bytes),
                } => {
                    files::ensure_file(path, bytes, *attrs)?;
                }
                FileState::Present {
                    attrs,
                    content: None,
                } => {
                    if path.exists() {
                        files::ensure_attrs(path, *attrs)?;
                    }
                }
            }
        }
        for (table, text) in &self.tables {
            match text {
                Some(text) => table.load(text)?,
                None => table.delete()?,
            }
        }
        Ok(())
    }
}

fn describe(state: Option<&FileState>) -> String {
    match state {
        None => "not captured".into(),
        Some(FileState::Absent) => "absent".into(),
        Some(FileState::Present { attrs, content }) => match content {
            Some(c) => format!("{attrs}, {} bytes", c.len()),
            None => attrs.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_undoes_writes_creations_and_mode_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, created, bin) = (
            dir.path().join("kept"),
            dir.path().join("new"),
            dir.path().join("bin"),
        );
        files::write_atomic(&kept, b"old", FileAttrs::root(0o644)).unwrap();
        files::write_atomic(&bin, b"ELF", FileAttrs::root(0o755)).unwrap();
        let mut before = Snapshot::new();
        before
            .file(&kept)
            .unwrap()
            .file(&created)
            .unwrap()
            .attrs(&bin)
            .unwrap();
        assert!(before.diff(&before.recapture().unwrap()).is_empty());

        files::write_atomic(&kept, b"new", FileAttrs::root(0o600)).unwrap();
        files::write_atomic(&created, b"x", FileAttrs::root(0o644)).unwrap();
        files::set_attrs(
            &bin,
            FileAttrs {
                uid: 0,
                gid: 1,
                mode: 0o750,
            },
        )
        .unwrap();
        let diff = before.diff(&before.recapture().unwrap());
        assert_eq!(diff.len(), 3, "{diff:?}");
        assert!(
            diff.iter()
                .any(|d| d.contains("new: absent -> 0:0 0644, 1 bytes")),
            "{diff:?}"
        );

        before.restore().unwrap();
        assert_eq!(before.recapture().unwrap(), before);
        assert!(!created.exists());
    }
}
