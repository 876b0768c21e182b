//! Users and groups, behind a trait so the core never calls NSS itself.
//!
//! The binary implements [`Directory`] over NSS (`getpwnam`/`getgrnam`, so
//! LDAP and SSSD users work); tests and `plan --example` use a
//! [`StaticDirectory`]. Lookups happen at plan time only: the compiled
//! ruleset holds numeric ids, so boot never waits for a directory.

use std::collections::BTreeMap;

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserEntry {
    /// Login name.
    pub name: String,
    /// Numeric user id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Numeric group id.
    pub gid: u32,
    /// Supplementary members (the group entry's member list).
    pub members: Vec<String>,
}

/// A lookup that failed for another reason than "no such name".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// Where user and group names are resolved.
pub trait Directory {
    /// The user called `name`, or `None` when there is none.
    ///
    /// # Errors
    /// The directory could not be asked.
    fn user(&self, name: &str) -> Result<Option<UserEntry>, LookupError>;

    /// The group called `name`, or `None` when there is none.
    ///
    /// # Errors
    /// The directory could not be asked.
    fn group(&self, name: &str) -> Result<Option<GroupEntry>, LookupError>;

    /// Users whose *primary* group is `gid`. NSS cannot answer this without
    /// enumerating every account, so the default is "none known"; see the
    /// group-grant decision in the crate docs.
    fn primary_members(&self, gid: u32) -> Vec<String> {
        let _ = gid;
        Vec::new()
    }

    /// A label for plan output: where the names came from.
    fn label(&self) -> String;
}

/// A fixed table of users and groups: tests, and the example's demo directory.
#[derive(Debug, Clone, Default)]
pub struct StaticDirectory {
    /// Shown in plan output.
    pub label: String,
    users: BTreeMap<String, UserEntry>,
    groups: BTreeMap<String, GroupEntry>,
}

impl StaticDirectory {
    /// An empty directory with a label.
    #[must_use]
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            ..Self::default()
        }
    }

    /// Adds a user.
    #[must_use]
    pub fn with_user(mut self, name: &str, uid: u32, gid: u32) -> Self {
        self.add_user(name, uid, gid);
        self
    }

    /// Adds a group with supplementary members.
    #[must_use]
    pub fn with_group(mut self, name: &str, gid: u32, members: &[&str]) -> Self {
        self.add_group(name, gid, members);
        self
    }

    /// Adds a user in place.
    pub fn add_user(&mut self, name: &str, uid: u32, gid: u32) {
        self.users.insert(
            name.to_string(),
            UserEntry {
                name: name.to_string(),
                uid,
                gid,
            },
        );
    }

    /// Adds a group in place.
    pub fn add_group(&mut self, name: &str, gid: u32, members: &[&str]) {
        self.groups.insert(
            name.to_string(),
            GroupEntry {
                name: name.to_string(),
                gid,
                members: members.iter().map(|s| (*s).to_string()).collect(),
            },
        );
    }

    /// All users, by name.
    pub fn users(&self) -> impl Iterator<Item = &UserEntry> {
        self.users.values()
    }

    /// All groups, by name.
    pub fn groups(&self) -> impl Iterator<Item = &GroupEntry> {
        self.groups.values()
    }
}

impl Directory for StaticDirectory {
    fn user(&self, name: &str) -> Result<Option<UserEntry>, LookupError> {
        Ok(self.users.get(name).cloned())
    }

    fn group(&self, name: &str) -> Result<Option<GroupEntry>, LookupError> {
        Ok(self.groups.get(name).cloned())
    }

    fn primary_members(&self, gid: u32) -> Vec<String> {
        self.users
            .values()
            .filter(|u| u.gid == gid)
            .map(|u| u.name.clone())
            .collect()
    }

    fn label(&self) -> String {
        self.label.clone()
    }
}
