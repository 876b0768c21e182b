//! Built-in named presets for `--preset NAME`, embedded TOML in klang's own format.

/// Name, one-line description, TOML text.
pub const PRESETS: &[(&str, &str, &str)] = &[
    (
        "default",
        "klang's default: flat, no subwoofer (Config::default())",
        "",
    ),
    (
        "flat",
        "no EQ, no tone, no subwoofer",
        include_str!("../presets/flat.toml"),
    ),
    (
        "wall",
        "speakers near a wall or corner: less low bass",
        include_str!("../presets/wall.toml"),
    ),
    (
        "sub80",
        "2.1: LR4 crossover at 80 Hz, L, R and SUB outputs",
        include_str!("../presets/sub80.toml"),
    ),
    (
        "late-night",
        "quiet listening: loudness on, volume at most -10 dB",
        include_str!("../presets/late-night.toml"),
    ),
];

/// The TOML text of the built-in preset `name`.
pub fn find(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|p| p.0 == name).map(|p| p.2)
}

/// "default, flat, ..." for error messages and help.
pub fn names() -> String {
    PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses() {
        for (name, _, text) in PRESETS {
            if !text.is_empty() {
                klang_dsp::config::Config::from_toml(text)
                    .unwrap_or_else(|e| panic!("built-in preset {name}: {e}"));
            }
        }
    }

    #[test]
    fn the_flag_help_lists_exactly_these_presets() {
        let help = format!("A built-in preset name ({})", names());
        assert!(
            include_str!("main.rs").contains(&help),
            "update the --preset doc comment in main.rs to: {help}"
        );
    }
}
