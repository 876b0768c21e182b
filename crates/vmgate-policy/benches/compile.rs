//! Benchmark (not a timed test): compile a policy of 10,000 users and 1,000
//! consoles; report the time, the ruleset's size, and the rules a packet
//! traverses as the number of users grows.
//!
//! Run: `cargo bench -p vmgate-policy --bench compile`

use std::fmt::Write as _;
use std::time::Instant;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use vmgate_policy::nft::{Packet, tcp_flags};
use vmgate_policy::{CheckInput, PlanOptions, StaticDirectory, check, plan};

const SCHEDULES: &[&str] = &[
    "days = [\"mon\", \"tue\"]",
    "days = [\"wed\", \"thu\"], hours = \"08:00-18:00\"",
    "days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"], hours = \"18:00-22:00\"",
];

fn policy(users: u32, consoles: u32) -> (String, StaticDirectory) {
    let mut dir = StaticDirectory::new("bench");
    dir.add_group("users", 100, &[]);
    dir.add_group("vmconsole", 990, &[]);
    for u in 0..users {
        dir.add_user(&format!("user{u}"), 10_000 + u, 100);
    }
    let servers = consoles.div_ceil(100);
    let mut t = String::from("[defaults]\ngroup = \"vmconsole\"\ntimezone = \"Europe/Berlin\"\n\n");
    for s in 0..servers {
        let _ = writeln!(
            t,
            "[[server]]\nname = \"srv{s}\"\naddresses = [\"10.200.{}.{}\", \"fd00:10:200::{s:x}\"]\nguard_ports = \"20001-20100\"\n",
            s / 250,
            s % 250 + 1
        );
    }
    let per = (users / consoles).max(1);
    for c in 0..consoles {
        let _ = writeln!(
            t,
            "[[console]]\nname = \"vm{c}\"\nserver = \"srv{}\"\nport = {}\nallow = [",
            c / 100,
            20001 + c % 100
        );
        for k in 0..per {
            let u = (c * per + k) % users;
            // One grant in five has a schedule, from a few distinct ones.
            let sched = if u % 5 == 0 {
                format!(", {}", SCHEDULES[(u / 5) as usize % SCHEDULES.len()])
            } else {
                String::new()
            };
            let _ = writeln!(t, "  {{ users = [\"user{u}\"]{sched} }},");
        }
        t.push_str("]\n\n");
    }
    (t, dir)
}

fn main() {
    let now: Timestamp = "2026-12-02T09:00:00Z".parse().unwrap();
    println!(
        "users  consoles  check_ms  plan_ms  rules  elements  nft_text_kB  max_rules/packet  traversed(granted,denied)"
    );
    for (users, consoles) in [(10, 1), (1_000, 100), (10_000, 1_000)] {
        let (text, dir) = policy(users, consoles);
        let t0 = Instant::now();
        let p = check(
            &CheckInput {
                file: "bench.toml",
                text: &text,
                system_timezone: TimeZone::UTC,
            },
            &dir,
        )
        .expect("valid");
        let t1 = Instant::now();
        let pl = plan(&p, &PlanOptions::new(now));
        let t2 = Instant::now();
        let pkt = |uid: u32, gid: u32| Packet {
            daddr: "10.200.0.1".parse().unwrap(),
            dport: 20001,
            skuid: Some(uid),
            skgid: Some(gid),
            flags: tcp_flags::SYN,
            time: now,
        };
        let t3 = Instant::now();
        let ev = vmgate_policy::nft::Evaluator::new(&pl.ruleset);
        let granted = ev.evaluate(&pkt(10_001, 990));
        let denied = ev.evaluate(&pkt(99_999, 990));
        let back = vmgate_policy::nft::Ruleset::from_json(&pl.nft_json, "vmgate").expect("parses");
        let same = vmgate_policy::nft::diff(&back, &pl.ruleset).is_empty();
        let t4 = Instant::now();
        println!(
            "{users:>6} {consoles:>8} {:>9.1} {:>8.1} {:>6} {:>9} {:>12} {:>17} {:>10},{}",
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            pl.ruleset.rule_count(),
            pl.ruleset.element_count(),
            pl.nft_text.len() / 1024,
            pl.max_rules_per_packet,
            granted.rules_traversed,
            denied.rules_traversed,
        );
        println!(
            "       verify-side: index + read JSON back + diff {:.1} ms (equal: {same})",
            (t4 - t3).as_secs_f64() * 1e3
        );
    }
}
