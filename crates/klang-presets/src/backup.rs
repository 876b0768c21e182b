//! `klang backup FILE` / `klang restore FILE`: every preset (with its history)
//! and the engine's state file in one TOML document.
//!
//! Why one TOML document rather than a tar archive: presets and the state file
//! are small text files, so the archive stays human-readable and diffable, can
//! be checked with any TOML tool, needs no dependency beyond the `toml` the
//! workspace already has, and restore can parse and validate *everything*
//! before it writes anything, with errors at a line of the archive.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Library, PresetError, check_name, io, parse_file_text, schema, store};

const FORMAT: &str = "klang-backup";
const ARCHIVE_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Archive {
    format: String,
    archive_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(default, rename = "preset")]
    presets: Vec<ArchivedPreset>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchivedPreset {
    name: String,
    text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    history: Vec<String>,
}

/// What a backup contains.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSummary {
    /// Presets saved.
    pub presets: usize,
    /// History versions saved.
    pub versions: usize,
    /// Whether the engine state file was included.
    pub state: bool,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreSummary {
    /// Presets restored (a preset that existed keeps its old version in history).
    pub presets: Vec<String>,
    /// Where the engine state was written, if it was.
    pub state: Option<PathBuf>,
}

fn archive_err(
    path: &Path,
    line: Option<usize>,
    message: impl Into<String>,
    help: impl Into<String>,
) -> PresetError {
    PresetError::Archive {
        path: path.to_path_buf(),
        line,
        message: message.into(),
        help: help.into(),
    }
}

/// 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Library {
    /// Writes every preset, its history, and the engine state file (if given
    /// and present) into `out`, atomically.
    pub fn backup(
        &self,
        state_file: Option<&Path>,
        out: &Path,
    ) -> Result<BackupSummary, PresetError> {
        let mut presets = Vec::new();
        let mut versions = 0;
        for info in self.list()? {
            let text = self.show(&info.name)?;
            let mut history = Vec::new();
            for v in &info.history {
                history.push(self.show_version(&info.name, *v)?);
            }
            versions += history.len();
            presets.push(ArchivedPreset {
                name: info.name,
                text,
                history,
            });
        }
        let state = match state_file {
            Some(p) => match fs::read_to_string(p) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(PresetError::Io {
                        path: p.to_path_buf(),
                        source,
                    });
                }
            },
            None => None,
        };
        let summary = BackupSummary {
            presets: presets.len(),
            versions,
            state: state.is_some(),
        };
        let archive = Archive {
            format: FORMAT.into(),
            archive_version: ARCHIVE_VERSION,
            state,
            presets,
        };
        let text = toml::to_string(&archive)
            .map_err(|e| archive_err(out, None, e.to_string(), "report this as a bug"))?;
        let text =
            format!("# klang backup: presets with their history, and the engine state\n{text}");
        store::write_atomic(out, text.as_bytes()).map_err(io(out))?;
        Ok(summary)
    }

    /// Restores a backup: validates every preset in the archive first (nothing
    /// is written if one is damaged), then saves each (an existing preset's
    /// current version goes into its history first; archived history versions
    /// are appended to the local history), and writes the engine state to
    /// `state_file` if both are given.
    pub fn restore_backup(
        &self,
        archive: &Path,
        state_file: Option<&Path>,
    ) -> Result<RestoreSummary, PresetError> {
        let text = fs::read_to_string(archive).map_err(io(archive))?;
        let doc: Archive = toml::from_str(&text).map_err(|e| {
            archive_err(
                archive,
                e.span().map(|s| line_at(&text, s.start)),
                e.message().trim().to_string(),
                "the file is not a klang backup, or it was damaged",
            )
        })?;
        if doc.format != FORMAT || doc.archive_version != ARCHIVE_VERSION {
            return Err(archive_err(
                archive,
                Some(1),
                format!(
                    "format `{}` version {} is not a klang backup this klang reads",
                    doc.format, doc.archive_version
                ),
                format!("expected format = \"{FORMAT}\", archive_version = {ARCHIVE_VERSION}"),
            ));
        }
        // Validate everything before writing anything.
        let mut plan = Vec::new();
        for p in &doc.presets {
            check_name(&p.name)?;
            let where_ = |what: &str| {
                let at = text.find(&format!("name = \"{}\"", p.name)).unwrap_or(0);
                PathBuf::from(format!(
                    "{}:{} ({what} of preset `{}`)",
                    archive.display(),
                    line_at(&text, at),
                    p.name
                ))
            };
            let current = parse_file_text(&where_("text"), &p.text)?;
            let current_text = if current.schema == schema::CURRENT_SCHEMA {
                p.text.clone()
            } else {
                schema::render(&current.config)
            };
            for (k, h) in p.history.iter().enumerate() {
                parse_file_text(&where_(&format!("history[{k}]")), h)?;
            }
            plan.push((p.name.clone(), current_text, p.history.clone()));
        }
        let mut names = Vec::new();
        for (name, current, history) in plan {
            let _lock = self.lock()?;
            let hdir = self.history_dir(&name);
            fs::create_dir_all(&hdir).map_err(io(&hdir))?;
            let first = store::numbered(&hdir).last().map_or(1, |(n, _)| n + 1);
            for (next, h) in (first..).zip(history) {
                let hp = hdir.join(format!("{next:04}.toml"));
                store::write_atomic(&hp, h.as_bytes()).map_err(io(&hp))?;
            }
            self.save_text_locked(&name, &current)?;
            names.push(name);
        }
        let state = match (doc.state, state_file) {
            (Some(s), Some(dest)) => {
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(io(parent))?;
                }
                store::write_atomic(dest, s.as_bytes()).map_err(io(dest))?;
                Some(dest.to_path_buf())
            }
            _ => None,
        };
        Ok(RestoreSummary {
            presets: names,
            state,
        })
    }
}
