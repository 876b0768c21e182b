//! The harness measures something real: a hand-written table in the shape vmgate
//! generates (`meta skuid . meta skgid . ip daddr . tcp dport @grants`) must produce
//! exactly the expected connect/refuse matrix over IPv4 and IPv6, the refusals must be in
//! the kernel log with the uid, and nothing may be left behind.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use vmgate_system::kmsg;
use vmgate_testbed::{
    Probe, ProbeOutcome, SysctlGuard, TestGroup, TestHost, TestNetns, TestTable, TestUser,
    require_root, run_text, unique_name,
};

use ProbeOutcome::{Connected, Refused};

const P1: u16 = 5900;
const P2: u16 = 5901;
const OPEN: u16 = 6000;

/// Accepts (uid, gid) to host:P1 only; P1 and P2 are guarded; OPEN is not.
fn ruleset(table: &str, prefix: &str, host: &TestHost, uid: u32, gid: u32) -> String {
    let (h4, h6) = (host.v4(), host.v6());
    format!(
        r#"table inet {table} {{
  set grants4 {{ type uid . gid . ipv4_addr . inet_service; elements = {{ {uid} . {gid} . {h4} . {P1} }} }}
  set grants6 {{ type uid . gid . ipv6_addr . inet_service; elements = {{ {uid} . {gid} . {h6} . {P1} }} }}
  chain output {{
    type filter hook output priority filter; policy accept;
    tcp flags & (syn | ack) != syn accept
    meta skuid . meta skgid . ip daddr . tcp dport @grants4 accept
    meta skuid . meta skgid . ip6 daddr . tcp dport @grants6 accept
    ip daddr {h4} tcp dport {{ {P1}, {P2} }} log prefix "{prefix}" flags skuid reject with tcp reset
    ip6 daddr {h6} tcp dport {{ {P1}, {P2} }} log prefix "{prefix}" flags skuid reject with tcp reset
  }}
}}"#
    )
}

struct Case {
    who: &'static str,
    probe: Probe,
    /// Expected outcome for P1, P2, OPEN.
    expect: [ProbeOutcome; 3],
}

fn matrix(granted: &TestUser, other: &TestUser, group: &TestGroup, ns: Option<&str>) -> Vec<Case> {
    let g = group.gid();
    vec![
        Case {
            who: "granted user with the pinned group",
            probe: Probe::as_ids(granted.uid(), g),
            expect: [Connected, Refused, Connected],
        },
        Case {
            who: "granted user as himself",
            probe: Probe::as_user(granted),
            expect: [Refused, Refused, Connected],
        },
        Case {
            who: "granted user with the group as supplementary only",
            probe: Probe::as_user(granted).groups(&[granted.gid(), g]),
            expect: [Refused, Refused, Connected],
        },
        Case {
            who: "other user with the pinned group",
            probe: Probe::as_ids(other.uid(), g),
            expect: [Refused, Refused, Connected],
        },
        Case {
            who: "root",
            probe: Probe::root(),
            expect: [Refused, Refused, Connected],
        },
    ]
    .into_iter()
    .map(|c| Case {
        probe: c.probe.in_netns(ns),
        ..c
    })
    .collect()
}

/// Runs every case against both addresses; returns the mismatches, readable.
fn run_matrix(cases: &[Case], host: &TestHost) -> Vec<String> {
    let mut wrong = Vec::new();
    for case in cases {
        for ip in host.addrs() {
            for (port, expected) in [P1, P2, OPEN].into_iter().zip(&case.expect) {
                let got = case.probe.connect(SocketAddr::new(ip, port));
                if &got != expected {
                    wrong.push(format!(
                        "{}: {ip} port {port}: expected {expected:?}, got {got:?}",
                        case.who
                    ));
                }
            }
        }
    }
    wrong
}

fn everyone_connects(cases: &[Case], host: &TestHost) {
    for case in cases {
        for ip in host.addrs() {
            for port in [P1, P2, OPEN] {
                assert_eq!(
                    case.probe.connect(SocketAddr::new(ip, port)),
                    Connected,
                    "without the table, {} must reach {ip} port {port}",
                    case.who
                );
            }
        }
    }
}

/// A logged denial as (uid, gid, destination, destination port).
type Logged = (Option<u32>, Option<u32>, IpAddr, Option<u16>);

fn denied(prefix: &str, after: u64) -> BTreeSet<Logged> {
    kmsg::denials(prefix)
        .unwrap()
        .into_iter()
        .filter(|d| d.seq > after)
        .map(|d| (d.uid, d.gid, d.dst, d.dport))
        .collect()
}

/// Names from `names` that still appear, as whole words, in the namespaces, tables,
/// users, groups or links of the machine.
fn leftovers(names: &[String]) -> Vec<String> {
    let state = [
        run_text(&["ip", "netns", "list"]),
        run_text(&["nft", "list", "tables"]),
        run_text(&["getent", "passwd"]),
        run_text(&["getent", "group"]),
        run_text(&["ip", "-o", "link"]),
    ]
    .join("\n");
    let words: BTreeSet<&str> = state
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    names
        .iter()
        .filter(|n| words.contains(n.as_str()))
        .cloned()
        .collect()
}

#[test]
fn e2e_harness_measures_the_uid_gid_matrix_in_the_root_namespace() {
    require_root();
    let names;
    {
        let granted = TestUser::create();
        let other = TestUser::create();
        let group = TestGroup::create();
        let host = TestHost::start(&[P1, P2, OPEN]);
        let table = TestTable::new(None);
        names = vec![
            granted.name().to_owned(),
            other.name().to_owned(),
            group.name().to_owned(),
            host.host_netns().to_owned(),
            host.client_if().to_owned(),
            table.name().to_owned(),
        ];
        let cases = matrix(&granted, &other, &group, None);

        // The control: without the table everyone reaches every port, so a refusal
        // later is the table's doing.
        everyone_connects(&cases, &host);
        let accepted_before = host.accepted(P1);

        let prefix = format!("{}: ", unique_name("log"));
        let text = ruleset(table.name(), &prefix, &host, granted.uid(), group.gid());
        table.check(&text).unwrap();
        let seq = kmsg::last_seq().unwrap();
        table.load(&text).unwrap();

        let wrong = run_matrix(&cases, &host);
        assert!(
            wrong.is_empty(),
            "access matrix differs:\n{}",
            wrong.join("\n")
        );
        assert_eq!(
            host.accepted(P1) - accepted_before,
            2,
            "only the granted user with the pinned group reaches P1, once per address family"
        );

        // Refusals are logged with the uid, over both families; the grant is not.
        let log = denied(&prefix, seq);
        for ip in host.addrs() {
            assert!(
                log.contains(&(Some(granted.uid()), Some(granted.gid()), ip, Some(P1))),
                "no logged denial of uid {} to {ip}:{P1}: {log:?}",
                granted.uid()
            );
            assert!(
                log.contains(&(Some(other.uid()), Some(group.gid()), ip, Some(P1))),
                "{log:?}"
            );
            assert!(log.contains(&(Some(0), Some(0), ip, Some(P2))), "{log:?}");
        }
        assert!(
            !log.contains(&(Some(granted.uid()), Some(group.gid()), host.v4(), Some(P1))),
            "the granted connection was logged as a denial: {log:?}"
        );
        assert!(
            log.iter().all(|(_, _, _, port)| *port != Some(OPEN)),
            "{log:?}"
        );

        // A session is cut when the grant goes away (established packets of a
        // non-granted socket hit the reject rule once we judge them too).
        table.delete().unwrap();
        everyone_connects(&cases, &host);
    }
    let left = leftovers(&names);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn e2e_harness_works_from_a_client_namespace_and_logs_only_with_nf_log_all_netns() {
    require_root();
    let names;
    {
        let granted = TestUser::create();
        let other = TestUser::create();
        let group = TestGroup::create();
        let client = TestNetns::create();
        let host = TestHost::builder()
            .ports(&[P1, P2, OPEN])
            .client_netns(&client)
            .start();
        let table = TestTable::new(Some(client.name()));
        names = vec![
            granted.name().to_owned(),
            group.name().to_owned(),
            client.name().to_owned(),
            host.host_netns().to_owned(),
            host.client_if().to_owned(),
            table.name().to_owned(),
        ];
        let cases = matrix(&granted, &other, &group, Some(client.name()));
        everyone_connects(&cases, &host);

        let prefix = format!("{}: ", unique_name("log"));
        table
            .load(&ruleset(
                table.name(),
                &prefix,
                &host,
                granted.uid(),
                group.gid(),
            ))
            .unwrap();
        let wrong = run_matrix(&cases, &host);
        assert!(
            wrong.is_empty(),
            "access matrix differs:\n{}",
            wrong.join("\n")
        );
        assert!(
            run_text(&["nft", "list", "tables"])
                .lines()
                .all(|l| !l.contains(table.name())),
            "the table must stay in the client namespace"
        );

        let denial = SocketAddr::new(host.v4(), P1);
        let seq = kmsg::last_seq().unwrap();
        {
            let _off = SysctlGuard::set("net.netfilter.nf_log_all_netns", "0");
            assert_eq!(
                Probe::as_user(&granted)
                    .in_netns(Some(client.name()))
                    .connect(denial),
                Refused
            );
            assert!(
                denied(&prefix, seq).is_empty(),
                "nft log in a non-initial namespace is dropped while nf_log_all_netns=0"
            );
        }
        let seq = kmsg::last_seq().unwrap();
        {
            let _on = SysctlGuard::set("net.netfilter.nf_log_all_netns", "1");
            assert_eq!(
                Probe::as_user(&granted)
                    .in_netns(Some(client.name()))
                    .connect(denial),
                Refused
            );
            let log = denied(&prefix, seq);
            assert!(
                log.contains(&(
                    Some(granted.uid()),
                    Some(granted.gid()),
                    host.v4(),
                    Some(P1)
                )),
                "with nf_log_all_netns=1 the denial is logged with the uid: {log:?}"
            );
        }
    }
    let left = leftovers(&names);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn e2e_an_open_session_is_cut_when_a_rule_starts_refusing_it() {
    require_root();
    let user = TestUser::create();
    let host = TestHost::start(&[P1]);
    let table = TestTable::new(None);
    let addr = SocketAddr::new(host.v6(), P1);
    let wait = std::time::Duration::from_secs(3);
    let mut session = Probe::as_user(&user).open_session(addr);
    assert!(
        session.echo(b"hello\n", wait),
        "the session must work before the rule"
    );
    // Judges every packet, not only the first, as a policy must to close a window.
    table
        .load(&format!(
            "table inet {} {{ chain output {{ type filter hook output priority filter; policy accept; \
             ip6 daddr {} tcp dport {P1} meta skuid {} reject with tcp reset; }}; }}",
            table.name(),
            host.v6(),
            user.uid()
        ))
        .unwrap();
    assert!(
        !session.echo(b"again\n", wait),
        "data passed after the rule was loaded"
    );
    assert!(
        session.wait_closed(wait),
        "the reset did not end the session"
    );
}
