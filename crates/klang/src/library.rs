//! `klang preset …`, `klang backup` and `klang restore`: the user's preset library
//! (klang-presets) and its import/export (klang-formats).

use crate::{EXIT_CONFIG, EXIT_RUNTIME, Failure, bad_config, runtime};
use anyhow::anyhow;
use clap::Subcommand;
use klang_presets::{Library, PresetError};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum Preset {
    /// List the saved presets with their history length.
    List,
    /// Print a preset's file (or an older version of it).
    Show {
        name: String,
        /// A version from `klang preset history NAME`.
        #[arg(long)]
        version: Option<u32>,
    },
    /// Save FILE (klang TOML or Equalizer APO) as preset NAME; the old version goes to history.
    Save { name: String, file: PathBuf },
    /// Switch the running engine (`klang run`) to preset NAME, crossfaded.
    Load {
        name: String,
        /// The control socket (default: $XDG_RUNTIME_DIR/klang/control.sock).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Remove preset NAME (kept in its history; undo with `restore`).
    Rm { name: String },
    /// List the versions kept in NAME's history.
    History { name: String },
    /// Make version N of NAME current again (the replaced one goes to history).
    Restore {
        name: String,
        #[arg(long)]
        version: u32,
    },
    /// Show what differs between two presets (or B's version N).
    Diff {
        a: String,
        b: Option<String>,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Import FILE (klang TOML, Equalizer APO parametric or GraphicEQ, EasyEffects JSON) as a preset.
    Import {
        file: PathBuf,
        /// Preset name (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
    },
    /// Export preset NAME for another equalizer.
    Export {
        name: String,
        /// apo, graphiceq, easyeffects, pipewire or camilladsp.
        #[arg(long, value_parser = format_name)]
        format: String,
        /// Sample rate the filters are designed for, in Hz.
        #[arg(long, default_value_t = 48_000)]
        rate: u32,
        /// Write here (atomically) instead of to standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

fn format_name(s: &str) -> Result<String, String> {
    match klang_formats::Format::from_name(s) {
        Some(_) => Ok(s.to_string()),
        None => Err("use apo, graphiceq, easyeffects, pipewire, camilladsp or klang".into()),
    }
}

fn fail(e: PresetError) -> Failure {
    match e {
        PresetError::Io { .. } => runtime(anyhow!(e)),
        _ => bad_config(anyhow!(e)),
    }
}

fn open() -> Result<Library, Failure> {
    Library::open(&Library::default_base().map_err(fail)?).map_err(fail)
}

fn state_file() -> Option<PathBuf> {
    klang_engine::state::State::default_path()
}

pub fn backup(file: &Path) -> Result<(), Failure> {
    let lib = open()?;
    let abs = std::path::absolute(file).map_err(|e| runtime(anyhow!("{}: {e}", file.display())))?;
    let s = lib.backup(state_file().as_deref(), &abs).map_err(fail)?;
    println!(
        "klang: backed up {} presets, {} history versions{} to {}",
        s.presets,
        s.versions,
        if s.state { " and the engine state" } else { "" },
        file.display()
    );
    Ok(())
}

pub fn restore(file: &Path) -> Result<(), Failure> {
    let lib = open()?;
    let s = lib
        .restore_backup(file, state_file().as_deref())
        .map_err(fail)?;
    println!(
        "klang: restored {} presets ({}){}",
        s.presets.len(),
        s.presets.join(", "),
        s.state
            .map(|p| format!("; engine state written to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

pub fn preset(cmd: Preset) -> Result<(), Failure> {
    let lib = open()?;
    match cmd {
        Preset::List => {
            let list = lib.list().map_err(fail)?;
            if list.is_empty() {
                eprintln!(
                    "klang: no presets in {} (add one: klang preset save NAME FILE)",
                    lib.dir().display()
                );
            }
            for info in list {
                match &info.status {
                    Ok(schema) => println!(
                        "{}\tschema {schema}\t{} old versions",
                        info.name,
                        info.history.len()
                    ),
                    Err(e) => println!("{}\tDAMAGED: {e}", info.name),
                }
            }
        }
        Preset::Show { name, version } => {
            let text = match version {
                Some(v) => lib.show_version(&name, v),
                None => lib.show(&name),
            }
            .map_err(fail)?;
            // Shown only if it loads: a damaged file is an error naming file and line.
            klang_presets::parse_file_text(&lib.path(&name), &text).map_err(fail)?;
            print!("{text}");
        }
        Preset::Save { name, file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| bad_config(anyhow!("{}: {e}", file.display())))?;
            let config = klang_dsp::parse_preset(&text)
                .map_err(|e| bad_config(anyhow!("{}: {e}", file.display())))?;
            let old = lib.save(&name, &config).map_err(fail)?;
            saved(&lib, &name, old);
        }
        Preset::Load { name, socket } => {
            let loaded = lib.load(&name).map_err(fail)?;
            if let Some(note) = loaded.migration_note {
                eprintln!("klang: note: {note}");
            }
            // The engine reads plain klang TOML: hand it the (migrated) settings as a file.
            let dir = klang_engine::state::State::default_path()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .ok_or_else(|| {
                    runtime(anyhow!("no state directory (set XDG_STATE_HOME or HOME)"))
                })?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| runtime(anyhow!("{}: {e}", dir.display())))?;
            let file = dir.join(format!("loaded-{name}.toml"));
            crate::write_atomic(&file, loaded.config.to_toml().as_bytes())
                .map_err(|e| runtime(anyhow!("{}: {e}", file.display())))?;
            crate::live::ctl(
                crate::live::Ctl::Preset {
                    preset: file.display().to_string(),
                },
                None,
                socket,
                false,
            )
            .map_err(|f| {
                if f.code == EXIT_RUNTIME {
                    runtime(anyhow!(
                        "no running engine to load preset {name} into (start it with `klang run`): {}",
                        crate::describe(&f.error)
                    ))
                } else {
                    f
                }
            })?;
        }
        Preset::Rm { name } => {
            let v = lib.rm(&name).map_err(fail)?;
            println!(
                "klang: removed preset {name} (kept as version {v}; undo: klang preset restore {name} --version {v})"
            );
        }
        Preset::History { name } => {
            for v in lib.history(&name).map_err(fail)? {
                println!("{v}");
            }
        }
        Preset::Restore { name, version } => {
            lib.restore(&name, version).map_err(fail)?;
            println!("klang: preset {name} is version {version} again");
        }
        Preset::Diff { a, b, version } => {
            let b_name = b.unwrap_or_else(|| a.clone());
            if b_name == a && version.is_none() {
                return Err(Failure {
                    code: 2,
                    error: anyhow!("name a second preset or a --version to compare with"),
                });
            }
            let d = lib.diff((&a, None), (&b_name, version)).map_err(fail)?;
            if d.is_empty() {
                println!("klang: same settings");
            } else {
                print!("{d}");
            }
        }
        Preset::Import { file, name } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| bad_config(anyhow!("{}: {e}", file.display())))?;
            let imported = klang_formats::import(&text)
                .map_err(|e| bad_config(anyhow!("{}: {e}", file.display())))?;
            let name = match name {
                Some(n) => n,
                None => file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .ok_or_else(|| {
                        bad_config(anyhow!("{}: give the preset a --name", file.display()))
                    })?
                    .to_string(),
            };
            let old = lib.save(&name, &imported.config).map_err(fail)?;
            if let Some(err) = imported.fit_error_db {
                eprintln!("klang: note: the graphic EQ was fitted within {err:.2} dB");
            }
            println!(
                "klang: imported {} ({:?}) as preset {name}",
                file.display(),
                imported.format
            );
            saved(&lib, &name, old);
        }
        Preset::Export {
            name,
            format,
            rate,
            out,
        } => {
            let config = lib.load(&name).map_err(fail)?.config;
            let fmt = klang_formats::Format::from_name(&format).expect("checked by clap");
            let text = klang_formats::export(&config, fmt, rate).map_err(|e| Failure {
                code: EXIT_CONFIG,
                error: anyhow!("preset {name} as {format}: {e}"),
            })?;
            match out {
                Some(path) => {
                    crate::write_atomic(&path, text.as_bytes())
                        .map_err(|e| runtime(anyhow!("{}: {e}", path.display())))?;
                    eprintln!("klang: wrote {}", path.display());
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}

fn saved(lib: &Library, name: &str, old: Option<u32>) {
    match old {
        Some(v) => println!(
            "klang: saved preset {name} to {} (previous version kept as {v})",
            lib.path(name).display()
        ),
        None => println!("klang: saved preset {name} to {}", lib.path(name).display()),
    }
}
