//! The real kernel and the real nft agree with our reading of the ruleset:
//! load the text form in a network namespace of the test's own, list it back
//! with `nft -j`, and interpret both.

mod common;

use jiff::{SignedDuration, Timestamp};
use vmgate_policy::nft::{Packet, Ruleset, tcp_flags};
use vmgate_policy::{PlanOptions, plan};

fn sorted(mut rs: Ruleset) -> Ruleset {
    for s in &mut rs.sets {
        s.elements.sort_by_key(|e| format!("{e:?}"));
    }
    rs
}

#[test]
fn e2e_kernel_listing_of_the_loaded_table_means_what_we_compiled() {
    let ns = common::Netns::new("list");
    let table = format!("vmgate_t{}", std::process::id());
    let policy = common::office();
    let now = common::wednesday();
    let p = plan(
        &policy,
        &PlanOptions {
            table: table.clone(),
            ..PlanOptions::new(now)
        },
    );
    let path = common::temp_file("load.nft", &p.nft_text);
    let (ok, out) = ns.exec(&["nft", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(ok, "nft -f: {out}");
    let (ok, listing) = ns.exec(&["nft", "-j", "list", "table", "inet", &table]);
    assert!(ok, "nft -j list: {listing}");
    let doc: serde_json::Value = serde_json::from_str(&listing).expect("nft prints JSON");
    let live =
        Ruleset::from_json(&doc, &table).expect("the interpreter reads the kernel's listing");
    // Same structure (the kernel may order set elements differently)...
    assert_eq!(sorted(live.clone()), sorted(p.ruleset.clone()));
    // ...and the same verdicts over a week of packets from every principal.
    let addrs: Vec<std::net::IpAddr> = vec![
        "192.168.10.5".parse().unwrap(),
        "fd00::5".parse().unwrap(),
        "10.200.0.1".parse().unwrap(),
    ];
    let mut n = 0;
    for uid in [0, 1021, 1022, 1023, 1024, 1025, 1026, 1027, 4242] {
        for gid in [990, 100] {
            for &daddr in &addrs {
                for dport in [20000, 20002, 20004, 20006, 20008, 20010, 20011] {
                    for hour in (0..7 * 24).step_by(5) {
                        let time: Timestamp = now + SignedDuration::from_hours(hour);
                        let pkt = Packet {
                            daddr,
                            dport,
                            skuid: Some(uid),
                            skgid: Some(gid),
                            flags: tcp_flags::SYN,
                            time,
                        };
                        assert_eq!(live.evaluate(&pkt), p.ruleset.evaluate(&pkt));
                        n += 1;
                    }
                }
            }
        }
    }
    assert!(n > 10_000, "{n}");
    assert_eq!(
        vmgate_policy::nft::diff(&live, &p.ruleset),
        Vec::<String>::new()
    );
    // verify's view: the live table's access matrix over a week equals the policy's.
    let times =
        vmgate_policy::matrix::probe_times(&policy, now, now + SignedDuration::from_hours(7 * 24));
    let drift = vmgate_policy::matrix::drift(&policy, &live, &times);
    assert!(drift.is_empty(), "{drift:?}");
}

#[test]
fn e2e_kernel_reads_back_single_ports_odd_names_and_root_exemption_alike() {
    let dir = vmgate_policy::StaticDirectory::new("test")
        .with_user("u1", 2001, 100)
        .with_user("u2", 2002, 100)
        .with_group("users", 100, &[])
        .with_group("vmconsole", 990, &[])
        .with_group("team", 3000, &["u2"]);
    let text = r#"
[defaults]
exempt_root = true
log_denied = false
timezone = "Asia/Kolkata"
[[server]]
name = "one"
addresses = ["10.200.0.1"]
guard_ports = 20001
[[server]]
name = "six"
addresses = ["fd00:10:200::1", "fd00:10:200::2", "10.200.0.2"]
guard_ports = "20001-20002"
[[console]]
name = "a"
server = "one"
port = 20001
allow = [ { users = ["u1"], hours = "22:00-02:00" } ]
[[console]]
name = "b"
server = "six"
port = 20002
allow = [ { groups = ["team"], days = ["sat", "sun"] }, { users = ["u1"] } ]
"#;
    let policy = common::check_text(text, &dir).expect("valid");
    let ns = common::Netns::new("odd");
    let table = format!("vmgate_o{}", std::process::id());
    let now: Timestamp = "2026-06-13T20:00:00Z".parse().unwrap();
    let p = plan(
        &policy,
        &PlanOptions {
            table: table.clone(),
            ..PlanOptions::new(now)
        },
    );
    let path = common::temp_file("odd.nft", &p.nft_text);
    let (ok, out) = ns.exec(&["nft", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(ok, "nft -f: {out}\n{}", p.nft_text);
    let (ok, listing) = ns.exec(&["nft", "-j", "list", "table", "inet", &table]);
    assert!(ok, "{listing}");
    let live = Ruleset::from_json(&serde_json::from_str(&listing).unwrap(), &table).unwrap();
    assert_eq!(sorted(live.clone()), sorted(p.ruleset.clone()), "{listing}");
    let times =
        vmgate_policy::matrix::probe_times(&policy, now, now + SignedDuration::from_hours(7 * 24));
    assert!(vmgate_policy::matrix::drift(&policy, &live, &times).is_empty());
}
