//! The binary as users run it, on a machine where the example's users do not exist.

use std::process::{Command, Output};

fn vmgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmgate"))
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("vmgate runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const WEDNESDAY: &str = "2026-12-02T10:00:00+01:00";

/// A console port outside its server's guard range: invalid whatever the machine's users
/// (`policy.toml:9:8`).
const PORT_OUTSIDE_GUARD: &str = "[[server]]\nname = \"s\"\naddresses = [\"10.200.0.1\"]\nguard_ports = \"1-10\"\n\n[[console]]\nname = \"c\"\nserver = \"s\"\nport = 11\nallow = []\n";

/// `text` as `policy.toml` in a scratch directory, removed when the guard drops.
fn policy_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn plan_example_prints_rules_a_reader_of_post_3_recognises() {
    let o = vmgate(&["plan", "--example", "--at", WEDNESDAY]);
    assert!(o.status.success(), "{o:?}");
    let s = stdout(&o);
    // Clearly labelled demo users, with the post's uids.
    assert!(s.contains("built-in demo directory of the example (not this machine's users)"));
    assert!(s.contains("myself=1021 mybro=1022"));
    // Post 3's rule 6 (guard 20001:20010) and rules 4/5 (uid -> port 20002/20004).
    assert!(s.contains("192.168.10.5 . 20001-20010"), "{s}");
    assert!(s.contains("1021 . 990 . 192.168.10.5 . 20002"));
    assert!(s.contains("1022 . 990 . 192.168.10.5 . 20004"));
    assert!(s.contains("log prefix \"vmgate denied: \" level info flags skuid"));
    // Post 3's sudoers line, with a connection file instead of a spice:// argument.
    assert!(s.contains(
        "myself ALL=(myself:spicegrp) /usr/bin/remote-viewer -- /etc/vmgate/consoles/debianx.vv"
    ));
    assert!(s.contains("Defaults:VMGATE_USERS env_keep += \"DISPLAY"));
    // Post 2's pinned command.
    assert!(s.contains("mark ALL=(mark:mygroup) /usr/bin/myprog -h -L 0"));
    assert!(s.contains("0750 root:spicegrp /usr/bin/remote-viewer"));
}

#[test]
fn plan_example_json_is_machine_readable() {
    let o = vmgate(&[
        "plan",
        "--example",
        "--format",
        "json",
        "--table",
        "t1",
        "--at",
        WEDNESDAY,
    ]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["table"], "t1");
    assert_eq!(v["schedule"]["timezone"], "Europe/Berlin");
    assert_eq!(v["schedule"]["utc_offset"], "+01:00");
    assert_eq!(v["schedule"]["next_change"], "2027-03-28T01:00:00Z");
}

#[test]
fn explain_mybro_may_not_reach_debianx() {
    let o = vmgate(&[
        "explain",
        "--example",
        "--user",
        "mybro",
        "--console",
        "debianx",
        "--at",
        WEDNESDAY,
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let s = stdout(&o);
    assert!(
        s.starts_with("DENIED: mybro (uid 1022) may not open console debianx"),
        "{s}"
    );
    assert!(s.contains("no grant on debianx names mybro"), "{s}");
}

#[test]
fn explain_maggie_may_not_reach_leaptest_on_a_wednesday_and_learns_when_she_may() {
    let o = vmgate(&[
        "explain",
        "--example",
        "--user",
        "maggie",
        "--console",
        "leaptest",
        "--at",
        WEDNESDAY,
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let s = stdout(&o);
    assert!(
        s.starts_with(
            "DENIED: maggie (uid 1023) may not open console leaptest at Wed 2026-12-02 10:00 CET"
        ),
        "{s}"
    );
    assert!(s.contains("mon,tue"), "{s}");
    assert!(s.contains("next opening: Mon 2026-12-07 00:00 CET"), "{s}");
}

#[test]
fn explain_yes_cases_name_the_grant_and_the_window() {
    let o = vmgate(&[
        "explain",
        "--example",
        "--user",
        "myself",
        "--console",
        "debianx",
        "--at",
        WEDNESDAY,
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let s = stdout(&o);
    assert!(
        s.starts_with("ALLOWED: myself (uid 1021) may open console debianx"),
        "{s}"
    );
    assert!(s.contains("command: sudo -u myself -g spicegrp /usr/bin/remote-viewer -- /etc/vmgate/consoles/debianx.vv"));

    let o = vmgate(&[
        "explain",
        "--example",
        "--user",
        "anne",
        "--console",
        "leaptest",
        "--at",
        WEDNESDAY,
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let s = stdout(&o);
    assert!(s.contains("window closes: Wed 2026-12-02 18:00 CET"), "{s}");

    let o = vmgate(&[
        "explain",
        "--example",
        "--user",
        "charlie",
        "--console",
        "leaptest",
        "--at",
        WEDNESDAY,
    ]);
    assert!(stdout(&o).contains("as a member of group bookkeeping"));
}

#[test]
fn check_reports_every_error_and_exits_2() {
    let (_dir, path) = policy_file(
        "[defaults]\ngroup = \"root\"\n\n[[server]]\nname = \"s\"\naddresses = [\"kvmhost\"]\nguard_ports = \"1-10\"\n\n[[console]]\nname = \"c\"\nserver = \"s\"\nport = 11\nallow = [ { users = [\"no-such-user-vmgate\"], hours = \"8:00-18:00\" } ]\n",
    );
    let o = vmgate(&["check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let e = String::from_utf8_lossy(&o.stderr);
    for needle in [
        "policy.toml:2:9: error: the special group `root` is root's group",
        "policy.toml:6:14: error: `kvmhost` is a host name where an address is needed",
        "policy.toml:12:8: error: port 11 is outside the guard range 1-10",
        "policy.toml:13:22: error: unknown user `no-such-user-vmgate`",
        "policy.toml:13:54: error: `8:00` is not a time HH:MM",
        // root's primary group is gid 0 on every Linux: found in /etc/passwd.
        "policy.toml:2:9: error: user `root` is a member of the special group `root`",
        "6 problem(s)",
    ] {
        assert!(e.contains(needle), "missing `{needle}` in:\n{e}");
    }
}

#[test]
fn check_example_is_valid_and_missing_file_exits_3() {
    assert!(vmgate(&["check", "--example"]).status.success());
    let o = vmgate(&["check", "/nonexistent/vmgate/policy.toml"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("cannot read the policy /nonexistent/vmgate/policy.toml")
    );
}

#[test]
fn the_example_file_in_the_repo_is_the_built_in_one() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../vmgate-policy/examples/office.toml"
    );
    assert_eq!(
        std::fs::read_to_string(file).unwrap(),
        vmgate_policy::example::OFFICE_TOML
    );
}

#[test]
fn explain_understands_a_plain_weekday() {
    let o = vmgate(&[
        "explain",
        "--example",
        "--user",
        "maggie",
        "--console",
        "leaptest",
        "--at",
        "wed",
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stdout(&o).contains("may not open console leaptest at Wed "),
        "{}",
        stdout(&o)
    );
    let o = vmgate(&[
        "explain",
        "--example",
        "--user",
        "maggie",
        "--console",
        "leaptest",
        "--at",
        "mon 09:00",
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = vmgate(&[
        "explain",
        "--example",
        "--user",
        "maggie",
        "--console",
        "leaptest",
        "--at",
        "someday",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("or a weekday such as `wed`"));
}

#[test]
fn plan_out_writes_every_file_under_the_given_directory_only() {
    let dir = std::env::temp_dir().join(format!("vmgate-cli-out-{}", std::process::id()));
    let o = vmgate(&[
        "plan",
        "--example",
        "--at",
        WEDNESDAY,
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let sudoers = dir.join("etc/sudoers.d/vmgate");
    let checked = Command::new("visudo")
        .args(["-cf", sudoers.to_str().unwrap()])
        .output()
        .expect("visudo runs");
    for f in [
        "etc/vmgate/ruleset.nft",
        "etc/vmgate/ruleset-next.nft",
        "etc/vmgate/consoles/debianx.vv",
        "etc/systemd/system/vmgate-offset.timer",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked.status.success(), "{checked:?}");
}

fn help(sub: &str) -> String {
    let o = vmgate(&[sub, "--help"]);
    assert!(o.status.success(), "{sub} --help: {o:?}");
    stdout(&o)
}

#[test]
fn help_of_the_system_subcommands_lists_their_flags() {
    for (sub, flags) in [
        ("apply", &["--check", "[POLICY]"][..]),
        ("verify", &["--json", "[POLICY]"]),
        ("guard", &["--repair", "[POLICY]"]),
        ("log", &["[POLICY]"]),
    ] {
        let h = help(sub);
        for f in flags {
            assert!(h.contains(f), "`vmgate {sub} --help` lacks {f}:\n{h}");
        }
        assert!(
            h.contains("/etc/vmgate/policy.toml"),
            "{sub}: default policy\n{h}"
        );
    }
    let h = help("uninstall");
    assert!(h.contains("Usage: vmgate uninstall"), "{h}");
    assert!(!h.contains("POLICY"), "uninstall takes no policy:\n{h}");
    // The top-level help names every subcommand and the exit codes of the new ones.
    let o = vmgate(&["--help"]);
    let top = stdout(&o);
    for sub in ["apply", "verify", "guard", "uninstall", "log"] {
        assert!(top.contains(&format!("  {sub} ")), "{sub} missing:\n{top}");
    }
    assert!(
        top.contains("2 changes would be made (apply --check)"),
        "{top}"
    );
    assert!(top.contains("4 invalid policy"), "{top}");
}

#[test]
fn apply_check_and_verify_on_an_invalid_policy_exit_4_with_file_line() {
    let (_dir, path) = policy_file(PORT_OUTSIDE_GUARD);
    let p = path.to_str().unwrap();
    let runs = [
        vmgate(&["apply", "--check", p]),
        vmgate(&["verify", p]),
        vmgate(&["verify", "--json", p]),
    ];
    let [check, verify, verify_json] = runs;
    for o in [&check, &verify] {
        assert_eq!(o.status.code(), Some(4), "{o:?}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("policy.toml:9:8: error: port 11 is outside the guard range 1-10"),
            "{e}"
        );
    }
    assert_eq!(verify_json.status.code(), Some(4), "{verify_json:?}");
    let v: serde_json::Value = serde_json::from_slice(&verify_json.stdout).unwrap();
    assert_eq!(v["valid"], false, "{v}");
}

#[test]
fn connect_refuses_another_invoker_and_names_policy_problems() {
    let (dir, path) = policy_file(PORT_OUTSIDE_GUARD);
    let connect = |policy: &std::path::Path, sudo_uid: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vmgate"));
        c.args(["connect", "--policy"]).arg(policy).env("TZ", "UTC");
        match sudo_uid {
            Some(u) => c.env("SUDO_UID", u),
            None => c.env_remove("SUDO_UID"),
        };
        c.output().expect("vmgate runs")
    };
    let runs = [
        connect(&path, Some("4294967294")),
        connect(&path, None),
        connect(&dir.path().join("missing.toml"), None),
    ];
    let [other, invalid, missing] = runs;
    let err = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    // Started through sudo by someone else: refused before the policy is read.
    assert_eq!(other.status.code(), Some(3), "{other:?}");
    assert!(err(&other).contains("run `vmgate connect` as yourself, without sudo"));
    assert_eq!(invalid.status.code(), Some(2), "{invalid:?}");
    assert!(
        err(&invalid).contains("policy.toml:9:8: error: port 11 is outside the guard range 1-10"),
        "{invalid:?}"
    );
    assert_eq!(missing.status.code(), Some(3), "{missing:?}");
    assert!(
        err(&missing).contains("cannot read the policy"),
        "{missing:?}"
    );
}
