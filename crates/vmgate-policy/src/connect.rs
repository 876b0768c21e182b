//! `vmgate connect`: which consoles the caller may open now, the exact sudo command
//! the drop-in allows for each, and plain words when there is none or sudo refuses.
//!
//! The command comes from the same [`SudoRule`] the drop-in line is rendered from, so
//! what `vmgate connect` runs is, word for word, what sudo admits.
//!
//! ```
//! use vmgate_policy::{CheckInput, UserEntry, check, connect, example};
//!
//! let input = CheckInput { file: "office.toml", text: example::OFFICE_TOML, system_timezone: jiff::tz::TimeZone::UTC };
//! let policy = check(&input, &example::demo_directory()).unwrap();
//! let myself = UserEntry { name: "myself".into(), uid: 1021, gid: 100 };
//! let now = "2026-12-02T09:00:00Z".parse().unwrap();
//! let c = connect::choices(&policy, "/etc/vmgate", &myself, now);
//! let launch = c.pick(None).unwrap().single().unwrap();
//! assert_eq!(
//!     launch.argv().join(" "),
//!     "sudo -u myself -g spicegrp /usr/bin/remote-viewer -- /etc/vmgate/consoles/debianx.vv"
//! );
//! ```

use std::fmt::{self, Write as _};

use jiff::Timestamp;

use crate::directory::UserEntry;
use crate::explain::explain;
use crate::policy::Policy;
use crate::sudoers::{self, SudoRule};

/// A console the caller may open now, and how.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Launch {
    /// Console name.
    pub console: String,
    /// Its window title, when the policy gives one.
    pub title: Option<String>,
    /// TLS.
    pub tls: bool,
    /// When the admitting window closes (`None`: always open).
    pub closes_at_local: Option<String>,
    /// The sudoers rule that lets the caller start the viewer for it.
    pub rule: SudoRule,
}

impl Launch {
    /// `sudo -u USER -g GROUP VIEWER -- VV`: the words of the rule's command, in order.
    #[must_use]
    pub fn argv(&self) -> Vec<String> {
        self.rule.argv()
    }

    /// Whether sudo runs the viewer without asking for the caller's password.
    #[must_use]
    pub fn nopasswd(&self) -> bool {
        self.rule.nopasswd
    }
}

/// A console that names the caller but is closed now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Later {
    /// Console name.
    pub console: String,
    /// When it opens next for the caller, in the policy's zone (`None`: not within two weeks).
    pub next_opening_local: Option<String>,
    /// The instant of that opening.
    pub next_opening: Option<Timestamp>,
}

/// Everything `vmgate connect` needs to know about the caller at one instant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[must_use]
pub struct Choices {
    /// The caller's name.
    pub user: String,
    /// The caller's uid.
    pub uid: u32,
    /// The instant in the policy's zone.
    pub local_time: String,
    /// Consoles open to the caller now, in policy order.
    pub open: Vec<Launch>,
    /// Consoles that name the caller but are closed now, soonest opening first.
    pub later: Vec<Later>,
}

/// Which consoles `user` may open at `at`, and which open later.
#[must_use = "the choices say what to launch"]
pub fn choices(policy: &Policy, etc_dir: &str, user: &UserEntry, at: Timestamp) -> Choices {
    let rules = sudoers::rules(policy, etc_dir);
    let mut c = Choices {
        user: user.name.clone(),
        uid: user.uid,
        local_time: String::new(),
        open: Vec::new(),
        later: Vec::new(),
    };
    for console in &policy.consoles {
        let Ok(e) = explain(policy, etc_dir, user, &console.name, at) else {
            continue;
        };
        c.local_time.clone_from(&e.local_time);
        // `command` is set when a grant names the caller; root's exemption has none.
        if e.command.is_none() {
            continue;
        }
        let vv = policy.vv_path(etc_dir, console);
        let Some((rule, _)) = rules
            .iter()
            .find(|(r, _)| r.uid == user.uid && r.args.last() == Some(&vv))
        else {
            continue;
        };
        if e.allowed {
            c.open.push(Launch {
                console: console.name.clone(),
                title: console.title.clone(),
                tls: console.tls,
                closes_at_local: e.closes_at_local,
                rule: rule.clone(),
            });
        } else {
            c.later.push(Later {
                console: console.name.clone(),
                next_opening_local: e.next_opening_local,
                next_opening: e.next_opening,
            });
        }
    }
    // Soonest first; "not within two weeks" last.
    c.later
        .sort_by_key(|l| (l.next_opening.is_none(), l.next_opening));
    c
}

/// What to do, when there is something to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick<'a> {
    /// Exactly one console: open it.
    One(&'a Launch),
    /// Several are open and none was named: ask which.
    Ask(Vec<&'a Launch>),
}

impl<'a> Pick<'a> {
    /// The one console, if there is exactly one.
    #[must_use]
    pub fn single(&self) -> Option<&'a Launch> {
        match self {
            Pick::One(l) => Some(l),
            Pick::Ask(_) => None,
        }
    }
}

/// Why there is nothing to open; [`fmt::Display`] says it in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoConsole {
    /// No console names the caller at all.
    NoneForYou {
        /// The caller.
        user: String,
    },
    /// Consoles name the caller, but none is open now.
    NoneOpenNow {
        /// The caller.
        user: String,
        /// Now, in the policy's zone.
        local_time: String,
        /// His consoles and their next openings.
        later: Vec<Later>,
    },
    /// The named console is the caller's, but closed now.
    Closed {
        /// The console.
        later: Later,
        /// Now, in the policy's zone.
        local_time: String,
    },
    /// The named console is not one the caller may open (or does not exist: the
    /// answer is the same, so users do not learn other people's console names).
    NotYours {
        /// As asked.
        console: String,
        /// The caller's consoles.
        yours: Vec<String>,
    },
}

fn when(l: &Later) -> String {
    l.next_opening_local.as_ref().map_or_else(
        || "does not open within the next two weeks".to_string(),
        |t| format!("opens next at {t}"),
    )
}

impl fmt::Display for NoConsole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoConsole::NoneForYou { user } => write!(
                f,
                "no console is granted to {user}: ask your administrator to add you to a console's `allow` in the vmgate policy"
            ),
            NoConsole::NoneOpenNow {
                user,
                local_time,
                later,
            } => {
                write!(f, "none of {user}'s consoles is open now ({local_time}):")?;
                for l in later {
                    write!(f, "\n  {}: {}", l.console, when(l))?;
                }
                Ok(())
            }
            NoConsole::Closed { later, local_time } => write!(
                f,
                "console {} is closed for you now ({local_time}); it {}",
                later.console,
                when(later)
            ),
            NoConsole::NotYours { console, yours } => {
                write!(f, "console `{console}` is not one you may open")?;
                if yours.is_empty() {
                    write!(f, " (no console is granted to you)")
                } else {
                    write!(f, "; yours: {}", yours.join(", "))
                }
            }
        }
    }
}

impl std::error::Error for NoConsole {}

impl Choices {
    /// The console to open: `name` when given, else the only open one, else ask.
    ///
    /// # Errors
    /// Nothing to open, with the reason and the next openings.
    pub fn pick(&self, name: Option<&str>) -> Result<Pick<'_>, NoConsole> {
        if let Some(name) = name {
            if let Some(l) = self.open.iter().find(|l| l.console == name) {
                return Ok(Pick::One(l));
            }
            if let Some(l) = self.later.iter().find(|l| l.console == name) {
                return Err(NoConsole::Closed {
                    later: l.clone(),
                    local_time: self.local_time.clone(),
                });
            }
            return Err(NoConsole::NotYours {
                console: name.to_string(),
                yours: self.yours(),
            });
        }
        match self.open.as_slice() {
            [one] => Ok(Pick::One(one)),
            [] if self.later.is_empty() => Err(NoConsole::NoneForYou {
                user: self.user.clone(),
            }),
            [] => Err(NoConsole::NoneOpenNow {
                user: self.user.clone(),
                local_time: self.local_time.clone(),
                later: self.later.clone(),
            }),
            many => Ok(Pick::Ask(many.iter().collect())),
        }
    }

    /// Every console of the caller, open or not, in policy order of first mention.
    #[must_use]
    pub fn yours(&self) -> Vec<String> {
        self.open
            .iter()
            .map(|l| l.console.clone())
            .chain(self.later.iter().map(|l| l.console.clone()))
            .collect()
    }

    /// The numbered list shown when several consoles are open.
    #[must_use]
    pub fn menu(&self) -> String {
        let mut s = format!("{} may open these consoles now:\n", self.user);
        for (i, l) in self.open.iter().enumerate() {
            let until = l
                .closes_at_local
                .as_ref()
                .map_or(String::new(), |t| format!(" (until {t})"));
            let title = l
                .title
                .as_ref()
                .map_or(String::new(), |t| format!(" \"{t}\""));
            let _ = writeln!(s, "  {}) {}{title}{until}", i + 1, l.console);
        }
        s
    }

    /// The console an answer to [`Choices::menu`] names: its number or its name.
    #[must_use]
    pub fn answer(&self, text: &str) -> Option<&Launch> {
        let text = text.trim();
        if let Ok(n) = text.parse::<usize>() {
            return n.checked_sub(1).and_then(|i| self.open.get(i));
        }
        self.open.iter().find(|l| l.console == text)
    }
}

/// What sudo's own message on standard error means, for people, or `None` when the
/// text holds no message of sudo's (it came from the viewer).
///
/// Covers sudo 1.9 and sudo-rs, in the C locale the messages are matched in.
#[must_use]
pub fn explain_sudo(stderr: &str, launch: &Launch) -> Option<String> {
    let console = &launch.console;
    let said = |needles: &[&str]| needles.iter().any(|n| stderr.contains(n));
    let admin = "ask your administrator to run `vmgate apply` (and `vmgate verify`)";
    if said(&[
        "a terminal is required",
        "no tty present",
        "interactive authentication is required",
    ]) {
        return Some(format!(
            "the sudo rule for console {console} asks for your own login password, and there is no terminal to type it in: run `vmgate connect` from a terminal window"
        ));
    }
    if said(&["a password is required"]) {
        return Some(format!(
            "sudo asks for a password to open console {console}, but the policy says it should not: the installed sudo rules are not the policy's; {admin}"
        ));
    }
    if said(&[
        "incorrect password attempt",
        "Authentication failed",
        "authentication failure",
    ]) {
        return Some(format!(
            "sudo did not accept the password: it wants your own login password (not the VM's), to open console {console}"
        ));
    }
    if said(&[
        "is not allowed to execute",
        "is not in the sudoers file",
        "may not run sudo",
        "I'm afraid I can't do that",
    ]) {
        return Some(format!(
            "sudo has no rule letting you open console {console} ({}): the installed sudo rules are not the policy's; {admin}",
            launch.rule.invocation()
        ));
    }
    if said(&["unknown group", "unknown user"]) {
        return Some(format!(
            "sudo does not know the viewer's group {}: vmgate is not applied on this machine; {admin}",
            launch.rule.group
        ));
    }
    if said(&["command not found", "unable to execute"]) {
        return Some(format!(
            "sudo could not start the viewer {}: is it installed? ({admin})",
            launch.rule.command
        ));
    }
    None
}

/// Whether a line on standard error is sudo's own (not the viewer's).
#[must_use]
pub fn is_sudo_line(line: &str) -> bool {
    [
        "sudo:",
        "sudo-rs:",
        "[sudo",
        "Sorry, user",
        "Sorry, try again",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckInput, check, example};

    fn office() -> Policy {
        check(
            &CheckInput {
                file: "office.toml",
                text: example::OFFICE_TOML,
                system_timezone: jiff::tz::TimeZone::UTC,
            },
            &example::demo_directory(),
        )
        .unwrap()
    }

    fn user(name: &str, uid: u32) -> UserEntry {
        UserEntry {
            name: name.into(),
            uid,
            gid: 100,
        }
    }

    /// Wednesday 2026-12-02 10:00 in Berlin.
    fn wednesday() -> Timestamp {
        "2026-12-02T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_command_is_the_sudoers_line_word_for_word() {
        let p = office();
        let sudoers = sudoers::render(&p, "/etc/vmgate");
        for (name, uid) in [
            ("myself", 1021),
            ("mybro", 1022),
            ("anne", 1024),
            ("charlie", 1025),
        ] {
            let c = choices(&p, "/etc/vmgate", &user(name, uid), wednesday());
            for l in &c.open {
                let argv = l.argv();
                assert_eq!(argv[..5], ["sudo", "-u", name, "-g", "spicegrp"]);
                // What sudo compares: the command and its arguments, escaped as in sudoers.
                let words: Vec<String> = argv[5..]
                    .iter()
                    .map(|w| sudoers::escape_word(w).unwrap())
                    .collect();
                let line = format!("{name} ALL=({name}:spicegrp) {}", words.join(" "));
                assert!(
                    sudoers.lines().any(|s| s == line),
                    "{line} is not in\n{sudoers}"
                );
            }
        }
    }

    #[test]
    fn one_open_console_is_picked_several_are_asked_none_says_when() {
        let p = office();
        let at = wednesday();
        let mine = choices(&p, "/etc/vmgate", &user("myself", 1021), at);
        assert_eq!(
            mine.pick(None).unwrap().single().unwrap().console,
            "debianx"
        );

        // charlie: leaptest (bookkeeping group) and winbooks.
        let charlie = choices(&p, "/etc/vmgate", &user("charlie", 1025), at);
        let Pick::Ask(many) = charlie.pick(None).unwrap() else {
            panic!("two consoles are open to charlie");
        };
        assert_eq!(
            many.iter().map(|l| l.console.as_str()).collect::<Vec<_>>(),
            ["leaptest", "winbooks"]
        );
        assert_eq!(charlie.answer("2").unwrap().console, "winbooks");
        assert_eq!(charlie.answer(" leaptest\n").unwrap().console, "leaptest");
        assert!(charlie.answer("3").is_none() && charlie.answer("0").is_none());
        assert_eq!(
            charlie
                .pick(Some("winbooks"))
                .unwrap()
                .single()
                .unwrap()
                .console,
            "winbooks"
        );

        // boss at 10:00: winbooks opens at 18:00 today.
        let boss = choices(&p, "/etc/vmgate", &user("boss", 1026), at);
        let e = boss.pick(None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "none of boss's consoles is open now (Wed 2026-12-02 10:00 CET):\n  winbooks: opens next at Wed 2026-12-02 18:00 CET"
        );
        assert_eq!(
            boss.pick(Some("winbooks")).unwrap_err().to_string(),
            "console winbooks is closed for you now (Wed 2026-12-02 10:00 CET); it opens next at Wed 2026-12-02 18:00 CET"
        );
        // Someone else's console, and an unknown one, get the same answer.
        for other in ["debianx", "no-such-vm"] {
            assert_eq!(
                boss.pick(Some(other)).unwrap_err().to_string(),
                format!("console `{other}` is not one you may open; yours: winbooks")
            );
        }

        // mark has only a pinned command, no console.
        let mark = choices(&p, "/etc/vmgate", &user("mark", 1028), at);
        assert_eq!(
            mark.pick(None).unwrap_err(),
            NoConsole::NoneForYou {
                user: "mark".into()
            }
        );
        assert!(mark.menu().starts_with("mark may open"));
    }

    #[test]
    fn sudo_messages_become_plain_words() {
        let p = office();
        let mine = choices(&p, "/etc/vmgate", &user("myself", 1021), wednesday());
        let l = &mine.open[0];
        let cases = [
            (
                "sudo: a terminal is required to read the password; either use the -S option",
                "no terminal",
            ),
            (
                "sudo: a password is required\n",
                "policy says it should not",
            ),
            (
                "sudo: 3 incorrect password attempts\n",
                "own login password",
            ),
            (
                "Sorry, user myself is not allowed to execute '/usr/bin/remote-viewer -- /etc/vmgate/consoles/debianx.vv' as myself:spicegrp on h.",
                "no rule letting you open console debianx",
            ),
            ("sudo: unknown group spicegrp\n", "not applied"),
            (
                "sudo-rs: I'm sorry myself. I'm afraid I can't do that",
                "no rule",
            ),
        ];
        for (stderr, want) in cases {
            let got = explain_sudo(stderr, l).unwrap_or_default();
            assert!(got.contains(want), "{stderr:?} → {got:?}");
        }
        assert_eq!(explain_sudo("(remote-viewer:1): Gtk-WARNING", l), None);
        assert!(is_sudo_line("sudo: a password is required"));
        assert!(!is_sudo_line("(remote-viewer:4046): virt-viewer-DEBUG"));
    }
}
