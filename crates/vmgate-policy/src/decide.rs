//! The policy's own answer, computed from the policy alone (no ruleset):
//! the specification the compiled rules are held against.

use std::net::IpAddr;

use jiff::Timestamp;

use crate::policy::Policy;

/// Why a connection is allowed or denied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Reason {
    /// The destination is no console port of a guarded server: not our business.
    Unguarded,
    /// Root, and `exempt_root` is set.
    RootExempt,
    /// Not sent with the special group: a plain client or the user's own relay.
    WrongGroup,
    /// Granted by console `console`, grant index `grant`.
    Granted {
        /// Console name.
        console: String,
        /// Index of the grant in `allow`.
        grant: usize,
    },
    /// A grant for this user exists but its window is closed.
    OutsideWindow {
        /// Console name.
        console: String,
    },
    /// No grant for this user on this destination.
    NoGrant,
}

/// The policy's verdict for one connection attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[must_use]
pub struct Decision {
    /// Allowed?
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
}

/// May a socket of `uid`/`gid` talk to `address`:`port` at `time`?
///
/// `gid` is the socket's group, the process's effective (fs) gid: the special
/// group only when the viewer was started through the sudo rule.
pub fn decide(
    policy: &Policy,
    uid: u32,
    gid: u32,
    address: IpAddr,
    port: u16,
    time: Timestamp,
) -> Decision {
    let guarded = policy
        .servers
        .iter()
        .any(|s| s.addresses.contains(&address) && s.guard.contains(port));
    let deny = |reason| Decision {
        allowed: false,
        reason,
    };
    if !guarded {
        return Decision {
            allowed: true,
            reason: Reason::Unguarded,
        };
    }
    if policy.defaults.exempt_root && uid == 0 {
        return Decision {
            allowed: true,
            reason: Reason::RootExempt,
        };
    }
    if gid != policy.defaults.group.gid {
        return deny(Reason::WrongGroup);
    }
    let tz = &policy.defaults.timezone;
    let mut closed = None;
    for c in &policy.consoles {
        let s = policy.server_of(c);
        if c.port != port || !s.addresses.contains(&address) {
            continue;
        }
        for (i, g) in c.grants.iter().enumerate() {
            if g.principal(uid).is_none() {
                continue;
            }
            if g.schedule.contains(tz, time) {
                return Decision {
                    allowed: true,
                    reason: Reason::Granted {
                        console: c.name.clone(),
                        grant: i,
                    },
                };
            }
            closed = Some(c.name.clone());
        }
    }
    deny(closed.map_or(Reason::NoGrant, |console| Reason::OutsideWindow { console }))
}
