//! Users and groups through NSS (so LDAP/SSSD users count as well as /etc/passwd ones),
//! creating vmgate's system group, and listing who is in a group and how.

use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User};

use crate::cmd::Cmd;
use crate::error::{Error, Result};

/// A user as NSS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// A group as NSS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Supplementary members listed in the group entry.
    pub members: Vec<String>,
}

/// Who is in a group, split by how: the difference matters, since a relay could run with
/// either.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMembers {
    /// Users listed in the group entry (supplementary membership).
    pub supplementary: Vec<String>,
    /// Users whose primary group it is (from the passwd database).
    pub primary: Vec<String>,
}

impl GroupMembers {
    /// Every member, each once, sorted.
    pub fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .supplementary
            .iter()
            .chain(&self.primary)
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

fn sys(what: String) -> impl FnOnce(nix::errno::Errno) -> Error {
    move |source| Error::Sys { what, source }
}

fn user_info(u: User) -> UserInfo {
    UserInfo {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
    }
}

fn group_info(g: Group) -> GroupInfo {
    GroupInfo {
        name: g.name,
        gid: g.gid.as_raw(),
        members: g.mem,
    }
}

/// Looks a user up by name.
pub fn user_by_name(name: &str) -> Result<Option<UserInfo>> {
    Ok(User::from_name(name)
        .map_err(sys(format!("looking up user {name:?}")))?
        .map(user_info))
}

/// Looks a user up by uid.
pub fn user_by_uid(uid: u32) -> Result<Option<UserInfo>> {
    Ok(User::from_uid(Uid::from_raw(uid))
        .map_err(sys(format!("looking up uid {uid}")))?
        .map(user_info))
}

/// Looks a group up by name.
pub fn group_by_name(name: &str) -> Result<Option<GroupInfo>> {
    Ok(Group::from_name(name)
        .map_err(sys(format!("looking up group {name:?}")))?
        .map(group_info))
}

/// Looks a group up by gid.
pub fn group_by_gid(gid: u32) -> Result<Option<GroupInfo>> {
    Ok(Group::from_gid(Gid::from_raw(gid))
        .map_err(sys(format!("looking up gid {gid}")))?
        .map(group_info))
}

/// The user, or [`Error::NotFound`].
pub fn require_user(name: &str) -> Result<UserInfo> {
    user_by_name(name)?.ok_or_else(|| Error::NotFound {
        kind: "passwd",
        name: name.to_owned(),
    })
}

/// The group, or [`Error::NotFound`].
pub fn require_group(name: &str) -> Result<GroupInfo> {
    group_by_name(name)?.ok_or_else(|| Error::NotFound {
        kind: "group",
        name: name.to_owned(),
    })
}

/// The attributes `owner:group mode` as numbers, resolving both names through NSS.
pub fn attrs_for(owner: &str, group: &str, mode: u32) -> Result<crate::FileAttrs> {
    Ok(crate::FileAttrs {
        uid: require_user(owner)?.uid,
        gid: require_group(group)?.gid,
        mode,
    })
}

/// Every group id the user has at login: primary plus supplementary (`getgrouplist`).
pub fn user_group_ids(name: &str) -> Result<Vec<u32>> {
    let user = require_user(name)?;
    let cname = CString::new(name).map_err(|_| Error::InvalidName {
        kind: "user",
        name: name.to_owned(),
        reason: "a user name cannot contain NUL",
    })?;
    let mut gids: Vec<u32> = nix::unistd::getgrouplist(&cname, Gid::from_raw(user.gid))
        .map_err(sys(format!("listing the groups of {name:?}")))?
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    gids.sort_unstable();
    gids.dedup();
    Ok(gids)
}

/// Creates the system group `name` when it does not exist (`groupadd --system`);
/// returns its gid and whether it was created now.
pub fn ensure_system_group(name: &str) -> Result<(u32, bool)> {
    if let Some(g) = group_by_name(name)? {
        return Ok((g.gid, false));
    }
    Cmd::new("groupadd").args(["--system", name]).run(None)?;
    Ok((require_group(name)?.gid, true))
}

/// Members of the group `name`, by supplementary listing and by primary group.
///
/// Primary members come from `getent passwd`, which enumerates every NSS source that
/// allows enumeration (sources that do not, e.g. SSSD by default, only show up as
/// supplementary members).
pub fn group_members(name: &str) -> Result<GroupMembers> {
    let group = require_group(name)?;
    let passwd = Cmd::new("getent").arg("passwd").run(None)?;
    let mut primary: Vec<String> = passwd
        .lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let user = f.next()?;
            let gid: u32 = f.nth(2)?.parse().ok()?;
            (gid == group.gid).then(|| user.to_owned())
        })
        .collect();
    primary.sort();
    primary.dedup();
    let mut supplementary = group.members;
    supplementary.sort();
    supplementary.dedup();
    Ok(GroupMembers {
        supplementary,
        primary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves() {
        assert_eq!(user_by_name("root").unwrap().unwrap().uid, 0);
        assert_eq!(user_by_uid(0).unwrap().unwrap().name, "root");
        assert_eq!(group_by_gid(0).unwrap().unwrap().name, "root");
        assert!(user_group_ids("root").unwrap().contains(&0));
        assert!(
            group_members("root")
                .unwrap()
                .primary
                .contains(&"root".to_owned())
        );
        assert_eq!(
            attrs_for("root", "root", 0o750).unwrap(),
            crate::FileAttrs::root(0o750)
        );
        assert!(attrs_for("root", "no-such-group-vmgt", 0o750).is_err());
        assert!(user_by_name("no-such-user-vmgt").unwrap().is_none());
        assert!(matches!(
            require_group("no-such-group-vmgt"),
            Err(Error::NotFound { .. })
        ));
    }
}
