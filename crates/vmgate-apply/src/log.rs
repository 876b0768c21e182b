//! `vmgate log`: who was refused where, from the kernel log.

use std::net::IpAddr;

use vmgate_policy::Policy;
use vmgate_system::{kmsg, users};

use crate::error::Result;

/// One refused connection attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// Kernel log sequence number.
    pub seq: u64,
    /// Microseconds since boot.
    pub timestamp_us: u64,
    /// The socket's uid (absent for packets without a full socket).
    pub uid: Option<u32>,
    /// Its user name, when NSS knows it.
    pub user: Option<String>,
    /// The socket's gid.
    pub gid: Option<u32>,
    /// Destination address.
    pub address: IpAddr,
    /// Destination port.
    pub port: Option<u16>,
    /// The console at that address and port, when the policy has one.
    pub console: Option<String>,
}

impl Refusal {
    /// `uid 1001 (anne) refused: leaptest at 10.200.1.2:20004`.
    #[must_use]
    pub fn to_text(&self) -> String {
        let who = match (self.uid, &self.user) {
            (Some(u), Some(n)) => format!("uid {u} ({n})"),
            (Some(u), None) => format!("uid {u}"),
            _ => "a socket without owner".into(),
        };
        let port = self.port.map_or_else(|| "?".into(), |p| p.to_string());
        let target = match &self.console {
            Some(c) => format!("console {c} at {}:{port}", self.address),
            None => format!("{}:{port}", self.address),
        };
        format!("{who} refused: {target}")
    }
}

/// Denials with `prefix` now in the kernel log (after sequence number `after`, when
/// given), with user names and, given the policy, console names.
///
/// # Errors
/// The kernel log cannot be read.
pub fn log(prefix: &str, policy: Option<&Policy>, after: Option<u64>) -> Result<Vec<Refusal>> {
    Ok(kmsg::denials(prefix)?
        .into_iter()
        .filter(|d| after.is_none_or(|a| d.seq > a))
        .map(|d| refusal(&d, policy))
        .collect())
}

/// Denials as they are logged from now on (`vmgate log --follow`); each `next` blocks
/// until the kernel logs one.
///
/// # Errors
/// `/dev/kmsg` cannot be opened.
pub fn follow<'a>(
    prefix: &str,
    policy: Option<&'a Policy>,
) -> Result<impl Iterator<Item = Result<Refusal>> + 'a> {
    let f = kmsg::follow(prefix)?;
    Ok(f.map(move |d| d.map(|d| refusal(&d, policy)).map_err(Into::into)))
}

fn refusal(d: &kmsg::Denial, policy: Option<&Policy>) -> Refusal {
    let user = d
        .uid
        .and_then(|u| users::user_by_uid(u).ok().flatten())
        .map(|u| u.name);
    let console = policy.and_then(|p| {
        p.consoles
            .iter()
            .find(|c| Some(c.port) == d.dport && p.server_of(c).addresses.contains(&d.dst))
            .map(|c| c.name.clone())
    });
    Refusal {
        seq: d.seq,
        timestamp_us: d.timestamp_us,
        uid: d.uid,
        user,
        gid: d.gid,
        address: d.dst,
        port: d.dport,
        console,
    }
}
