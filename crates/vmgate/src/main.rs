//! `vmgate`: one VM console, one user.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Enforce which user may open which VM's Spice console, and when"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compile a policy and print the plan, touching nothing.
    Plan {
        /// Use the built-in example policy (the blog posts' office).
        #[arg(long)]
        example: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Plan { example } => {
            println!("vmgate plan (example: {example}): not implemented yet");
        }
    }
    Ok(())
}
