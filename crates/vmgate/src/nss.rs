//! The [`Directory`] over NSS: `getpwnam_r`/`getgrnam_r` through `nix`, so
//! users from LDAP or SSSD resolve like local ones.

use nix::unistd::{Group, User};
use vmgate_policy::{Directory, GroupEntry, LookupError, UserEntry};

/// The system's user and group databases.
#[derive(Debug, Clone, Copy)]
pub struct Nss;

impl Directory for Nss {
    fn user(&self, name: &str) -> Result<Option<UserEntry>, LookupError> {
        User::from_name(name)
            .map(|u| {
                u.map(|u| UserEntry {
                    name: u.name,
                    uid: u.uid.as_raw(),
                    gid: u.gid.as_raw(),
                })
            })
            .map_err(|e| LookupError(e.to_string()))
    }

    fn group(&self, name: &str) -> Result<Option<GroupEntry>, LookupError> {
        Group::from_name(name)
            .map(|g| {
                g.map(|g| GroupEntry {
                    name: g.name,
                    gid: g.gid.as_raw(),
                    members: g.mem,
                })
            })
            .map_err(|e| LookupError(e.to_string()))
    }

    /// NSS has no "users whose primary group is G" query short of
    /// enumerating every account (slow or disabled with LDAP/SSSD), so only
    /// the local `/etc/passwd` is consulted; directory users must be listed in
    /// the group's member list to be found through a group grant.
    fn primary_members(&self, gid: u32) -> Vec<String> {
        std::fs::read_to_string("/etc/passwd")
            .map(|text| local_primary_members(&text, gid))
            .unwrap_or_default()
    }

    fn label(&self) -> String {
        "this machine (NSS: getpwnam/getgrnam; primary-group members from /etc/passwd)".into()
    }
}

/// Names in passwd(5) text whose primary gid is `gid`.
fn local_primary_members(passwd: &str, gid: u32) -> Vec<String> {
    passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[3].parse() == Ok(gid)).then(|| f[0].to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn primary_members_come_from_the_fourth_field() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\nanne:x:1024:1100::/home/anne:/bin/sh\n#x:x:1:1100\n";
        assert_eq!(super::local_primary_members(passwd, 1100), vec!["anne"]);
        assert!(super::local_primary_members(passwd, 5).is_empty());
    }
}
