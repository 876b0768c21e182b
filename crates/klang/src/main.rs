//! `klang`: the speaker processor's command line.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A software speaker processor for the Linux audio chain"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render the built-in demo signal through the default speaker preset.
    Demo {
        /// Where the WAV file and the response plot are written.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo { out_dir } => {
            std::fs::create_dir_all(&out_dir)?;
            println!(
                "klang demo: not implemented yet (would write to {})",
                out_dir.display()
            );
        }
    }
    Ok(())
}
