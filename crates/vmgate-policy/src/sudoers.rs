//! The sudoers drop-in: one line per granted user and console, pinning the
//! run-as user to the caller and the group to the special group.
//!
//! Every word we place in sudoers must mean exactly one argv element to both
//! sudo 1.9 and sudo-rs, so the allowed alphabet is small: letters, digits and
//! `/ . _ + - @ %`, plus `, : = \` escaped with a backslash as sudoers(5)
//! requires. Wildcards (`* ? [ ]`; `?` is one to sudo and rejected by sudo-rs),
//! whitespace, quotes and everything else are refused by `check`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::policy::Policy;

/// Escapes one sudoers word (a command path or argument).
///
/// # Errors
/// Why the word cannot be placed safely.
pub fn escape_word(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("an empty argument cannot be written in sudoers".into());
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '/' | '.' | '_' | '+' | '-' | '@' | '%' => {
                out.push(c)
            }
            ',' | ':' | '=' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '*' | '?' | '[' | ']' => return Err(format!("`{c}` is a wildcard to sudo")),
            c if c.is_whitespace() => {
                return Err("whitespace would split it into several arguments".into());
            }
            c => {
                return Err(format!(
                    "the character `{}` is not allowed",
                    c.escape_default()
                ));
            }
        }
    }
    if out.starts_with('#') {
        return Err("a leading `#` starts a comment".into());
    }
    Ok(out)
}

/// A user or group as a sudoers word: the name when it is plain, else `#id`.
#[must_use]
pub fn principal_word(name: &str, id: u32) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if plain {
        name.to_string()
    } else {
        format!("#{id}")
    }
}

/// One compiled sudoers rule, also kept as data for `verify` and tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SudoRule {
    /// The invoking (and run-as) user.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// The run-as group.
    pub group: String,
    /// Password prompt disabled.
    pub nopasswd: bool,
    /// The command path.
    pub command: String,
    /// Its exact arguments.
    pub args: Vec<String>,
}

impl SudoRule {
    /// The sudoers line.
    #[must_use]
    pub fn line(&self, group_gid: u32) -> String {
        let u = principal_word(&self.user, self.uid);
        let g = principal_word(&self.group, group_gid);
        let mut cmd = escape_word(&self.command).unwrap_or_else(|_| self.command.clone());
        for a in &self.args {
            cmd.push(' ');
            cmd.push_str(&escape_word(a).unwrap_or_else(|_| a.clone()));
        }
        let tag = if self.nopasswd { "NOPASSWD: " } else { "" };
        format!("{u} ALL=({u}:{g}) {tag}{cmd}")
    }

    /// The words a user runs: `sudo -u USER -g GROUP COMMAND ARGS...`. Sudo compares
    /// the command and its arguments with [`SudoRule::line`] word for word.
    #[must_use]
    pub fn argv(&self) -> Vec<String> {
        let mut v = vec![
            "sudo".to_string(),
            "-u".into(),
            self.user.clone(),
            "-g".into(),
            self.group.clone(),
            self.command.clone(),
        ];
        v.extend(self.args.iter().cloned());
        v
    }

    /// The command line a user types to run it.
    #[must_use]
    pub fn invocation(&self) -> String {
        self.argv().join(" ")
    }
}

/// The rules of a policy: one per (user, console) and per (user, pin).
#[must_use]
pub fn rules(policy: &Policy, etc_dir: &str) -> Vec<(SudoRule, u32)> {
    let mut out = Vec::new();
    let g = &policy.defaults.group;
    for c in &policy.consoles {
        let mut seen = BTreeMap::new();
        for grant in &c.grants {
            for p in &grant.principals {
                seen.entry(p.uid).or_insert_with(|| p.name.clone());
            }
        }
        for (uid, name) in seen {
            out.push((
                SudoRule {
                    user: name,
                    uid,
                    group: g.name.clone(),
                    nopasswd: c.nopasswd,
                    command: policy.defaults.viewer.clone(),
                    args: vec!["--".into(), policy.vv_path(etc_dir, c)],
                },
                g.gid,
            ));
        }
    }
    for pin in &policy.pins {
        for p in &pin.principals {
            out.push((
                SudoRule {
                    user: p.name.clone(),
                    uid: p.uid,
                    group: pin.group.name.clone(),
                    nopasswd: pin.nopasswd,
                    command: pin.command.clone(),
                    args: pin.args.clone(),
                },
                pin.group.gid,
            ));
        }
    }
    out
}

/// Renders the drop-in (`/etc/sudoers.d/vmgate`).
#[must_use]
pub fn render(policy: &Policy, etc_dir: &str) -> String {
    let rules = rules(policy, etc_dir);
    let mut s = String::new();
    s.push_str("# Generated by vmgate from the policy; do not edit (vmgate apply rewrites it).\n");
    s.push_str("# Each line lets one user run one pinned command as themself, with the\n");
    s.push_str("# command's group, and with exactly these arguments.\n");
    let mut users: Vec<(String, u32)> = rules
        .iter()
        .map(|(r, _)| (principal_word(&r.user, r.uid), r.uid))
        .collect();
    users.sort_by_key(|u| u.1);
    users.dedup();
    if !users.is_empty() {
        s.push_str("\nUser_Alias VMGATE_USERS = ");
        for (i, (u, _)) in users.iter().enumerate() {
            if i > 0 {
                s.push_str(if i % 8 == 0 { ", \\\n    " } else { ", " });
            }
            s.push_str(u);
        }
        s.push('\n');
        let _ = writeln!(
            s,
            "Defaults:VMGATE_USERS env_keep += \"{}\"",
            policy.defaults.env_keep.join(" ")
        );
        s.push('\n');
    }
    for (r, gid) in &rules {
        s.push_str(&r.line(*gid));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_sudoers_requires_and_refuses_wildcards() {
        assert_eq!(escape_word("-L").unwrap(), "-L");
        assert_eq!(escape_word("a,b:c=d").unwrap(), "a\\,b\\:c\\=d");
        for bad in [
            "spice://h?tls-port=1",
            "*",
            "a b",
            "",
            "[x]",
            "it's",
            "x\"y",
            "\u{e9}",
        ] {
            assert!(escape_word(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn odd_names_fall_back_to_numeric_ids() {
        assert_eq!(principal_word("myself", 1021), "myself");
        assert_eq!(principal_word("john@corp", 5000), "#5000");
        assert_eq!(principal_word("1234", 1234), "#1234");
    }
}
