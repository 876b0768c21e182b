//! Real packets through the real kernel: who can connect and who cannot.
//!
//! In a network namespace of the test's own, with listeners on guarded and
//! unguarded ports, every (uid, gid, address, port) is tried with `setpriv`
//! (exact uid, gid and no supplementary groups); the kernel's answer must be
//! the policy's `decide` and the interpreter's on the live listing. Schedules
//! are placed one hour around the real clock, so `meta day`/`meta hour` are
//! exercised for real, in a zone that is not UTC.

mod common;

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use vmgate_policy::nft::{Action, Packet, Ruleset, tcp_flags};
use vmgate_policy::{PlanOptions, StaticDirectory, decide, plan};

struct Listeners(Vec<Child>);

impl Drop for Listeners {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn hhmm(h: i64) -> String {
    format!("{:02}:00", h.rem_euclid(24))
}

#[test]
fn e2e_real_connections_follow_the_policy() {
    let zone = "Asia/Tokyo";
    let now = Timestamp::now();
    let local = now.to_zoned(TimeZone::get(zone).unwrap());
    let h = i64::from(local.hour());
    // Open: from the current hour for two hours; closed: starts in three hours.
    let open = format!("{}-{}", hhmm(h), hhmm(h + 2));
    let closed = format!("{}-{}", hhmm(h + 3), hhmm(h + 4));
    let text = format!(
        r#"
[defaults]
timezone = "{zone}"
[[server]]
name = "srv"
addresses = ["10.200.0.1", "fd00:10:200::1"]
guard_ports = "20001-20010"
[[console]]
name = "a"
server = "srv"
port = 20001
allow = [ {{ users = ["u1"] }}, {{ users = ["u2"], hours = "{open}" }}, {{ users = ["u3"], hours = "{closed}" }} ]
[[console]]
name = "b"
server = "srv"
port = 20002
allow = [ {{ users = ["u4"] }} ]
"#
    );
    let dir = StaticDirectory::new("test")
        .with_user("u1", 2001, 100)
        .with_user("u2", 2002, 100)
        .with_user("u3", 2003, 100)
        .with_user("u4", 2004, 100)
        .with_group("users", 100, &[])
        .with_group("vmconsole", 990, &[]);
    let policy = common::check_text(&text, &dir).expect("valid");
    let table = format!("vmgate_p{}", std::process::id());
    let p = plan(
        &policy,
        &PlanOptions {
            table: table.clone(),
            ..PlanOptions::new(now)
        },
    );

    let ns = common::Netns::new("pkt");
    for args in [
        vec!["ip", "link", "set", "lo", "up"],
        vec!["ip", "addr", "add", "10.200.0.1/32", "dev", "lo"],
        vec![
            "ip",
            "addr",
            "add",
            "fd00:10:200::1/128",
            "dev",
            "lo",
            "nodad",
        ],
    ] {
        let (ok, out) = ns.exec(&args);
        assert!(ok, "{args:?}: {out}");
    }
    let path = common::temp_file("pkt.nft", &p.nft_text);
    let (ok, out) = ns.exec(&["nft", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(ok, "nft -f: {out}");

    let mut listeners = Listeners(Vec::new());
    for port in [20001, 20002, 20011] {
        for spec in [
            format!("TCP4-LISTEN:{port},bind=10.200.0.1,fork,reuseaddr"),
            format!("TCP6-LISTEN:{port},bind=[fd00:10:200::1],fork,reuseaddr"),
        ] {
            listeners.0.push(
                Command::new("ip")
                    .args(["netns", "exec", &ns.0, "socat", &spec, "SYSTEM:true"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("socat runs (install it: scripts/deps.sh vmgate)"),
            );
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));

    let (ok, listing) = ns.exec(&["nft", "-j", "list", "table", "inet", &table]);
    assert!(ok, "{listing}");
    let live = Ruleset::from_json(&serde_json::from_str(&listing).unwrap(), &table).unwrap();

    let addrs: [IpAddr; 2] = [
        "10.200.0.1".parse().unwrap(),
        "fd00:10:200::1".parse().unwrap(),
    ];
    let mut tried = 0;
    let mut admitted = 0;
    for uid in [2001u32, 2002, 2003, 2004, 4242, 0] {
        for gid in [990u32, 100] {
            for addr in addrs {
                for port in [20001u16, 20002, 20011] {
                    let target = format!("/dev/tcp/{addr}/{port}");
                    let (connected, _) = ns.exec(&[
                        "setpriv",
                        &format!("--reuid={uid}"),
                        &format!("--regid={gid}"),
                        "--clear-groups",
                        "timeout",
                        "5",
                        "bash",
                        "-c",
                        &format!("exec 3<>{target}"),
                    ]);
                    let at = Timestamp::now();
                    let d = decide(&policy, uid, gid, addr, port, at);
                    let o = live.evaluate(&Packet {
                        daddr: addr,
                        dport: port,
                        skuid: Some(uid),
                        skgid: Some(gid),
                        flags: tcp_flags::SYN,
                        time: at,
                    });
                    assert_eq!(
                        connected, d.allowed,
                        "kernel vs decide: uid {uid} gid {gid} {addr} port {port}: {d:?}"
                    );
                    assert_eq!(
                        o.action == Action::Accept,
                        d.allowed,
                        "interpreter vs decide: uid {uid} gid {gid} {addr} {port}"
                    );
                    tried += 1;
                    admitted += usize::from(connected);
                }
            }
        }
    }
    assert_eq!(tried, 72);
    // u1 and u2 on a (x2 families), u4 on b (x2), everyone on the unguarded port (x12 x2).
    assert_eq!(admitted, 6 + 24, "admitted {admitted}");
}
