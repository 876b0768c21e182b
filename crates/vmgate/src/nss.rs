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

    fn label(&self) -> String {
        "this machine (NSS: getpwnam/getgrnam)".into()
    }
}
