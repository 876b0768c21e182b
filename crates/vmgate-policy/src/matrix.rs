//! The access matrix: who may open which console, computed twice, from the
//! policy ([`crate::decide()`]) and from a ruleset (the interpreter, on the
//! compiled table or on the live `nft -j` listing), and the cells where they
//! differ. This is what `vmgate verify` reports.

use std::collections::BTreeSet;
use std::net::IpAddr;

use jiff::{SignedDuration, Timestamp};

use crate::decide::decide;
use crate::nft::{Action, Evaluator, Packet, Ruleset, tcp_flags};
use crate::policy::Policy;

/// Who knocks: a principal of the policy, or a stand-in for everyone else.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Knocker {
    /// Name, or `(anyone else)`.
    pub name: String,
    /// Uid.
    pub uid: u32,
    /// Gid of the socket: the special group (through sudo) or another.
    pub gid: u32,
    /// True when the socket carries the special group.
    pub via_sudo: bool,
}

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cell {
    /// Who.
    pub who: Knocker,
    /// Console.
    pub console: String,
    /// Address tried.
    pub address: IpAddr,
    /// When.
    pub at: Timestamp,
    /// What the policy says.
    pub policy_allows: bool,
    /// What the ruleset does.
    pub ruleset_allows: bool,
}

/// A uid no policy names, standing for everyone else.
pub const STRANGER_UID: u32 = 4_294_967_293;
/// A gid other than the special group: a plain client or a relay.
pub const OTHER_GID: u32 = 4_294_967_292;

/// Everyone to probe: each principal through sudo and without the group,
/// and a stranger through the group.
#[must_use]
pub fn knockers(policy: &Policy) -> Vec<Knocker> {
    let special = policy.defaults.group.gid;
    let mut set = BTreeSet::new();
    for c in &policy.consoles {
        for g in &c.grants {
            for p in &g.principals {
                set.insert((p.name.clone(), p.uid));
            }
        }
    }
    let mut out = Vec::new();
    for (name, uid) in set {
        for via_sudo in [true, false] {
            out.push(Knocker {
                name: name.clone(),
                uid,
                gid: if via_sudo { special } else { OTHER_GID },
                via_sudo,
            });
        }
    }
    out.push(Knocker {
        name: "(anyone else)".into(),
        uid: STRANGER_UID,
        gid: special,
        via_sudo: true,
    });
    out
}

/// Instants where some grant opens or closes in `[from, until)`, each with the
/// second before it, plus `from`: probing these covers every state.
#[must_use]
pub fn probe_times(policy: &Policy, from: Timestamp, until: Timestamp) -> Vec<Timestamp> {
    let tz = &policy.defaults.timezone;
    let mut out = BTreeSet::from([from]);
    for c in &policy.consoles {
        for g in &c.grants {
            for open in [true, false] {
                let mut t = from;
                while let Some(edge) = g.schedule.next_edge(tz, t, open) {
                    if edge >= until {
                        break;
                    }
                    out.insert(edge);
                    out.insert(edge - SignedDuration::from_secs(1));
                    t = edge;
                }
            }
        }
    }
    out.into_iter()
        .filter(|t| *t >= from && *t < until)
        .collect()
}

/// The full matrix at the given instants: every knocker, console and address.
#[must_use]
pub fn matrix(policy: &Policy, rs: &Ruleset, times: &[Timestamp]) -> Vec<Cell> {
    let ev = Evaluator::new(rs);
    let who = knockers(policy);
    let mut out = Vec::new();
    for &at in times {
        for c in &policy.consoles {
            for &address in &policy.server_of(c).addresses {
                for k in &who {
                    let policy_allows = decide(policy, k.uid, k.gid, address, c.port, at).allowed;
                    let o = ev.evaluate(&Packet {
                        daddr: address,
                        dport: c.port,
                        skuid: Some(k.uid),
                        skgid: Some(k.gid),
                        flags: tcp_flags::SYN,
                        time: at,
                    });
                    out.push(Cell {
                        who: k.clone(),
                        console: c.name.clone(),
                        address,
                        at,
                        policy_allows,
                        ruleset_allows: o.action == Action::Accept,
                    });
                }
            }
        }
    }
    out
}

/// The cells where the ruleset does not do what the policy says.
#[must_use]
pub fn drift(policy: &Policy, rs: &Ruleset, times: &[Timestamp]) -> Vec<Cell> {
    matrix(policy, rs, times)
        .into_iter()
        .filter(|c| c.policy_allows != c.ruleset_allows)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckInput, PlanOptions, check, example, plan};

    #[test]
    fn the_compiled_office_has_no_drift_over_a_week_and_a_tampered_one_does() {
        let p = check(
            &CheckInput {
                file: "office.toml",
                text: example::OFFICE_TOML,
                system_timezone: jiff::tz::TimeZone::UTC,
            },
            &example::demo_directory(),
        )
        .unwrap();
        let now: Timestamp = "2026-12-02T09:00:00Z".parse().unwrap();
        let pl = plan(&p, &PlanOptions::new(now));
        let times = probe_times(&p, now, now + SignedDuration::from_hours(7 * 24));
        assert!(times.len() > 20);
        assert!(drift(&p, &pl.ruleset, &times).is_empty());
        // Someone adds mybro to the always-open grants by hand.
        let mut rs = pl.ruleset.clone();
        let grants = rs.sets.iter_mut().find(|s| s.name == "grants4").unwrap();
        let mut e = grants.elements[0].clone();
        e[0] = crate::nft::Value::Num(1022);
        grants.elements.push(e);
        let d = drift(&p, &rs, &times);
        assert!(!d.is_empty());
        assert!(
            d.iter()
                .all(|c| c.who.name == "mybro" && c.console == "debianx" && c.ruleset_allows)
        );
    }
}
