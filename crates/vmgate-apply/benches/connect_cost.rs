//! Per-connection setup cost in the kernel with 10, 1,000 and 10,000 granted users,
//! using the ruleset vmgate really compiles (policy → `vmgate_policy::plan` →
//! `Ruleset::to_table_text`, loaded the way apply loads it), against a linear
//! fwbuilder-style ruleset of one rule per user, loaded the same way. The measured user
//! is the last one granted: the linear ruleset's worst case.
//!
//! Root only: `cargo bench -p vmgate-apply --bench connect_cost`
//! (`VMGATE_BENCH_CONNECTS` sets the connects per point, default 400).
//!
//! Measured on the 2-core dev VM (1,000 connects per point; no table: 20.5 µs):
//!
//! | granted users | vmgate (µs) | linear (µs) | linear / vmgate |
//! |---:|---:|---:|---:|
//! | 10 | 23.4 | 27.8 | 1.19 |
//! | 1,000 | 27.4 | 146.0 | 5.33 |
//! | 10,000 | 24.2 | 1423.2 | 58.87 |
//!
//! vmgate's cost stays flat (10,000 / 10 users: 1.03; 6 rules per packet at most).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use vmgate_policy::{CheckInput, PlanOptions, StaticDirectory, check, plan};
use vmgate_testbed::{TestHost, TestTable, require_root, timed_connects};

const PORT: u16 = 20001;
/// Uids of the granted users; the measured one is the last. No account is needed:
/// the kernel records whatever euid created the socket.
const UID_BASE: u32 = 3_000_000;
/// The special group's gid (the socket's egid, as through the sudo rule).
const GID: u32 = 2_999_000;

/// The policy text and its directory for `users` granted users on one console.
fn policy(host: IpAddr, users: u32) -> (String, StaticDirectory) {
    let mut dir = StaticDirectory::new("bench").with_group("benchgrp", GID, &[]);
    let mut names = String::new();
    for i in 0..users {
        let name = format!("u{i}");
        dir.add_user(&name, UID_BASE + i, 100);
        if i > 0 {
            names.push_str(", ");
        }
        let _ = write!(names, "\"{name}\"");
    }
    let text = format!(
        "[defaults]\nviewer = \"/usr/bin/true\"\ngroup = \"benchgrp\"\ntimezone = \"UTC\"\n\n\
         [[server]]\nname = \"h\"\naddresses = [\"{host}\"]\nguard_ports = \"20001-20010\"\n\n\
         [[console]]\nname = \"vm\"\nserver = \"h\"\nport = {PORT}\nallow = [ {{ users = [{names}] }} ]\n"
    );
    (text, dir)
}

fn compiled(table: &str, host: IpAddr, users: u32) -> (String, usize) {
    let (text, dir) = policy(host, users);
    let p = check(
        &CheckInput {
            file: "bench.toml",
            text: &text,
            system_timezone: jiff::tz::TimeZone::UTC,
        },
        &dir,
    )
    .expect("the bench policy is valid");
    let mut opts = PlanOptions::new(jiff::Timestamp::now());
    opts.table = table.to_string();
    let pl = plan(&p, &opts);
    (pl.ruleset.to_table_text(), pl.max_rules_per_packet)
}

fn linear(table: &str, host: IpAddr, users: u32) -> String {
    let mut rules = String::new();
    for i in 0..users {
        let _ = writeln!(
            rules,
            "    meta skuid {} meta skgid {GID} ip daddr {host} tcp dport {PORT} accept",
            UID_BASE + i
        );
    }
    format!(
        "table inet {table} {{\n  chain output {{\n    type filter hook output priority filter; policy accept;\n{rules}    ip daddr {host} tcp dport 20001-20010 reject with tcp reset\n  }}\n}}\n"
    )
}

fn median_us(uid: u32, addr: SocketAddr, count: usize) -> f64 {
    let _ = timed_connects(uid, GID, addr, 20);
    let t = timed_connects(uid, GID, addr, count);
    assert!(
        t.refused.is_empty() && t.errors.is_empty(),
        "the granted user was not admitted: {} refused, errors {:?}",
        t.refused.len(),
        t.errors
    );
    t.median_connected().unwrap_or(Duration::ZERO).as_secs_f64() * 1e6
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    require_root();
    let count: usize = std::env::var("VMGATE_BENCH_CONNECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let host = TestHost::start(&[PORT]);
    let addr = SocketAddr::new(host.v4(), PORT);
    let baseline = median_us(UID_BASE, addr, count);
    println!("median connect() as the last granted user, {count} connects per point");
    println!("no table: {baseline:.1} µs\n");
    println!(
        "| granted users | vmgate's compiled table (µs) | rules/packet | load (ms) | linear rules (µs) | load (ms) | linear / vmgate |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut ours = Vec::new();
    for users in [10u32, 1_000, 10_000] {
        let last = UID_BASE + users - 1;
        let table = TestTable::new(None);
        let (text, per_packet) = compiled(table.name(), host.v4(), users);
        let t0 = Instant::now();
        table.load(&text).expect("the compiled ruleset loads");
        let load_ours = t0.elapsed().as_secs_f64() * 1e3;
        let set = median_us(last, addr, count);
        let t0 = Instant::now();
        table
            .load(&linear(table.name(), host.v4(), users))
            .expect("the linear ruleset loads");
        let load_linear = t0.elapsed().as_secs_f64() * 1e3;
        let lin = median_us(last, addr, count);
        println!(
            "| {users} | {set:.1} | {per_packet} | {load_ours:.0} | {lin:.1} | {load_linear:.0} | {:.2} |",
            lin / set
        );
        ours.push(set);
    }
    let flat = ours.last().copied().unwrap_or(0.0) / ours.first().copied().unwrap_or(1.0);
    println!("\nvmgate's table at 10,000 users / at 10 users: {flat:.2} (flat means close to 1)");
}
