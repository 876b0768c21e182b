//! `vmgate connect [CONSOLE]`: an ordinary user opens his console.
//!
//! Replaces the posts' launcher script: finds the consoles the caller may open now
//! (`vmgate_policy::connect`), asks when there are several, and runs
//! `sudo -u CALLER -g GROUP VIEWER -- ETC/consoles/NAME.vv`, the words the sudoers
//! drop-in pins, with the caller's environment (sudo keeps only the policy's
//! `env_keep`: the X11 and Wayland display variables and the policy's extras).
//! Sudo's own messages are passed on and then said again in plain words.
//!
//! Exit status: 0 the viewer ran and ended normally; 1 nothing to open now (the
//! message says why and when the next window opens); 2 invalid policy; 3 any other
//! failure (sudo refused, no display, run as another user, the viewer failed).

use std::io::{BufRead as _, BufReader, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, anyhow};
use jiff::Timestamp;
use vmgate_policy::UserEntry;
use vmgate_policy::connect::{Choices, Launch, Pick, choices, explain_sudo, is_sudo_line};

use crate::{DEFAULT_POLICY, Failure, Format, PolicyArgs, load};

/// The flags of `vmgate connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The console to open; without it, the only one open to you now (or a question).
    console: Option<String>,
    /// Policy file (it holds no secrets, so users can read it).
    #[arg(long, default_value = DEFAULT_POLICY)]
    policy: PathBuf,
    /// vmgate's directory under /etc, where the connection files are (as `vmgate apply` was told).
    #[arg(long, default_value = "/etc/vmgate", value_name = "DIR")]
    etc_dir: String,
    /// Print the sudo command instead of running it.
    #[arg(long)]
    print: bool,
}

/// Exit status when there is nothing to open now.
const EXIT_NOTHING: u8 = 1;

pub fn run(args: &ConnectArgs) -> Result<ExitCode, Failure> {
    let uid = nix::unistd::getuid().as_raw();
    refuse_other_invoker(uid, std::env::var("SUDO_UID").ok().as_deref())?;
    let user = caller(uid)?;
    let (policy, _) = load(&PolicyArgs {
        policy: args.policy.clone(),
        example: false,
        format: Format::Text,
    })?;
    let c = choices(&policy, &args.etc_dir, &user, Timestamp::now());
    let launch = match c.pick(args.console.as_deref()) {
        Ok(Pick::One(l)) => l,
        Ok(Pick::Ask(_)) => match ask(&c)? {
            Some(l) => l,
            None => return Ok(ExitCode::from(EXIT_NOTHING)),
        },
        Err(e) => {
            eprintln!("vmgate: {e}");
            return Ok(ExitCode::from(EXIT_NOTHING));
        }
    };
    let argv = sudo_argv(launch);
    if args.print {
        let words: Vec<String> = argv.iter().map(|w| shell_word(w)).collect();
        println!("{}", words.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        return Err(anyhow!(
            "no graphical session: DISPLAY and WAYLAND_DISPLAY are unset; run `vmgate connect` from a terminal in your desktop session"
        )
        .into());
    }
    let until = launch
        .closes_at_local
        .as_ref()
        .map_or(String::new(), |t| format!(" (your window closes at {t})"));
    eprintln!("vmgate: opening console {}{until}", launch.console);
    if !launch.nopasswd() {
        eprintln!(
            "vmgate: sudo asks for your own login password (not the VM's) to start the viewer"
        );
    }
    launch_viewer(launch, &argv)
}

/// `sudo -n` where the rule needs no password (so a stale rule that asks for one fails
/// with a message instead of a prompt), a prompt that says whose password otherwise.
fn sudo_argv(launch: &Launch) -> Vec<String> {
    let mut argv = launch.argv();
    let extra: Vec<String> = if launch.nopasswd() {
        vec!["-n".into()]
    } else {
        vec![
            "-p".into(),
            format!(
                "vmgate: password of %p (to open console {}): ",
                launch.console
            ),
        ]
    };
    argv.splice(1..1, extra);
    argv
}

/// `w` as a POSIX shell reads it back: plain words as they are, others single-quoted.
fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// `vmgate connect` run through sudo as someone else (`sudo -u bob vmgate connect`)
/// would open bob's console on the invoker's screen: refused.
fn refuse_other_invoker(uid: u32, sudo_uid: Option<&str>) -> anyhow::Result<()> {
    match sudo_uid {
        Some(s) if s.parse::<u32>().ok() != Some(uid) => Err(anyhow!(
            "vmgate connect opens the console of the user who runs it, but sudo made uid {s} run it as uid {uid}: run `vmgate connect` as yourself, without sudo"
        )),
        _ => Ok(()),
    }
}

fn caller(uid: u32) -> anyhow::Result<UserEntry> {
    let u = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .with_context(|| format!("cannot look up uid {uid}"))?
        .ok_or_else(|| {
            anyhow!("uid {uid} has no user name (`getent passwd {uid}` finds nothing)")
        })?;
    Ok(UserEntry {
        name: u.name,
        uid,
        gid: u.gid.as_raw(),
    })
}

/// Several consoles are open: ask on the terminal, or say how to name one.
fn ask(c: &Choices) -> anyhow::Result<Option<&Launch>> {
    if !std::io::stdin().is_terminal() {
        eprint!("{}", c.menu());
        eprintln!("vmgate: name one: vmgate connect CONSOLE");
        return Ok(None);
    }
    let mut err = std::io::stderr();
    for _ in 0..3 {
        write!(err, "{}open which one? (number or name) ", c.menu())?;
        err.flush()?;
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if let Some(l) = c.answer(&line) {
            return Ok(Some(l));
        }
        writeln!(err, "vmgate: `{}` is not in the list", line.trim())?;
    }
    Ok(None)
}

/// Runs sudo with the caller's terminal, passing its standard error through and
/// keeping sudo's own lines to explain a refusal.
fn launch_viewer(launch: &Launch, argv: &[String]) -> Result<ExitCode, Failure> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {} (is sudo installed?)", argv[0]))?;
    let stderr = child.stderr.take().context("sudo's standard error")?;
    let forward = std::thread::spawn(move || {
        let mut said = String::new();
        let mut reader = BufReader::new(stderr);
        let mut out = std::io::stderr();
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let _ = out.write_all(&line);
            let text = String::from_utf8_lossy(&line);
            if is_sudo_line(&text) {
                said.push_str(&text);
            }
            line.clear();
        }
        said
    });
    let status = child.wait().context("waiting for sudo")?;
    let said = forward.join().unwrap_or_default();
    if status.success() {
        return Ok(ExitCode::SUCCESS);
    }
    let msg = if let Some(plain) = explain_sudo(&said, launch) {
        plain
    } else if !said.is_empty() {
        format!(
            "sudo refused to start the viewer (its message is above); `vmgate explain --user {} --console {}` says what the policy allows",
            launch.rule.user, launch.console
        )
    } else {
        format!("the viewer ended with {status}")
    };
    Err(anyhow::Error::msg(msg).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_caller_himself_may_connect() {
        assert!(refuse_other_invoker(1000, None).is_ok());
        assert!(refuse_other_invoker(1000, Some("1000")).is_ok());
        let e = refuse_other_invoker(0, Some("1000"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("uid 1000") && e.contains("without sudo"), "{e}");
        assert!(refuse_other_invoker(1001, Some("1000")).is_err());
        assert!(refuse_other_invoker(1001, Some("garbage")).is_err());
    }

    #[test]
    fn sudo_options_go_before_the_pinned_words() {
        let rule = vmgate_policy::sudoers::SudoRule {
            user: "me".into(),
            uid: 1000,
            group: "vmconsole".into(),
            nopasswd: true,
            command: "/usr/bin/remote-viewer".into(),
            args: vec!["--".into(), "/etc/vmgate/consoles/vm.vv".into()],
        };
        let mut l = Launch {
            console: "vm".into(),
            title: None,
            tls: false,
            closes_at_local: None,
            rule,
        };
        assert_eq!(
            sudo_argv(&l).join(" "),
            "sudo -n -u me -g vmconsole /usr/bin/remote-viewer -- /etc/vmgate/consoles/vm.vv"
        );
        assert_eq!(shell_word("it's here"), "'it'\\''s here'");
        assert_eq!(shell_word("/a/b.vv"), "/a/b.vv");
        l.rule.nopasswd = false;
        let argv = sudo_argv(&l);
        assert_eq!(argv[1], "-p");
        assert_eq!(argv[3..].join(" "), l.argv()[1..].join(" "));
    }
}
