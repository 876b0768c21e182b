//! `vmgate`: one VM console, one user.
//!
//! A thin binary: it parses flags, reads the policy file, resolves names
//! through NSS, calls `vmgate_policy` (check, plan, explain: touching nothing)
//! or `vmgate_apply` (apply, verify, guard, uninstall, log: the real system),
//! prints, and maps the outcome to an exit code.
//!
//! - `check`, `plan`, `explain`: 0 ok or allowed, 1 denied by `explain`, 2 invalid
//!   policy, 3 any other failure.
//! - `apply`, `verify`, `guard`, `uninstall`, `log` (the table "What the CLI calls" in
//!   `vmgate_apply`): 0 ok, 1 drift (`verify`, `guard`), 2 changes would be made
//!   (`apply --check`, as configuration managers expect), 3 error, 4 invalid policy.
//! - `connect` (`connect.rs`, run by ordinary users): 0 the viewer ran, 1 nothing to
//!   open now, 2 invalid policy, 3 any other failure.
#![forbid(unsafe_code)]

mod connect;
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
    after_help = "Exit status of check, plan, explain: 0 valid / planned / allowed, 1 denied (explain), 2 invalid policy, 3 any other error.\n\
                  Exit status of apply, verify, guard, uninstall, log: 0 ok, 1 drift (verify, guard), 2 changes would be made (apply --check), 3 error, 4 invalid policy.\n\
                  Exit status of connect: 0 the viewer ran, 1 nothing to open now, 2 invalid policy, 3 any other error.\n\
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
    /// Make the system match the policy: validated first, idempotent, journaled, rolled back on failure.
    Apply {
        /// Policy file.
        #[arg(default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        /// Change nothing; list what would change and exit 2 if anything would.
        #[arg(long)]
        check: bool,
    },
    /// Compare the live system with the policy: exit 0 only when they match, 1 on drift.
    Verify {
        /// Policy file.
        #[arg(default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        /// Print the report (access matrix, drift) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the pinned commands' owners and modes and the special group's members.
    Guard {
        /// Policy file.
        #[arg(default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        /// Restore owners and modes (memberships are only reported).
        #[arg(long)]
        repair: bool,
    },
    /// Remove everything vmgate installed and restore the original owners and modes (needs no policy).
    Uninstall,
    /// Open your VM's console: the one open to you now, or CONSOLE (run as yourself).
    Connect(connect::ConnectArgs),
    /// Refused connection attempts from the kernel log, with user and console names.
    Log {
        /// Policy file (for the log prefix and the console names).
        #[arg(default_value = DEFAULT_POLICY)]
        policy: PathBuf,
    },
}

enum Failure {
    /// Diagnostics, how to print them, and the exit code (2 for check/plan/explain, 4
    /// for the subcommands that act on the system, where 2 means "changes").
    Invalid(vmgate_policy::Diagnostics, Format, u8),
    Other(anyhow::Error),
}

/// The exit code of an invalid policy in `apply`, `verify`, `guard` and `log`.
const EXIT_INVALID_APPLY: u8 = 4;

impl Failure {
    /// `vmgate_apply`'s errors: an invalid policy prints its diagnostics (exit 4),
    /// anything else is exit 3.
    fn from_apply(e: vmgate_apply::Error, format: Format) -> Self {
        match e {
            vmgate_apply::Error::Invalid(d) => Self::Invalid(d, format, EXIT_INVALID_APPLY),
            e => Self::Other(e.into()),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(Failure::Invalid(d, Format::Text, code)) => {
            eprintln!("{d}");
            eprintln!("\n{} problem(s) in {}", d.items.len(), d.file);
            ExitCode::from(code)
        }
        Err(Failure::Invalid(d, Format::Json, code)) => {
            let v = serde_json::json!({"valid": false, "errors": d.located()});
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::from(code)
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
        let text = read_policy(&p.policy)?;
        (p.policy.display().to_string(), text, Box::new(nss::Nss))
    };
    let input = CheckInput {
        file: &name,
        text: &text,
        system_timezone: TimeZone::try_system().unwrap_or(TimeZone::UTC),
    };
    match vmgate_policy::check(&input, dir.as_ref()) {
        Ok(policy) => Ok((policy, dir)),
        Err(d) => Err(Failure::Invalid(d, p.format, 2)),
    }
}

fn read_policy(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the policy {}", path.display()))
}

/// What every `vmgate_apply` subcommand starts from: the policy file, planned now with
/// the real defaults. The units vmgate installs re-run it by its absolute path.
fn source(path: &std::path::Path) -> anyhow::Result<vmgate_apply::Source> {
    let text = read_policy(path)?;
    let mut src = vmgate_apply::Source::new(&path.display().to_string(), &text, Timestamp::now());
    src.plan.policy_path = std::path::absolute(path)
        .with_context(|| format!("cannot make {} an absolute path", path.display()))?
        .display()
        .to_string();
    Ok(src)
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
        Command::Apply { policy, check } => {
            let src = source(&policy)?;
            let mode = if check {
                vmgate_apply::Mode::Check
            } else {
                vmgate_apply::Mode::Apply
            };
            let report = vmgate_apply::apply(&src, &vmgate_apply::Options::default(), mode)
                .map_err(|e| Failure::from_apply(e, Format::Text))?;
            print!("{}", report.to_text());
            Ok(if check && report.changed() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Verify { policy, json } => {
            let format = if json { Format::Json } else { Format::Text };
            let src = source(&policy)?;
            let report = vmgate_apply::verify(&src, &vmgate_apply::Options::default())
                .map_err(|e| Failure::from_apply(e, format))?;
            match format {
                Format::Text => print!("{}", report.to_text()),
                Format::Json => print_json(&report)?,
            }
            Ok(ok_or_drift(report.ok()))
        }
        Command::Guard { policy, repair } => {
            let src = source(&policy)?;
            let report = vmgate_apply::guard(&src, &vmgate_apply::Options::default(), repair)
                .map_err(|e| Failure::from_apply(e, Format::Text))?;
            print!("{}", report.to_text());
            Ok(ok_or_drift(report.ok()))
        }
        Command::Uninstall => {
            let report = vmgate_apply::uninstall(&vmgate_apply::Options::default())
                .map_err(|e| Failure::from_apply(e, Format::Text))?;
            print!("{}", report.to_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Connect(args) => connect::run(&args),
        Command::Log { policy } => {
            let src = source(&policy).context(
                "without a policy, `journalctl -k --grep 'vmgate denied'` shows the same lines",
            )?;
            let loaded = vmgate_apply::load(&src)
                .map_err(|d| Failure::Invalid(d, Format::Text, EXIT_INVALID_APPLY))?;
            let refusals = vmgate_apply::log(
                &loaded.policy.defaults.log_prefix,
                Some(&loaded.policy),
                None,
            )
            .map_err(|e| Failure::from_apply(e, Format::Text))?;
            for r in &refusals {
                println!("{}", r.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// 0 when the live state matches the policy, 1 on drift.
fn ok_or_drift(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
