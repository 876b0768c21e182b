//! The proof: for random policies and random packets, the compiled ruleset
//! (serialised to nft JSON and read back, as `vmgate verify` reads the live
//! table) and the policy's own `decide` give the same answer.
//!
//! Cases: `VMGATE_PROPTEST_CASES` (default 5000 policies, each with 64 queries).

mod common;

use std::fmt::Write as _;
use std::net::IpAddr;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use vmgate_policy::nft::{Action, Packet, Ruleset, tcp_flags};
use vmgate_policy::{PlanOptions, StaticDirectory, decide, plan};

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
];
const SPECIAL: u32 = 990;
const USERS: u32 = 6;

fn directory() -> StaticDirectory {
    let mut d = StaticDirectory::new("proptest");
    for i in 0..USERS {
        d.add_user(&format!("u{i}"), 2000 + i, 100);
    }
    d.add_group("users", 100, &[]);
    d.add_group("vmconsole", SPECIAL, &[]);
    d.add_group("g0", 3000, &["u1", "u2"]);
    d.add_group("g1", 3001, &["u4"]);
    d
}

#[derive(Debug, Clone)]
struct GrantSpec {
    users: Vec<u32>,
    groups: Vec<u32>,
    days: Option<Vec<u8>>,
    hours: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
struct Spec {
    zone: usize,
    exempt_root: bool,
    log_denied: bool,
    // Per server: (v4 count, v6 count, guard first, guard len).
    servers: Vec<(u8, u8, u16, u16)>,
    // Per console: (server, port offset in guard, grants).
    consoles: Vec<(usize, u16, Vec<GrantSpec>)>,
}

fn grant() -> impl Strategy<Value = GrantSpec> {
    (
        prop::collection::vec(0..USERS, 0..3),
        prop::collection::vec(0..2u32, 0..2),
        prop::option::of(prop::collection::vec(0..7u8, 1..4)),
        prop::option::of((0..96u32, 1..96u32)),
    )
        .prop_map(|(users, groups, days, hours)| GrantSpec {
            users: if users.is_empty() && groups.is_empty() {
                vec![0]
            } else {
                users
            },
            groups,
            days,
            // Quarter hours; the closing may run past midnight.
            hours: hours
                .map(|(s, l)| (s * 15, (s * 15 + l * 15) % 1440))
                .filter(|(s, e)| s != e),
        })
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..ZONES.len(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((0..3u8, 0..2u8, 20000..20010u16, 1..6u16), 1..3),
    )
        .prop_flat_map(|(zone, exempt_root, log_denied, servers)| {
            let n = servers.len();
            let consoles =
                prop::collection::vec((0..n, 0..6u16, prop::collection::vec(grant(), 0..4)), 0..5);
            (Just((zone, exempt_root, log_denied, servers)), consoles)
        })
        .prop_map(
            |((zone, exempt_root, log_denied, servers), consoles)| Spec {
                zone,
                exempt_root,
                log_denied,
                servers,
                consoles,
            },
        )
}

fn addr4(s: usize, i: u8) -> IpAddr {
    format!("10.200.{s}.{}", i + 1).parse().unwrap()
}
fn addr6(s: usize, i: u8) -> IpAddr {
    format!("fd00:10:200:{s}::{}", i + 1).parse().unwrap()
}

fn server_addrs(spec: &Spec, s: usize) -> Vec<IpAddr> {
    let (n4, n6, ..) = spec.servers[s];
    let mut v: Vec<IpAddr> = (0..n4).map(|i| addr4(s, i)).collect();
    v.extend((0..n6).map(|i| addr6(s, i)));
    if v.is_empty() {
        v.push(addr4(s, 0));
    }
    v
}

/// Writes the spec as a policy file: the property runs through the same
/// parser and validator as users' policies.
fn toml(spec: &Spec) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "[defaults]\ngroup = \"vmconsole\"\ntimezone = \"{}\"\nexempt_root = {}\nlog_denied = {}\n",
        ZONES[spec.zone], spec.exempt_root, spec.log_denied
    );
    for (s, &(_, _, first, len)) in spec.servers.iter().enumerate() {
        let addrs: Vec<String> = server_addrs(spec, s)
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect();
        let _ = writeln!(
            t,
            "[[server]]\nname = \"s{s}\"\naddresses = [{}]\nguard_ports = \"{first}-{}\"\n",
            addrs.join(", "),
            first + len - 1
        );
    }
    let mut used = std::collections::BTreeSet::new();
    for (i, (s, off, grants)) in spec.consoles.iter().enumerate() {
        let (_, _, first, len) = spec.servers[*s];
        let port = first + off % len;
        if !used.insert((*s, port)) {
            continue;
        }
        let _ = writeln!(
            t,
            "[[console]]\nname = \"c{i}\"\nserver = \"s{s}\"\nport = {port}\nallow = ["
        );
        for g in grants {
            let users: Vec<String> = g.users.iter().map(|u| format!("\"u{u}\"")).collect();
            let groups: Vec<String> = g.groups.iter().map(|u| format!("\"g{u}\"")).collect();
            let _ = write!(
                t,
                "  {{ users = [{}], groups = [{}]",
                users.join(", "),
                groups.join(", ")
            );
            if let Some(days) = &g.days {
                let d: Vec<String> = days
                    .iter()
                    .map(|&d| {
                        format!(
                            "\"{}\"",
                            ["sun", "mon", "tue", "wed", "thu", "fri", "sat"][d as usize]
                        )
                    })
                    .collect();
                let _ = write!(t, ", days = [{}]", d.join(", "));
            }
            if let Some((s, e)) = g.hours {
                let e = if e == 0 { 1440 } else { e };
                let _ = write!(
                    t,
                    ", hours = \"{:02}:{:02}-{:02}:{:02}\"",
                    s / 60,
                    s % 60,
                    e / 60,
                    e % 60
                );
            }
            t.push_str(" },\n");
        }
        t.push_str("]\n\n");
    }
    t
}

fn cases() -> u32 {
    std::env::var("VMGATE_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn compiled_ruleset_agrees_with_decide(
        spec in spec(),
        now_secs in 1_767_225_600i64..1_830_297_600, // 2026-01-01 .. 2028-01-01
        queries in prop::collection::vec(
            (0..USERS + 3, any::<bool>(), 0..4usize, 0..8u8, 19995..20020u16, any::<u32>(), any::<bool>()),
            64,
        ),
    ) {
        let text = toml(&spec);
        let policy = common::check_text(&text, &directory())
            .unwrap_or_else(|e| panic!("generated policy invalid:\n{e}\n{text}"));
        let now = Timestamp::from_second(now_secs).unwrap();
        let p = plan(&policy, &PlanOptions { table: "vmgate_test".into(), ..PlanOptions::new(now) });
        // Read the ruleset back from its nft JSON, as verify reads the kernel's.
        let rs = Ruleset::from_json(&p.nft_json, "vmgate_test").expect("our JSON parses");
        prop_assert_eq!(&rs, &p.ruleset);
        // The compiled windows hold until the next offset change (then the timer reloads).
        let horizon = p.schedule.next_change.map_or(14 * 86_400, |t| {
            (t.as_second() - now_secs).clamp(1, 14 * 86_400)
        });
        for (u, special, server, addr_i, port, dt, syn) in queries {
            let uid = match u {
                x if x < USERS => 2000 + x,
                x if x == USERS => 0,
                _ => 4242,
            };
            let gid = if special { SPECIAL } else { 100 };
            let addrs = server_addrs(&spec, server % spec.servers.len());
            let daddr = if addr_i as usize > addrs.len() {
                "10.200.99.1".parse().unwrap()
            } else {
                addrs[addr_i as usize % addrs.len()]
            };
            let time = now + SignedDuration::from_secs(i64::from(dt) % horizon);
            let flags = if syn { tcp_flags::SYN } else { tcp_flags::ACK };
            let d = decide(&policy, uid, gid, daddr, port, time);
            let o = rs.evaluate(&Packet { daddr, dport: port, skuid: Some(uid), skgid: Some(gid), flags, time });
            prop_assert_eq!(
                o.action == Action::Accept, d.allowed,
                "uid {} gid {} {}:{} at {}: decide {:?}, ruleset {:?}\n{}\n{}",
                uid, gid, daddr, port, time, d, o, text, p.nft_text
            );
            if !d.allowed {
                prop_assert_eq!(o.action, Action::Reject);
                prop_assert_eq!(o.logged.len(), usize::from(policy.defaults.log_denied && syn));
            } else {
                prop_assert!(o.logged.is_empty());
            }
            prop_assert!(o.rules_traversed <= p.max_rules_per_packet);
            // The table precompiled for the next offset is right from the change
            // until the one after it.
            if let Some(n) = &p.next_offset {
                let span = n.until.map_or(14 * 86_400, |u| (u.as_second() - n.at.as_second()).clamp(1, 14 * 86_400));
                let t = n.at + SignedDuration::from_secs(i64::from(dt) % span);
                let d = decide(&policy, uid, gid, daddr, port, t);
                let o = n.ruleset.evaluate(&Packet { daddr, dport: port, skuid: Some(uid), skgid: Some(gid), flags, time: t });
                prop_assert_eq!(o.action == Action::Accept, d.allowed, "next offset: uid {} {}:{} at {}", uid, daddr, port, t);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() / 4, failure_persistence: None, ..ProptestConfig::default() })]

    /// `explain` agrees with `decide`, and its next opening / closing are real edges.
    #[test]
    fn explain_agrees_with_decide_and_its_edges_are_real(
        spec in spec(),
        now_secs in 1_767_225_600i64..1_830_297_600,
        u in 0..USERS,
    ) {
        let text = toml(&spec);
        let policy = common::check_text(&text, &directory()).unwrap();
        let dir = directory();
        let user = vmgate_policy::Directory::user(&dir, &format!("u{u}")).unwrap().unwrap();
        let at = Timestamp::from_second(now_secs).unwrap();
        let tz = policy.defaults.timezone.clone();
        for c in &policy.consoles {
            let server = policy.server_of(c);
            let addr = server.addresses[0];
            let e = vmgate_policy::explain(&policy, "/etc/vmgate", &user, &c.name, at).unwrap();
            let d = decide(&policy, user.uid, SPECIAL, addr, c.port, at);
            prop_assert_eq!(e.allowed, d.allowed, "{} on {} at {}", user.name, c.name, at);
            // The answer flips exactly at the announced instants.
            let at_t = |t: Timestamp| decide(&policy, user.uid, SPECIAL, addr, c.port, t).allowed;
            if let Some(t) = e.next_opening {
                prop_assert!(!e.allowed && t > at && at_t(t), "opening {} for {} on {}", t, user.name, c.name);
            }
            if let Some(t) = e.closes_at {
                prop_assert!(e.allowed && t > at && at_t(t - SignedDuration::from_secs(1)));
            }
            // Recompute the edges with the schedule API and check them against decide.
            for g in c.grants.iter().filter(|g| g.principal(user.uid).is_some()) {
                for open in [true, false] {
                    if let Some(t) = g.schedule.next_edge(&tz, at, open) {
                        prop_assert!(t > at);
                        prop_assert_eq!(g.schedule.contains(&tz, t), open);
                        prop_assert_eq!(g.schedule.contains(&tz, t - SignedDuration::from_secs(1)), !open);
                    }
                }
            }
        }
    }
}
