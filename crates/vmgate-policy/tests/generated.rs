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
            "office-next",
            office_plan("vmgate")
                .next_offset
                .expect("Berlin changes its offset")
                .nft_text,
        ),
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

/// Compliance with the real sudo parser: `cvtsudoers -f json` reads our
/// drop-in back, and every rule means exactly the user, run-as user and
/// group, password setting, command and argv we intended (escapes decoded,
/// `#uid` read as a uid and not as a comment).
#[test]
fn sudo_reads_every_rule_back_as_intended() {
    for (tag, policy) in [("office", common::office()), ("odd", odd_policy())] {
        let text = plan(&policy, &PlanOptions::new(common::wednesday())).sudoers;
        let path = common::temp_file(&format!("cvt-{tag}"), &text);
        let (ok, out) = common::run("cvtsudoers", &["-f", "json", path.to_str().unwrap()], &[]);
        let _ = std::fs::remove_file(&path);
        assert!(ok, "cvtsudoers: {out}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let who = |v: &serde_json::Value| -> String {
            v.get("username")
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .or_else(|| v.get("userid").map(|x| format!("#{x}")))
                .or_else(|| {
                    v.get("usergroup")
                        .and_then(|x| x.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_default()
        };
        let mut read: Vec<(String, String, String, bool, String)> = Vec::new();
        for spec in doc["User_Specs"].as_array().unwrap() {
            let user = who(&spec["User_List"][0]);
            for c in spec["Cmnd_Specs"].as_array().unwrap() {
                let nopasswd = c["Options"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|x| x["authenticate"] == false));
                read.push((
                    user.clone(),
                    who(&c["runasusers"][0]),
                    who(&c["runasgroups"][0]),
                    nopasswd,
                    c["Commands"][0]["command"].as_str().unwrap().to_string(),
                ));
            }
        }
        let want: Vec<_> = vmgate_policy::sudoers::rules(&policy, "/etc/vmgate")
            .into_iter()
            .map(|(r, gid)| {
                let u = vmgate_policy::sudoers::principal_word(&r.user, r.uid);
                let g = vmgate_policy::sudoers::principal_word(&r.group, gid);
                let mut cmd = r.command.clone();
                for a in &r.args {
                    cmd.push(' ');
                    cmd.push_str(a);
                }
                (u.clone(), u, g, r.nopasswd, cmd)
            })
            .collect();
        assert_eq!(read, want, "{tag}");
        let keep = &doc["Defaults"][0]["Options"][0]["env_keep"];
        assert_eq!(
            keep.as_array().unwrap().len(),
            policy.defaults.env_keep.len()
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 8, failure_persistence: None, ..Default::default() })]

    /// Any argument `check` accepts is read by sudo as exactly that one argument.
    #[test]
    fn every_accepted_argument_is_one_argv_to_sudo(
        args in proptest::collection::vec("[a-zA-Z0-9/._+@%,:=\\\\-]{1,12}", 100)
    ) {
        let mut text = String::new();
        for (i, a) in args.iter().enumerate() {
            let e = vmgate_policy::sudoers::escape_word(a).expect("the alphabet is accepted");
            text.push_str(&format!("u{i} ALL=(u{i}:g) /usr/bin/x {e} end\n"));
        }
        let path = common::temp_file("cvt-args", &text);
        let (ok, out) = common::run("cvtsudoers", &["-f", "json", path.to_str().unwrap()], &[]);
        let (vok, vout) = common::run("visudo", &["-cf", path.to_str().unwrap()], &[]);
        let _ = std::fs::remove_file(&path);
        proptest::prop_assert!(ok && vok, "{out}{vout}\n{text}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        for (i, a) in args.iter().enumerate() {
            let cmd = doc["User_Specs"][i]["Cmnd_Specs"][0]["Commands"][0]["command"].as_str().unwrap();
            proptest::prop_assert_eq!(cmd, format!("/usr/bin/x {a} end"));
        }
    }
}
