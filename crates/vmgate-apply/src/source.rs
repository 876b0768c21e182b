//! The policy as apply sees it: checked against the system's users and groups, with
//! the groups vmgate creates itself (the special group, the pin groups) allowed to be
//! missing until apply creates them.

use std::cell::RefCell;
use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use vmgate_policy::{
    CheckInput, Diagnostics, Directory, GroupEntry, LookupError, Plan, PlanOptions, Policy,
    UserEntry,
};
use vmgate_system::users;

/// The policy text and how to plan it.
#[derive(Debug, Clone)]
pub struct Source {
    /// File name, for messages.
    pub file: String,
    /// The policy text.
    pub text: String,
    /// The zone used when the policy names none.
    pub system_timezone: TimeZone,
    /// Table name, paths and the plan's instant.
    pub plan: PlanOptions,
}

impl Source {
    /// A policy read from `file`, planned with the real defaults at `now`.
    #[must_use]
    pub fn new(file: &str, text: &str, now: jiff::Timestamp) -> Self {
        Self {
            file: file.into(),
            text: text.into(),
            system_timezone: TimeZone::try_system().unwrap_or(TimeZone::UTC),
            plan: PlanOptions::new(now),
        }
    }
}

/// Users and groups through NSS (`getpwnam`/`getgrnam`, so LDAP and SSSD work); users
/// whose primary group is a group come from the local `/etc/passwd`, as in the binary.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemDirectory;

impl Directory for SystemDirectory {
    fn user(&self, name: &str) -> Result<Option<UserEntry>, LookupError> {
        users::user_by_name(name)
            .map(|u| {
                u.map(|u| UserEntry {
                    name: u.name,
                    uid: u.uid,
                    gid: u.gid,
                })
            })
            .map_err(|e| LookupError(e.to_string()))
    }

    fn group(&self, name: &str) -> Result<Option<GroupEntry>, LookupError> {
        users::group_by_name(name)
            .map(|g| {
                g.map(|g| GroupEntry {
                    name: g.name,
                    gid: g.gid,
                    members: g.members,
                })
            })
            .map_err(|e| LookupError(e.to_string()))
    }

    fn primary_members(&self, gid: u32) -> Vec<String> {
        std::fs::read_to_string("/etc/passwd")
            .map(|text| {
                text.lines()
                    .filter(|l| !l.starts_with('#'))
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 4 && f[3].parse() == Ok(gid)).then(|| f[0].to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn label(&self) -> String {
        "this machine (NSS; primary-group members from /etc/passwd)".into()
    }
}

/// Gids handed out for groups that do not exist yet; never written anywhere.
const PROVISIONAL_GID_BASE: u32 = 0xFFFF_0000;

/// The system directory, answering "a group with no members" for any group that does
/// not exist, and remembering which names it made up.
#[derive(Debug, Default)]
struct Provisional {
    made_up: RefCell<BTreeMap<String, u32>>,
    /// Groups whose members are hidden from the check (verify and guard report them as
    /// drift instead of refusing the policy), and their gids once seen.
    lenient: Vec<String>,
    lenient_gids: RefCell<Vec<u32>>,
}

impl Directory for Provisional {
    fn user(&self, name: &str) -> Result<Option<UserEntry>, LookupError> {
        SystemDirectory.user(name)
    }

    fn group(&self, name: &str) -> Result<Option<GroupEntry>, LookupError> {
        if let Some(mut g) = SystemDirectory.group(name)? {
            if self.lenient.iter().any(|l| l == name) {
                g.members.clear();
                self.lenient_gids.borrow_mut().push(g.gid);
            }
            return Ok(Some(g));
        }
        let mut m = self.made_up.borrow_mut();
        let n = u32::try_from(m.len()).unwrap_or(0);
        let gid = *m
            .entry(name.to_string())
            .or_insert(PROVISIONAL_GID_BASE + n);
        Ok(Some(GroupEntry {
            name: name.to_string(),
            gid,
            members: Vec::new(),
        }))
    }

    fn primary_members(&self, gid: u32) -> Vec<String> {
        if gid >= PROVISIONAL_GID_BASE || self.lenient_gids.borrow().contains(&gid) {
            return Vec::new();
        }
        SystemDirectory.primary_members(gid)
    }

    fn label(&self) -> String {
        SystemDirectory.label()
    }
}

/// A checked policy and its plan.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The policy.
    pub policy: Policy,
    /// Its plan.
    pub plan: Plan,
    /// Groups the policy needs that vmgate creates and that do not exist yet: the plan
    /// holds made-up gids for them until apply has created them.
    pub missing_groups: Vec<String>,
}

/// The groups vmgate may create: the special group and the pin groups.
fn creatable(policy: &Policy) -> Vec<String> {
    let mut v = vec![policy.defaults.group.name.clone()];
    for p in &policy.pins {
        if !v.contains(&p.group.name) {
            v.push(p.group.name.clone());
        }
    }
    v
}

/// Checks and plans the policy. Missing special or pin groups are allowed (apply creates
/// them); any other unknown group is an error as `vmgate check` reports it.
///
/// # Errors
/// Every problem of the policy.
pub fn load(src: &Source) -> Result<Loaded, Diagnostics> {
    load_with(src, Vec::new())
}

/// Like [`load`], but members of the special and pin groups do not make the policy
/// invalid: verify and guard name them as drift.
pub(crate) fn load_lenient(src: &Source) -> Result<Loaded, Diagnostics> {
    load_with(src, special_group_names(&src.text))
}

/// The special group's and the pin groups' names as written (best effort: a policy
/// that does not parse has none, and fails the check anyway).
fn special_group_names(text: &str) -> Vec<String> {
    let Ok(doc) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    let mut out = vec![
        doc.get("defaults")
            .and_then(|d| d.get("group"))
            .and_then(toml::Value::as_str)
            .unwrap_or(vmgate_policy::validate::DEFAULT_GROUP)
            .to_string(),
    ];
    if let Some(pins) = doc.get("pin").and_then(toml::Value::as_array) {
        for p in pins {
            if let Some(g) = p.get("group").and_then(toml::Value::as_str) {
                out.push(g.to_string());
            }
        }
    }
    out
}

fn load_with(src: &Source, lenient: Vec<String>) -> Result<Loaded, Diagnostics> {
    let input = CheckInput {
        file: &src.file,
        text: &src.text,
        system_timezone: src.system_timezone.clone(),
    };
    let dir = Provisional {
        lenient,
        ..Provisional::default()
    };
    let policy = match vmgate_policy::check(&input, &dir) {
        Ok(p) => p,
        // The same input through the plain directory gives the user's own diagnostics
        // (an unknown group counts there).
        Err(_) => return Err(check_plain(&input)),
    };
    let made_up: Vec<String> = dir.made_up.borrow().keys().cloned().collect();
    let allowed = creatable(&policy);
    if made_up.iter().any(|g| !allowed.contains(g)) {
        return Err(check_plain(&input));
    }
    let plan = vmgate_policy::plan(&policy, &src.plan);
    Ok(Loaded {
        policy,
        plan,
        missing_groups: made_up,
    })
}

fn check_plain(input: &CheckInput<'_>) -> Diagnostics {
    match vmgate_policy::check(input, &SystemDirectory) {
        Err(d) => d,
        Ok(_) => unreachable_valid(),
    }
}

/// The plain check cannot pass where the provisional one failed: the provisional
/// directory only adds groups. Kept as a function so the reasoning has a name.
fn unreachable_valid() -> Diagnostics {
    Diagnostics {
        file: String::new(),
        text: String::new(),
        items: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        let mut s = Source::new("t.toml", text, "2026-12-02T09:00:00Z".parse().unwrap());
        s.system_timezone = TimeZone::UTC;
        s
    }

    const POLICY: &str = r#"
[defaults]
viewer = "/usr/bin/true"
group = "vmgt-no-such-special-group"
timezone = "UTC"

[[server]]
name = "h"
addresses = ["10.200.0.2"]
guard_ports = "20001-20002"

[[console]]
name = "vm"
server = "h"
port = 20001
allow = [ { users = ["root"] } ]
"#;

    #[test]
    fn a_missing_special_group_is_for_apply_to_create() {
        let l = load(&src(POLICY)).unwrap();
        assert_eq!(l.missing_groups, vec!["vmgt-no-such-special-group"]);
        assert!(l.policy.defaults.group.gid >= PROVISIONAL_GID_BASE);
        assert!(l.plan.sudoers.contains("vmgt-no-such-special-group"));
    }

    #[test]
    fn any_other_missing_group_is_an_error_as_check_reports_it() {
        let text = POLICY.replace(
            r#"{ users = ["root"] }"#,
            r#"{ users = ["root"] }, { groups = ["vmgt-no-such-grant-group"] }"#,
        );
        let d = load(&src(&text)).unwrap_err();
        let msg = d.to_string();
        assert!(
            msg.contains("unknown group `vmgt-no-such-grant-group`"),
            "{msg}"
        );
        assert!(
            msg.contains("unknown group `vmgt-no-such-special-group`"),
            "{msg}"
        );
    }

    #[test]
    fn special_group_names_come_from_the_text_with_the_default() {
        assert_eq!(
            special_group_names(POLICY),
            vec!["vmgt-no-such-special-group"]
        );
        assert_eq!(
            special_group_names("[[pin]]\ngroup = \"mygroup\"\n"),
            vec![vmgate_policy::validate::DEFAULT_GROUP, "mygroup"]
        );
        assert!(special_group_names("not toml [").is_empty());
    }
}
