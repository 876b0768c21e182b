//! Snapshot tests of every generated text, each also checked by the real tool.

mod common;

use vmgate_policy::vv::Secrets;
use vmgate_policy::{PlanOptions, StaticDirectory, plan};

fn office_plan(table: &str) -> vmgate_policy::Plan {
    let mut o = PlanOptions::new(common::wednesday());
    o.table = table.into();
    plan(&common::office(), &o)
}

#[test]
fn office_nft_text() {
    insta::assert_snapshot!("office_nft", office_plan("vmgate").nft_text);
}

#[test]
fn office_nft_json() {
    let json = serde_json::to_string_pretty(&office_plan("vmgate").nft_json).unwrap();
    insta::assert_snapshot!("office_nft_json", json);
}

#[test]
fn office_sudoers() {
    insta::assert_snapshot!("office_sudoers", office_plan("vmgate").sudoers);
}

#[test]
fn office_vv_files() {
    let p = office_plan("vmgate");
    for v in &p.vv_files {
        insta::assert_snapshot!(
            format!("office_vv_{}", v.console),
            v.render(Secrets::default())
        );
    }
    let with = p.vv_files[2].render(Secrets {
        ca: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
        password: Some("s3cret"),
    });
    insta::assert_snapshot!("office_vv_winbooks_with_secrets", with);
}

#[test]
fn office_units() {
    for u in &office_plan("vmgate").units {
        insta::assert_snapshot!(format!("office_unit_{}", u.name), u.text);
    }
}

#[test]
fn office_plan_text() {
    insta::assert_snapshot!("office_plan", office_plan("vmgate").to_text());
}

/// A policy with what sudoers must escape or spell numerically.
fn odd_policy() -> vmgate_policy::Policy {
    let dir = StaticDirectory::new("test")
        .with_user("john@corp", 5000, 100)
        .with_user("mark", 1028, 100)
        .with_group("users", 100, &[])
        .with_group("vm console", 990, &[])
        .with_group("mygroup", 991, &[]);
    let text = r#"
[defaults]
group = "vm console"
nopasswd = true
env_keep = ["QT_SCALE_FACTOR"]
timezone = "UTC"
[[server]]
name = "s"
addresses = ["10.200.0.1"]
guard_ports = "20001-20002"
[[console]]
name = "c"
server = "s"
port = 20001
allow = [ { users = ["john@corp"], days = ["sat"] } ]
[[pin]]
command = "/usr/bin/myprog"
args = ["-h", "host:8080", "a,b=c", "back\\slash"]
users = ["mark"]
group = "mygroup"
nopasswd = false
"#;
    common::check_text(text, &dir).expect("valid")
}

#[test]
fn odd_sudoers() {
    let p = plan(&odd_policy(), &PlanOptions::new(common::wednesday()));
    insta::assert_snapshot!("odd_sudoers", p.sudoers);
}

#[test]
fn every_sudoers_snapshot_passes_visudo() {
    for (tag, text) in [
        ("office", office_plan("vmgate").sudoers),
        (
            "odd",
            plan(&odd_policy(), &PlanOptions::new(common::wednesday())).sudoers,
        ),
    ] {
        let path = common::temp_file(&format!("sudoers-{tag}"), &text);
        let (ok, out) = common::run("visudo", &["-cf", path.to_str().unwrap()], &[]);
        let _ = std::fs::remove_file(&path);
        assert!(ok, "visudo rejects the {tag} drop-in: {out}\n{text}");
    }
}

#[test]
fn e2e_every_nft_snapshot_passes_nft_check_in_a_netns_of_its_own() {
    let ns = common::Netns::new("check");
    for (tag, text) in [
        ("office", office_plan("vmgate").nft_text),
        (
            "odd",
            plan(&odd_policy(), &PlanOptions::new(common::wednesday())).nft_text,
        ),
    ] {
        let path = common::temp_file(&format!("nft-{tag}"), &text);
        let (ok, out) = ns.exec(&["nft", "-c", "-f", path.to_str().unwrap()]);
        let _ = std::fs::remove_file(&path);
        assert!(ok, "nft -c rejects the {tag} ruleset: {out}\n{text}");
    }
}

#[test]
fn every_unit_passes_systemd_analyze_verify() {
    // systemd-analyze checks that ExecStart binaries exist: point vmgate's at
    // one that does; everything else is the real text.
    let mut o = PlanOptions::new(common::wednesday());
    o.vmgate_bin = "/usr/bin/true".into();
    let p = plan(&common::office(), &o);
    let dir = std::env::temp_dir().join(format!("vmgate-a-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    for u in &p.units {
        let path = dir.join(&u.name);
        std::fs::write(&path, &u.text).unwrap();
        paths.push(path.to_str().unwrap().to_string());
    }
    let mut args = vec!["verify", "--man=no"];
    args.extend(paths.iter().map(String::as_str));
    let (ok, out) = common::run("systemd-analyze", &args, &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok && out.trim().is_empty(), "systemd-analyze verify: {out}");
}
