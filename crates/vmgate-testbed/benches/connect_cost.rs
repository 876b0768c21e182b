//! Per-connection setup cost in the kernel with 10, 1,000 and 10,000 granted users: one
//! set lookup (`meta skuid . meta skgid . ip daddr . tcp dport @grants`, the shape vmgate
//! generates) against a linear ruleset of one rule per user (the fwbuilder style), both
//! loaded the same way. The measured user is the last one granted, the linear worst case.
//!
//! Root only: `cargo bench -p vmgate-testbed --bench connect_cost`
//! (`VMGATE_BENCH_CONNECTS` sets the connects per point, default 400).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use vmgate_testbed::{TestGroup, TestHost, TestTable, TestUser, require_root, timed_connects};

const PORT: u16 = 5900;
/// Fake uids for the other granted users: never used by a socket.
const FAKE_UID_BASE: u32 = 3_000_000;

fn set_ruleset(table: &str, host: IpAddr, users: u32, uid: u32, gid: u32) -> String {
    let mut elems = String::new();
    for i in 0..users - 1 {
        let _ = write!(elems, "{} . {gid} . {host} . {PORT}, ", FAKE_UID_BASE + i);
    }
    let _ = write!(elems, "{uid} . {gid} . {host} . {PORT}");
    format!(
        "table inet {table} {{\n  set grants4 {{ type uid . gid . ipv4_addr . inet_service; elements = {{ {elems} }} }}\n  chain output {{\n    type filter hook output priority filter; policy accept;\n    ip daddr {host} tcp dport {PORT} meta skuid . meta skgid . ip daddr . tcp dport @grants4 accept\n    ip daddr {host} tcp dport {PORT} reject with tcp reset\n  }}\n}}\n"
    )
}

fn linear_ruleset(table: &str, host: IpAddr, users: u32, uid: u32, gid: u32) -> String {
    let mut rules = String::new();
    for i in 0..users - 1 {
        let _ = writeln!(
            rules,
            "    meta skuid {} meta skgid {gid} ip daddr {host} tcp dport {PORT} accept",
            FAKE_UID_BASE + i
        );
    }
    let _ = writeln!(
        rules,
        "    meta skuid {uid} meta skgid {gid} ip daddr {host} tcp dport {PORT} accept"
    );
    format!(
        "table inet {table} {{\n  chain output {{\n    type filter hook output priority filter; policy accept;\n{rules}    ip daddr {host} tcp dport {PORT} reject with tcp reset\n  }}\n}}\n"
    )
}

fn median_us(uid: u32, gid: u32, addr: SocketAddr, count: usize) -> f64 {
    // A short warm-up so caches and the neighbour entry are settled.
    let _ = timed_connects(uid, gid, addr, 20);
    let t = timed_connects(uid, gid, addr, count);
    assert!(
        t.refused.is_empty() && t.errors.is_empty(),
        "the granted user was not admitted: {} refused, errors {:?}",
        t.refused.len(),
        t.errors
    );
    t.median_connected().unwrap_or(Duration::ZERO).as_secs_f64() * 1e6
}

fn main() {
    // `cargo test --benches` passes `--bench`-less flags; only run when asked to bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    require_root();
    let count: usize = std::env::var("VMGATE_BENCH_CONNECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let user = TestUser::create();
    let group = TestGroup::create();
    let host = TestHost::start(&[PORT]);
    let addr = SocketAddr::new(host.v4(), PORT);
    let (uid, gid) = (user.uid(), group.gid());

    let baseline = median_us(uid, gid, addr, count);
    println!("median connect() as the last granted user, {count} connects per point");
    println!("no table: {baseline:.1} µs\n");
    println!("| granted users | set lookup (µs) | linear rules (µs) | linear / set |");
    println!("|---:|---:|---:|---:|");
    let mut set_times = Vec::new();
    for users in [10u32, 1_000, 10_000] {
        let table = TestTable::new(None);
        table
            .load(&set_ruleset(table.name(), host.v4(), users, uid, gid))
            .expect("set ruleset loads");
        let set = median_us(uid, gid, addr, count);
        table
            .load(&linear_ruleset(table.name(), host.v4(), users, uid, gid))
            .expect("linear ruleset loads");
        let linear = median_us(uid, gid, addr, count);
        println!("| {users} | {set:.1} | {linear:.1} | {:.2} |", linear / set);
        set_times.push(set);
    }
    let flat = set_times.last().copied().unwrap_or(0.0) / set_times.first().copied().unwrap_or(1.0);
    println!("\nset lookup at 10,000 users / at 10 users: {flat:.2} (flat means close to 1)");
}
