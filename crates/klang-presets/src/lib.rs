//! klang's preset library: one TOML file per preset in
//! `$XDG_CONFIG_HOME/klang/presets/NAME.toml` (`~/.config/klang/presets`), with
//! the file format's version inside (`schema = 2`), saves that cannot leave a
//! half-written or missing preset, a bounded history of previous versions,
//! migration of older files on load, and backup/restore of everything into one
//! document.
//!
//! # The calls behind `klang preset …` and `klang backup/restore`
//! ```text
//! let lib = Library::open(&Library::default_base()?)?;   // creates …/klang/presets
//! klang preset list                 lib.list()?                     -> Vec<PresetInfo>
//! klang preset show NAME            lib.show(NAME)?                 -> String (file text)
//! klang preset show NAME --version N lib.show_version(NAME, N)?    -> String
//! klang preset save NAME [FILE]     lib.save(NAME, &config)?        -> Option<u32> (history no. of the old one)
//! klang preset load NAME            lib.load(NAME)?.config          (then `klang ctl` switches with a crossfade)
//! klang preset rm NAME              lib.rm(NAME)?                   -> u32 (history no. holding it; undo with restore)
//! klang preset history NAME         lib.history(NAME)?              -> Vec<u32>
//! klang preset restore NAME --version N  lib.restore(NAME, N)?      -> Config (now current; the replaced one goes to history)
//! klang preset diff A [B] [--version N]  lib.diff((A, None), (B, Some(N)))? -> unified diff text ("" = same)
//! klang backup FILE [--state S]     lib.backup(Some(S), FILE)?      -> BackupSummary
//! klang restore FILE [--state S]    lib.restore_backup(FILE, Some(S))? -> RestoreSummary
//! ```
//! `save` takes a validated [`klang_dsp::Config`] (parse user files with
//! `klang_dsp::parse_preset` or `klang_formats` first). Errors are
//! [`PresetError`]s; `Display` names the file and line and says how to fix it.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let lib = klang_presets::Library::open(dir.path()).unwrap();
//! let mut config = klang_dsp::Config::default();
//! config.tone.bass_db = 3.0;
//! lib.save("living-room", &config).unwrap();
//! config.tone.bass_db = 5.0;
//! assert_eq!(lib.save("living-room", &config).unwrap(), Some(1));
//! assert_eq!(lib.restore("living-room", 1).unwrap().tone.bass_db, 3.0);
//! ```
//!
//! # Invariants
//! - Every write is temp file → fsync → rename → fsync directory
//!   ([`store::write_atomic`]), so `NAME.toml` is at every instant the old or
//!   the new version (a test kills a saving process with SIGKILL at random
//!   moments and checks exactly that).
//! - Nothing is deleted without a copy: `save`, `restore` and `rm` first put the
//!   current file into `.history/NAME/NNNN.toml` (the last [`HISTORY_LIMIT`]
//!   are kept); migration keeps the original as `NAME.toml.vN.bak`.
//! - Presets of every past schema load ([`schema`]; fixtures in `tests/fixtures`).
//!
//! Writers take turns: every change holds an exclusive `flock` on
//! `presets/.lock`, so concurrent saves never lose a history version (the
//! last save wins, as it should).

#![forbid(unsafe_code)]

mod backup;
pub mod schema;
pub mod store;

use std::fs;
use std::path::{Path, PathBuf};

use klang_dsp::Config;

pub use backup::{BackupSummary, RestoreSummary};
pub use schema::{CURRENT_SCHEMA, SchemaError};

/// How many previous versions of each preset are kept.
pub const HISTORY_LIMIT: usize = 20;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    /// A preset name that is not a plain file name.
    #[error(
        "`{name}` is not a valid preset name (help: use letters, digits, `-`, `_` and `.`, at most 64, not starting with `.`)"
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// No such preset.
    #[error("{}: no preset `{name}` (help: `klang preset list` shows the presets)", path.display())]
    NotFound {
        /// The name given.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// No such version in a preset's history.
    #[error("preset `{name}` has no version {version} (help: available versions: {available:?})")]
    NoVersion {
        /// The preset.
        name: String,
        /// The version asked for.
        version: u32,
        /// What there is.
        available: Vec<u32>,
    },
    /// A damaged or invalid preset file.
    #[error("{}{}: {source}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        source: Box<SchemaError>,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A damaged backup archive.
    #[error("{}{}: {message} (help: {help})", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: String,
    },
    /// Neither `XDG_CONFIG_HOME` nor `HOME` is set.
    #[error("cannot find the configuration directory (help: set XDG_CONFIG_HOME or HOME)")]
    NoConfigDir,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PresetError + '_ {
    move |source| PresetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One entry of [`Library::list`].
#[derive(Debug, Clone, PartialEq)]
pub struct PresetInfo {
    /// The preset's name.
    pub name: String,
    /// Its schema, or the error that keeps it from loading (shown, not hidden).
    pub status: Result<u32, String>,
    /// Versions in its history.
    pub history: Vec<u32>,
}

/// A loaded preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The settings (in the current schema).
    pub config: Config,
    /// The schema it was stored in, when it was older and has been migrated
    /// (the original is kept as `NAME.toml.vN.bak`).
    pub migrated_from: Option<u32>,
    /// Why the migrated file could not be written back, if it could not (the
    /// settings are still returned; the next load tries again).
    pub migration_note: Option<String>,
}

/// The preset library in one directory.
#[derive(Debug, Clone)]
pub struct Library {
    dir: PathBuf,
}

/// Checks a preset name: a plain, portable file name.
pub fn check_name(name: &str) -> Result<(), PresetError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(PresetError::BadName { name: name.into() })
    }
}

/// Parses a preset file's text, naming `path` in errors.
pub fn parse_file_text(path: &Path, text: &str) -> Result<schema::Parsed, PresetError> {
    schema::parse(text).map_err(|source| PresetError::Invalid {
        path: path.to_path_buf(),
        line: source.line(),
        source: Box::new(source),
    })
}

impl Library {
    /// `$XDG_CONFIG_HOME/klang`, else `$HOME/.config/klang`.
    pub fn default_base() -> Result<PathBuf, PresetError> {
        let from = |v: &str| {
            std::env::var_os(v)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        };
        from("XDG_CONFIG_HOME")
            .or_else(|| from("HOME").map(|h| h.join(".config")))
            .map(|c| c.join("klang"))
            .ok_or(PresetError::NoConfigDir)
    }

    /// Opens (creating if needed) the library in `base/presets`, and removes
    /// temporary files a killed writer left behind (also in the histories).
    pub fn open(base: &Path) -> Result<Library, PresetError> {
        let dir = base.join("presets");
        fs::create_dir_all(dir.join(".history")).map_err(io(&dir))?;
        store::remove_stale_temps(&dir);
        if let Ok(histories) = fs::read_dir(dir.join(".history")) {
            for h in histories.flatten() {
                store::remove_stale_temps(&h.path());
            }
        }
        Ok(Library { dir })
    }

    /// The presets directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a preset's file.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.toml"))
    }

    /// Holds the library's write lock until dropped.
    pub(crate) fn lock(&self) -> Result<nix::fcntl::Flock<fs::File>, PresetError> {
        let path = self.dir.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, errno)| {
            PresetError::Io {
                path,
                source: errno.into(),
            }
        })
    }

    pub(crate) fn history_dir(&self, name: &str) -> PathBuf {
        self.dir.join(".history").join(name)
    }

    fn read(&self, path: &Path, name: &str) -> Result<String, PresetError> {
        fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                PresetError::NotFound {
                    name: name.into(),
                    path: path.to_path_buf(),
                }
            } else {
                PresetError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
    }

    /// All presets, sorted by name, with their status (a damaged one is listed
    /// with its error rather than hidden).
    pub fn list(&self) -> Result<Vec<PresetInfo>, PresetError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io(&self.dir))?.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".toml") else {
                continue;
            };
            if check_name(name).is_err() {
                continue;
            }
            let path = e.path();
            let status = fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    parse_file_text(&path, &t)
                        .map(|p| p.schema)
                        .map_err(|e| e.to_string())
                });
            out.push(PresetInfo {
                name: name.to_string(),
                status,
                history: self.history(name)?,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The preset's file text.
    pub fn show(&self, name: &str) -> Result<String, PresetError> {
        check_name(name)?;
        self.read(&self.path(name), name)
    }

    /// The text of version `version` from the preset's history.
    pub fn show_version(&self, name: &str, version: u32) -> Result<String, PresetError> {
        check_name(name)?;
        let path = self.version_path(name, version)?;
        self.read(&path, name)
    }

    fn version_path(&self, name: &str, version: u32) -> Result<PathBuf, PresetError> {
        let versions = store::numbered(&self.history_dir(name));
        versions
            .iter()
            .find(|(n, _)| *n == version)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| PresetError::NoVersion {
                name: name.into(),
                version,
                available: versions.iter().map(|(n, _)| *n).collect(),
            })
    }

    /// Loads a preset; a file of an older schema is migrated: the original is
    /// kept as `NAME.toml.vN.bak` and the file rewritten in the current schema.
    pub fn load(&self, name: &str) -> Result<Loaded, PresetError> {
        check_name(name)?;
        let path = self.path(name);
        let text = self.read(&path, name)?;
        let parsed = parse_file_text(&path, &text)?;
        let mut loaded = Loaded {
            config: parsed.config,
            migrated_from: None,
            migration_note: None,
        };
        if parsed.schema < CURRENT_SCHEMA {
            loaded.migrated_from = Some(parsed.schema);
            let bak = self.dir.join(format!("{name}.toml.v{}.bak", parsed.schema));
            let result = (|| {
                let _lock = self.lock()?;
                // A save may have come in since we read the file: then it is not ours to rewrite.
                if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                    return Ok(());
                }
                if !bak.exists() {
                    store::write_atomic(&bak, text.as_bytes()).map_err(io(&bak))?;
                }
                store::write_atomic(&path, schema::render(&loaded.config).as_bytes())
                    .map_err(io(&path))
            })();
            loaded.migration_note = result.err().map(|e| e.to_string());
        }
        Ok(loaded)
    }

    /// Puts the current file of `name` (if any) into its history; returns the
    /// version number it got.
    fn archive_current(&self, name: &str) -> Result<Option<u32>, PresetError> {
        let path = self.path(name);
        let old = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PresetError::Io { path, source }),
        };
        let hdir = self.history_dir(name);
        fs::create_dir_all(&hdir).map_err(io(&hdir))?;
        let existing = store::numbered(&hdir);
        let next = existing.last().map_or(1, |(n, _)| n + 1);
        let hpath = hdir.join(format!("{next:04}.toml"));
        store::write_atomic(&hpath, &old).map_err(io(&hpath))?;
        let keep_from = (existing.len() + 1).saturating_sub(HISTORY_LIMIT);
        for (_, p) in existing.iter().take(keep_from) {
            let _ = fs::remove_file(p);
        }
        Ok(Some(next))
    }

    /// Saves `config` as `name` (validated first). The previous version, if
    /// any, goes into the history; its number is returned.
    pub fn save(&self, name: &str, config: &Config) -> Result<Option<u32>, PresetError> {
        check_name(name)?;
        let path = self.path(name);
        config
            .validate(None)
            .map_err(|source| PresetError::Invalid {
                path: path.clone(),
                line: None,
                source: Box::new(source.into()),
            })?;
        self.save_text(name, &schema::render(config))
    }

    /// Saves already-validated file text (used by restore), under the lock.
    fn save_text(&self, name: &str, text: &str) -> Result<Option<u32>, PresetError> {
        let _lock = self.lock()?;
        self.save_text_locked(name, text)
    }

    /// [`Library::save_text`] for a caller that holds the lock.
    pub(crate) fn save_text_locked(
        &self,
        name: &str,
        text: &str,
    ) -> Result<Option<u32>, PresetError> {
        let path = self.path(name);
        if fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(None);
        }
        let version = self.archive_current(name)?;
        store::write_atomic(&path, text.as_bytes()).map_err(io(&path))?;
        Ok(version)
    }

    /// Removes a preset; its last version stays in the history (returned), so
    /// `restore NAME --version N` brings it back.
    pub fn rm(&self, name: &str) -> Result<u32, PresetError> {
        check_name(name)?;
        let path = self.path(name);
        let _lock = self.lock()?;
        let Some(version) = self.archive_current(name)? else {
            return Err(PresetError::NotFound {
                name: name.into(),
                path,
            });
        };
        fs::remove_file(&path).map_err(io(&path))?;
        store::sync_dir(&self.dir).map_err(io(&self.dir))?;
        Ok(version)
    }

    /// The version numbers in a preset's history, oldest first.
    pub fn history(&self, name: &str) -> Result<Vec<u32>, PresetError> {
        check_name(name)?;
        Ok(store::numbered(&self.history_dir(name))
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    /// Makes version `version` current again (the current one goes into the history).
    pub fn restore(&self, name: &str, version: u32) -> Result<Config, PresetError> {
        check_name(name)?;
        let vpath = self.version_path(name, version)?;
        let text = self.read(&vpath, name)?;
        let parsed = parse_file_text(&vpath, &text)?;
        let text = if parsed.schema == CURRENT_SCHEMA {
            text
        } else {
            schema::render(&parsed.config)
        };
        self.save_text(name, &text)?;
        Ok(parsed.config)
    }

    fn normalised(&self, name: &str, version: Option<u32>) -> Result<String, PresetError> {
        check_name(name)?;
        let path = match version {
            Some(v) => self.version_path(name, v)?,
            None => self.path(name),
        };
        let text = self.read(&path, name)?;
        Ok(parse_file_text(&path, &text)?.config.to_toml())
    }

    /// A unified diff of two presets (or versions: `(name, Some(n))`), on their
    /// normalised TOML so formatting and comments do not show. Empty = same settings.
    pub fn diff(
        &self,
        a: (&str, Option<u32>),
        b: (&str, Option<u32>),
    ) -> Result<String, PresetError> {
        let label = |(n, v): (&str, Option<u32>)| match v {
            Some(v) => format!("{n} (version {v})"),
            None => n.to_string(),
        };
        let (ta, tb) = (self.normalised(a.0, a.1)?, self.normalised(b.0, b.1)?);
        if ta == tb {
            return Ok(String::new());
        }
        Ok(similar::TextDiff::from_lines(&ta, &tb)
            .unified_diff()
            .header(&label(a), &label(b))
            .to_string())
    }
}
