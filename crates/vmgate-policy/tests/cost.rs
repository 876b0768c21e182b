//! Per-packet cost does not grow with the number of users: the rules a packet
//! traverses depend on the distinct schedule windows only.

mod common;

use std::fmt::Write as _;

use vmgate_policy::nft::{Packet, tcp_flags};
use vmgate_policy::{PlanOptions, StaticDirectory, plan};

fn office_of(users: u32) -> vmgate_policy::Plan {
    let mut dir = StaticDirectory::new("cost")
        .with_group("users", 100, &[])
        .with_group("vmconsole", 990, &[]);
    let mut t = String::from(
        "[defaults]\ngroup = \"vmconsole\"\ntimezone = \"Europe/Berlin\"\n[[server]]\nname = \"s\"\naddresses = [\"10.200.0.1\", \"fd00:10:200::1\"]\nguard_ports = \"20001-20010\"\n[[console]]\nname = \"c\"\nserver = \"s\"\nport = 20001\nallow = [\n",
    );
    for u in 0..users {
        dir.add_user(&format!("u{u}"), 10_000 + u, 100);
        let when = [
            "",
            ", days = [\"mon\"]",
            ", days = [\"wed\"], hours = \"08:00-18:00\"",
        ][(u % 3) as usize];
        let _ = writeln!(t, "{{ users = [\"u{u}\"]{when} }},");
    }
    t.push_str("]\n");
    let p = common::check_text(&t, &dir).expect("valid");
    plan(&p, &PlanOptions::new(common::wednesday()))
}

#[test]
fn rules_per_packet_are_the_same_for_ten_and_three_thousand_users() {
    let small = office_of(10);
    let large = office_of(3_000);
    assert_eq!(small.max_rules_per_packet, large.max_rules_per_packet);
    assert_eq!(small.ruleset.rule_count(), large.ruleset.rule_count());
    assert!(large.ruleset.element_count() > 100 * small.ruleset.element_count());
    // A denied packet walks every rule of its path, in both.
    let pkt = Packet {
        daddr: "10.200.0.1".parse().unwrap(),
        dport: 20001,
        skuid: Some(4242),
        skgid: Some(990),
        flags: tcp_flags::SYN,
        time: common::wednesday(),
    };
    assert_eq!(
        small.ruleset.evaluate(&pkt).rules_traversed,
        large.ruleset.evaluate(&pkt).rules_traversed
    );
}
