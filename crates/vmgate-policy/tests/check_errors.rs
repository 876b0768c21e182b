//! Every bad input the issue lists gets its own error, all in one run, each
//! with file:line:column and a fix.

mod common;

use vmgate_policy::StaticDirectory;

fn dir() -> StaticDirectory {
    StaticDirectory::new("test")
        .with_user("myself", 1021, 100)
        .with_user("mybro", 1022, 100)
        .with_user("insider", 1030, 990)
        .with_user("mark", 1028, 100)
        .with_group("users", 100, &[])
        .with_group("vmconsole", 990, &["mybro"])
        .with_group("mygroup", 991, &[])
}

const BAD: &str = r#"[defaults]
group = "vmconsole"
timezone = "Mars/Olympus"

[[server]]
name = "mysrv"
addresses = ["192.168.10.5", "mysrv.example.org"]
guard_ports = "20001-20010"

[[server]]
name = "mysrv"
addresses = ["10.200.0.9"]
guard_ports = "20001-20010"

[[console]]
name = "debianx"
server = "mysrv"
port = 20002
allow = [ { users = ["myself", "nosuchuser"] } ]

[[console]]
name = "debianx"
server = "mysrv"
port = 20002
allow = [ { users = ["mybro"], hours = "8-18" } ]

[[console]]
name = "faraway"
server = "mysrv"
port = 30000
allow = [ { groups = ["nosuchgroup"], days = ["mon", "someday"] } ]

[[console]]
name = "ghost"
server = "nosrv"
port = 20003
allow = [ { users = ["insider"] } ]

[[pin]]
command = "/usr/bin/myprog"
args = ["-h", "two words", "spice://h?tls-port=1"]
users = ["mark"]
group = "mygroup"
"#;

fn expect(errors: &str, needle: &str, at: &str) {
    let line = errors
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no error containing `{needle}` in:\n{errors}"));
    assert!(
        line.starts_with(&format!("policy.toml:{at}: error:")),
        "`{needle}` should be at {at}: {line}"
    );
}

#[test]
fn every_listed_bad_input_is_reported_at_once_with_place_and_fix() {
    let err = common::check_text(BAD, &dir()).expect_err("the policy is full of mistakes");
    let text = err.to_string();
    expect(&text, "unknown time zone `Mars/Olympus`", "3:12");
    expect(
        &text,
        "user `mybro` is a member of the special group",
        "2:9",
    );
    expect(
        &text,
        "user `insider` is a member of the special group",
        "2:9",
    );
    expect(
        &text,
        "`mysrv.example.org` is a host name where an address is needed",
        "7:30",
    );
    expect(&text, "duplicate server name `mysrv`", "11:8");
    expect(&text, "unknown user `nosuchuser`", "19:32");
    expect(&text, "duplicate console name `debianx`", "22:8");
    expect(&text, "console `debianx` already uses port 20002", "24:8");
    expect(&text, "`8` is not a time HH:MM", "25:40");
    expect(
        &text,
        "port 30000 is outside the guard range 20001-20010",
        "30:8",
    );
    expect(&text, "unknown group `nosuchgroup`", "31:23");
    expect(&text, "`someday` is not a day", "31:54");
    expect(&text, "unknown server `nosrv`", "35:10");
    expect(
        &text,
        "argument `two words` cannot be placed safely in sudoers",
        "41:15",
    );
    expect(
        &text,
        "argument `spice://h?tls-port=1` cannot be placed safely in sudoers: `?` is a wildcard",
        "41:28",
    );
    // Every error says how to fix it.
    assert_eq!(text.matches("= help: ").count(), err.items.len());
    assert!(err.items.len() >= 15, "{}", err.items.len());
    insta::assert_snapshot!("all_errors", text);
}

#[test]
fn a_grant_to_a_member_of_the_special_group_is_refused_where_it_is_written() {
    let text = r#"
[[server]]
name = "s"
addresses = ["10.200.0.1"]
guard_ports = 20001
[[console]]
name = "c"
server = "s"
port = 20001
allow = [ { users = ["insider"] } ]
"#;
    let err = common::check_text(text, &dir()).unwrap_err().to_string();
    assert!(
        err.contains(
            "policy.toml:10:22: error: user `insider` is a member of the special group `vmconsole`"
        ),
        "{err}"
    );
}

#[test]
fn shape_errors_point_at_the_unknown_key() {
    let text = "[defaults]\nviewr = \"/usr/bin/x\"\n";
    let err = common::check_text(text, &dir()).unwrap_err();
    let s = err.to_string();
    assert!(
        s.starts_with("policy.toml:2:1: error: unknown key `viewr`"),
        "{s}"
    );
    assert!(s.contains("did you mean `viewer`?"), "{s}");
}

#[test]
fn wildcards_in_the_viewer_path_are_refused() {
    let text = "[defaults]\nviewer = \"/usr/bin/remote-*\"\ngroup = \"mygroup\"\n";
    let err = common::check_text(text, &dir()).unwrap_err().to_string();
    assert!(err.contains("policy.toml:2:10: error: `/usr/bin/remote-*` cannot be placed safely in sudoers: `*` is a wildcard"), "{err}");
}

#[test]
fn the_example_is_valid() {
    let p = common::office();
    assert_eq!(p.consoles.len(), 4);
    assert_eq!(p.defaults.group.gid, 990);
}

#[test]
fn every_shape_error_is_reported_at_once() {
    let text = r#"[defaults]
viewr = "/usr/bin/x"
nopasswd = "yes"

[[server]]
name = "s"
addresses = ["10.200.0.1", 5]

[[console]]
name = "c"
server = "s"
port = "20002"
alow = [ { users = ["myself"] } ]
"#;
    let err = common::check_text(text, &dir()).unwrap_err();
    let s = err.to_string();
    for needle in [
        "policy.toml:2:1: error: unknown key `viewr`",
        "policy.toml:3:12: error: expected true or false, found a string",
        "policy.toml:5:1: error: missing key `guard_ports`",
        "policy.toml:7:28: error: expected a string, found an integer",
        "policy.toml:12:8: error: expected an integer, found a string",
        "policy.toml:13:1: error: unknown key `alow`",
    ] {
        assert!(s.contains(needle), "missing `{needle}` in:\n{s}");
    }
    assert_eq!(err.items.len(), 6, "{s}");
}

#[test]
fn syntax_errors_have_places_too() {
    let err = common::check_text("[defaults]\nviewer = /usr/bin/x\n", &dir()).unwrap_err();
    let s = err.to_string();
    assert!(
        s.starts_with("policy.toml:2:10: error: TOML syntax:"),
        "{s}"
    );
}

#[test]
fn a_file_pinned_with_two_groups_is_refused() {
    let text = r#"
[[pin]]
command = "/usr/bin/myprog"
users = ["mark"]
group = "mygroup"
[[pin]]
command = "/usr/bin/remote-viewer"
users = ["mark"]
group = "mygroup"
"#;
    let err = common::check_text(text, &dir()).unwrap_err().to_string();
    assert!(
        err.contains("policy.toml:9:9: error: `/usr/bin/remote-viewer` is already pinned with group `vmconsole`"),
        "{err}"
    );
}
