//! The preset file format and its migrations (pure: text in, values out).
//!
//! - **schema 1** (klang before presets were versioned): klang-dsp's `Config`
//!   TOML, no `schema` field.
//! - **schema 2** (current): `schema = 2` as the first key, then the same
//!   `Config` TOML.
//!
//! A new schema adds a variant here, a `migrate_N_to_M` step, and a fixture
//! under `tests/fixtures/` that must keep loading forever.

use klang_dsp::Config;

/// The schema this version of klang writes.
pub const CURRENT_SCHEMA: u32 = 2;

/// A preset file's text could not be understood.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    /// The `schema` field is not a number this klang knows.
    #[error(
        "line {line}: schema = {found} is not known to this klang (it reads 1..={CURRENT_SCHEMA}) (help: {help})"
    )]
    Unknown {
        /// 1-based line of the field.
        line: usize,
        /// The value found.
        found: String,
        /// How to fix it.
        help: String,
    },
    /// The file is in another tool's format (an Equalizer APO / AutoEq file).
    #[error(
        "line {line}: this is an Equalizer APO / AutoEq file, not a klang preset (help: import it: parse it with klang_dsp::parse_preset and save the result as a preset)"
    )]
    Foreign {
        /// 1-based line of the first APO command.
        line: usize,
    },
    /// The settings are invalid (syntax, unknown field, value out of range).
    #[error("{0}")]
    Config(#[from] klang_dsp::ConfigError),
}

impl SchemaError {
    /// 1-based line of the problem, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            SchemaError::Unknown { line, .. } | SchemaError::Foreign { line } => Some(*line),
            SchemaError::Config(e) => e.line,
        }
    }
}

/// A parsed preset file.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The settings.
    pub config: Config,
    /// The schema the text was written in.
    pub schema: u32,
}

/// Finds a top-level `schema = N` line (before any table header) and returns
/// its line index and value text.
fn schema_line(text: &str) -> Option<(usize, String)> {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            return None;
        }
        if let Some(rest) = t.strip_prefix("schema")
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            let value = value.split('#').next().unwrap_or("").trim().to_string();
            return Some((i, value));
        }
    }
    None
}

/// Parses a preset file of any known schema into the current settings. Errors
/// carry the line in `text`.
pub fn parse(text: &str) -> Result<Parsed, SchemaError> {
    if klang_dsp::apo::looks_like_apo(text) {
        let line = text
            .lines()
            .position(klang_dsp::apo::looks_like_apo)
            .map_or(1, |i| i + 1);
        return Err(SchemaError::Foreign { line });
    }
    match schema_line(text) {
        None => Ok(Parsed {
            config: migrate_1_to_2(text)?,
            schema: 1,
        }),
        Some((index, value)) => {
            let schema = value
                .parse::<u32>()
                .ok()
                .filter(|v| (2..=CURRENT_SCHEMA).contains(v));
            let Some(schema) = schema else {
                let newer = value.parse::<u32>().is_ok_and(|v| v > CURRENT_SCHEMA);
                return Err(SchemaError::Unknown {
                    line: index + 1,
                    found: value,
                    help: if newer {
                        "the preset was written by a newer klang: upgrade klang, or restore an older version of the preset".into()
                    } else {
                        format!("write `schema = {CURRENT_SCHEMA}`")
                    },
                });
            };
            // Blank the schema line (keeping line numbers) and read the rest as Config TOML.
            let body: String = text
                .lines()
                .enumerate()
                .map(|(i, l)| {
                    if i == index {
                        "\n".to_string()
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            Ok(Parsed {
                config: Config::from_toml(&body)?,
                schema,
            })
        }
    }
}

/// Schema 1 is the bare Config TOML: its settings are read as they are.
fn migrate_1_to_2(text: &str) -> Result<Config, klang_dsp::ConfigError> {
    Config::from_toml(text)
}

/// The file text of `config` in the current schema.
pub fn render(config: &Config) -> String {
    format!(
        "# klang preset; `schema` is the file format version, keep it as the first key\nschema = {CURRENT_SCHEMA}\n{}",
        config.to_toml()
    )
}
