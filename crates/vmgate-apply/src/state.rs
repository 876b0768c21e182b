//! vmgate's own state on disk: the manifest of what is installed, and the journal of an
//! apply or uninstall in progress with the before-image it rolls back to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use vmgate_system::files::{self, FileAttrs};
use vmgate_system::nft::NftTable;
use vmgate_system::statoverride;

use crate::error::{Error, Result};

/// What vmgate installed, so that uninstall, the next apply and verify know it without
/// the policy that produced it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// nft table (family inet).
    pub table: String,
    /// The table text loaded last.
    pub table_text: String,
    /// `nft list table` right after loading it: a later listing that differs means
    /// someone changed the table.
    pub table_listing: String,
    /// The sudoers drop-in.
    pub sudoers: PathBuf,
    /// vmgate's directory under /etc.
    pub etc_dir: PathBuf,
    /// The connection files.
    pub vv_files: Vec<PathBuf>,
    /// The boot copy of the ruleset.
    pub ruleset_file: PathBuf,
    /// Commands whose owner and mode vmgate set.
    pub pinned: Vec<PathBuf>,
    /// Paths registered with dpkg-statoverride.
    pub statoverrides: Vec<PathBuf>,
    /// Groups vmgate created (removed again by uninstall).
    pub groups_created: Vec<String>,
    /// Directories vmgate created (removed by uninstall when empty), deepest last.
    pub dirs_created: Vec<PathBuf>,
    /// Unit files installed, in `unit_dir`.
    pub units: Vec<String>,
    /// Where the units are.
    pub unit_dir: PathBuf,
    /// Whether they were enabled.
    pub units_enabled: bool,
    /// The kernel log prefix of denials.
    pub log_prefix: String,
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match files::read_optional(path)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::BadState {
                path: path.display().to_string(),
                cause: e.to_string(),
            }),
    }
}

pub(crate) fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    if let Some(d) = path.parent() {
        files::create_dir_all(d, 0o755)?;
    }
    let mut text = serde_json::to_string_pretty(v).expect("state serialises");
    text.push('\n');
    files::write_atomic(path, text.as_bytes(), FileAttrs::root(0o600))?;
    Ok(())
}

/// A file as it was before a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum SavedFile {
    /// It did not exist.
    Absent,
    /// Only its attributes matter (a binary whose content we never change).
    Attrs(FileAttrs),
    /// Attributes and text.
    File {
        /// Owner, group, mode.
        attrs: FileAttrs,
        /// Content.
        content: String,
    },
}

/// A statoverride registration as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedOverride {
    /// Owner.
    pub owner: String,
    /// Group.
    pub group: String,
    /// Mode.
    pub mode: u32,
}

/// Everything an apply may touch, as it was before: what a rollback restores.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeforeImage {
    /// Files (with content or attributes only).
    pub files: BTreeMap<PathBuf, SavedFile>,
    /// Directories that did not exist (removed on rollback when empty), outermost first.
    pub absent_dirs: Vec<PathBuf>,
    /// Tables by name: their listing, `None` when absent.
    pub tables: BTreeMap<String, Option<String>>,
    /// Statoverride registrations of the pinned paths (`None`: none).
    pub overrides: BTreeMap<PathBuf, Option<SavedOverride>>,
    /// Whether statoverride is in use.
    pub use_statoverride: bool,
    /// Groups that did not exist.
    pub absent_groups: Vec<String>,
}

impl BeforeImage {
    /// Records a file with its content.
    pub fn file(&mut self, path: &Path) -> Result<()> {
        let state = match files::read_optional(path)? {
            None => SavedFile::Absent,
            Some(b) => SavedFile::File {
                attrs: files::stat(path)?,
                content: String::from_utf8(b).map_err(|_| Error::Precondition {
                    what: format!("{} is not text", path.display()),
                    fix: "vmgate only writes text files there; move the file away".into(),
                })?,
            },
        };
        self.files.entry(path.to_owned()).or_insert(state);
        Ok(())
    }

    /// Records a file's attributes only.
    pub fn attrs(&mut self, path: &Path) -> Result<()> {
        let state = if path.exists() {
            SavedFile::Attrs(files::stat(path)?)
        } else {
            SavedFile::Absent
        };
        self.files.entry(path.to_owned()).or_insert(state);
        Ok(())
    }

    /// Records whether a directory (and its missing parents) exist.
    pub fn dir(&mut self, dir: &Path) {
        let mut missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        for d in missing {
            if !self.absent_dirs.contains(&d) {
                self.absent_dirs.push(d);
            }
        }
    }

    /// Records a table's listing.
    pub fn table(&mut self, name: &str) -> Result<()> {
        if !self.tables.contains_key(name) {
            let listing = NftTable::new(name)?.list_text()?;
            self.tables.insert(name.to_string(), listing);
        }
        Ok(())
    }

    /// Records a statoverride registration.
    pub fn statoverride(&mut self, path: &Path) -> Result<()> {
        let o = statoverride::get(path)?.map(|o| SavedOverride {
            owner: o.owner,
            group: o.group,
            mode: o.mode,
        });
        self.overrides.entry(path.to_owned()).or_insert(o);
        Ok(())
    }

    /// Puts everything back. Idempotent: a rollback interrupted by a crash is simply
    /// run again.
    pub fn restore(&self) -> Result<()> {
        // Registrations first: `dpkg-statoverride --update` also sets the mode, which the
        // file restore below then settles.
        if self.use_statoverride {
            for (path, o) in &self.overrides {
                match o {
                    None => {
                        statoverride::remove(path)?;
                    }
                    Some(o) => {
                        if path.exists() {
                            statoverride::set(path, &o.owner, &o.group, o.mode)?;
                        }
                    }
                }
            }
        }
        for (name, listing) in &self.tables {
            let table = NftTable::new(name)?;
            match listing {
                Some(text) => table.load(text)?,
                None => table.delete()?,
            }
        }
        for (path, state) in &self.files {
            match state {
                SavedFile::Absent => {
                    files::remove_file(path)?;
                }
                SavedFile::Attrs(a) => {
                    if path.exists() {
                        files::ensure_attrs(path, *a)?;
                    }
                }
                SavedFile::File { attrs, content } => {
                    files::ensure_file(path, content.as_bytes(), *attrs)?;
                }
            }
            // A writer killed mid-write leaves a hidden temporary next to the file.
            files::remove_stale_temporaries(path)?;
        }
        for d in self.absent_dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        for g in &self.absent_groups {
            if vmgate_system::users::group_by_name(g)?.is_some() {
                delete_group(g)?;
            }
        }
        Ok(())
    }
}

/// `groupdel NAME`.
pub(crate) fn delete_group(name: &str) -> Result<()> {
    let out = Command::new("groupdel")
        .arg(name)
        .output()
        .map_err(|e| Error::Precondition {
            what: format!("could not run groupdel: {e}"),
            fix: "install the passwd package".into(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::System(vmgate_system::Error::Tool {
            command: format!("groupdel {name}"),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }))
    }
}

/// What is in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum Journal {
    /// An apply: roll back to the before-image.
    Apply(Box<BeforeImage>),
    /// An uninstall: finish it.
    Uninstall,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trips_and_refuses_unknown_fields() {
        let mut b = BeforeImage::default();
        b.files.insert("/x".into(), SavedFile::Absent);
        b.files.insert(
            "/y".into(),
            SavedFile::File {
                attrs: FileAttrs::root(0o440),
                content: "a\nb".into(),
            },
        );
        b.tables
            .insert("vmgate".into(), Some("table inet vmgate {\n}".into()));
        b.absent_groups.push("vmconsole".into());
        let j = Journal::Apply(Box::new(b));
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(serde_json::from_str::<Journal>(&text).unwrap(), j);
        let bad = text.replacen("\"files\"", "\"extra\":1,\"files\"", 1);
        assert!(serde_json::from_str::<Journal>(&bad).is_err());
    }

    #[test]
    fn before_image_records_missing_parent_directories_outermost_first() {
        let d = tempfile::tempdir().unwrap();
        let mut b = BeforeImage::default();
        b.dir(&d.path().join("etc/consoles"));
        assert_eq!(
            b.absent_dirs,
            vec![d.path().join("etc"), d.path().join("etc/consoles")]
        );
    }
}
