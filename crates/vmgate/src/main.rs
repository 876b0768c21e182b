//! `vmgate`: one VM console, one user.
//!
//! A thin binary: it parses flags, reads the policy file, resolves names
//! through NSS, calls `vmgate_policy`, prints, and maps the outcome to an exit
//! code (0 ok or allowed, 1 denied by `explain`, 2 invalid policy, 3 any other
//! failure).
#![forbid(unsafe_code)]

mod nss;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use vmgate_policy::{CheckInput, Directory, PlanOptions, Policy, example};

const DEFAULT_POLICY: &str = "/etc/vmgate/policy.toml";

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Enforce which user may open which VM's Spice console, and when",
    after_help = "Exit status: 0 valid / planned / allowed, 1 denied (explain), 2 invalid policy, 3 any other error.\n\
                  Try it on any machine: vmgate plan --example; vmgate explain --example --user mybro --console debianx"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
struct PolicyArgs {
    /// Policy file.
    #[arg(default_value = DEFAULT_POLICY)]
    policy: PathBuf,
    /// Use the built-in example policy (the blog posts' office) with its demo users.
    #[arg(long)]
    example: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a policy; list every problem with file:line:column and a fix.
    Check {
        #[command(flatten)]
        p: PolicyArgs,
    },
    /// Compile a policy and print the plan, touching nothing.
    Plan {
        #[command(flatten)]
        p: PolicyArgs,
        /// nft table name (family inet).
        #[arg(long, default_value = "vmgate")]
        table: String,
        /// Plan as of this instant (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// Also write every generated file under DIR (DIR/etc/vmgate/..., DIR/etc/sudoers.d/...),
        /// for review or `visudo -cf`; nothing outside DIR is touched.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// May USER open CONSOLE (at a time)? Which grant, which window, next opening.
    Explain {
        #[command(flatten)]
        p: PolicyArgs,
        /// User name.
        #[arg(long)]
        user: String,
        /// Console name.
        #[arg(long)]
        console: String,
        /// When: RFC 3339 (2026-12-02T10:00:00+01:00), a civil time in the policy's
        /// zone (2026-12-02T10:00), or a weekday (`wed`, `wed 10:00`: the next one); default now.
        #[arg(long)]
        at: Option<String>,
    },
}

enum Failure {
    Invalid(vmgate_policy::Diagnostics, Format),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(Failure::Invalid(d, Format::Text)) => {
            eprintln!("{d}");
            eprintln!("\n{} problem(s) in {}", d.items.len(), d.file);
            ExitCode::from(2)
        }
        Err(Failure::Invalid(d, Format::Json)) => {
            let v = serde_json::json!({"valid": false, "errors": d.located()});
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("vmgate: error: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn at(s: Option<&str>) -> anyhow::Result<Timestamp> {
    match s {
        None => Ok(Timestamp::now()),
        Some(s) => s.parse::<Timestamp>().with_context(|| {
            format!("--at `{s}` is not an RFC 3339 time such as 2026-12-02T10:00:00+01:00")
        }),
    }
}

/// Loads and checks the policy; the directory is NSS, or the demo one for `--example`.
fn load(p: &PolicyArgs) -> Result<(Policy, Box<dyn Directory>), Failure> {
    let (name, text, dir): (String, String, Box<dyn Directory>) = if p.example {
        (
            example::OFFICE_NAME.to_string(),
            example::OFFICE_TOML.to_string(),
            Box::new(example::demo_directory()),
        )
    } else {
        let text = std::fs::read_to_string(&p.policy)
            .with_context(|| format!("cannot read the policy {}", p.policy.display()))?;
        (p.policy.display().to_string(), text, Box::new(nss::Nss))
    };
    let input = CheckInput {
        file: &name,
        text: &text,
        system_timezone: TimeZone::try_system().unwrap_or(TimeZone::UTC),
    };
    match vmgate_policy::check(&input, dir.as_ref()) {
        Ok(policy) => Ok((policy, dir)),
        Err(d) => Err(Failure::Invalid(d, p.format)),
    }
}

/// Writes the plan's files under `dir`, with their modes (owners are apply's job).
fn write_tree(dir: &std::path::Path, plan: &vmgate_policy::Plan) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    for f in plan.generated_files() {
        let path = dir.join(f.path.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, &f.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    Ok(())
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Check { p } => {
            let (policy, _) = load(&p)?;
            match p.format {
                Format::Text => println!(
                    "policy is valid: {} server(s), {} console(s), {} pin(s); users and groups from: {}",
                    policy.servers.len(),
                    policy.consoles.len(),
                    policy.pins.len(),
                    policy.directory
                ),
                Format::Json => print_json(&serde_json::json!({"valid": true, "policy": policy}))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            p,
            table,
            at: when,
            out,
        } => {
            let (policy, _) = load(&p)?;
            if table.is_empty()
                || !table
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(
                    anyhow::anyhow!("--table `{table}` must be letters, digits, _ and -").into(),
                );
            }
            let mut opts = PlanOptions::new(at(when.as_deref())?);
            opts.table = table;
            opts.policy_path = if p.example {
                DEFAULT_POLICY.to_string()
            } else {
                p.policy.display().to_string()
            };
            let plan = vmgate_policy::plan(&policy, &opts);
            if let Some(dir) = &out {
                write_tree(dir, &plan)?;
            }
            match p.format {
                Format::Text => {
                    if p.example {
                        println!(
                            "# vmgate plan of the built-in example: {}",
                            example::OFFICE_NAME
                        );
                    }
                    print!("{}", plan.to_text());
                }
                Format::Json => print_json(&plan)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain {
            p,
            user,
            console,
            at: when,
        } => {
            let (policy, dir) = load(&p)?;
            let Some(entry) = dir
                .user(&user)
                .map_err(|e| anyhow::anyhow!("cannot look up user `{user}`: {e}"))?
            else {
                let msg = if p.example {
                    format!(
                        "no user `{user}` in the example's demo directory (myself, mybro, maggie, anne, charlie, boss, ralph, mark)"
                    )
                } else {
                    format!("unknown user `{user}` (`getent passwd {user}` finds nothing)")
                };
                return Err(anyhow::Error::msg(msg).into());
            };
            let now = Timestamp::now();
            let at = match when.as_deref() {
                None => now,
                Some(w) => vmgate_policy::explain::parse_when(&policy, w, now)
                    .map_err(|m| anyhow::anyhow!("--at: {m}"))?,
            };
            let e = vmgate_policy::explain(&policy, "/etc/vmgate", &entry, &console, at)
                .map_err(anyhow::Error::from)?;
            match p.format {
                Format::Text => print!("{}", e.to_text()),
                Format::Json => print_json(&e)?,
            }
            Ok(if e.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
