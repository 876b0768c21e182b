//! vmgate applied to this machine for real, proven in the kernel: test users, a test host
//! in a network namespace of its own with listeners on guarded ports (IPv4 and IPv6), a
//! policy naming them with a test-unique table, sudoers drop-in, special group and paths;
//! then probes as exact uids and gids, through the real sudo, and the kernel log.
//!
//! Root only; every test cleans up what it created, also when it fails.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use vmgate_apply::{Error, Mode, Options, Source, Step, apply, guard, uninstall, verify};
use vmgate_system::files;
use vmgate_system::kmsg;
use vmgate_system::nft::NftTable;
use vmgate_system::snapshot::Snapshot;
use vmgate_testbed::{
    Probe, ProbeOutcome, Spawned, TestHost, TestUser, require_root, run_bounded, unique_name,
};

use ProbeOutcome::{Connected, Refused};

/// vm1 (me, always), vm2 (bro, always), vm3 (me, a window open now), vm4 (me, a window
/// closed now); all in the guarded range 20001-20004. 20005 is outside it.
const VM1: u16 = 20001;
const VM2: u16 = 20002;
const VM3: u16 = 20003;
const VM4: u16 = 20004;
const OUTSIDE: u16 = 20005;

/// Everything a test applies to: users, host, paths; removes all of it on drop.
struct Fixture {
    dir: tempfile::TempDir,
    me: TestUser,
    bro: TestUser,
    other: TestUser,
    group: String,
    table: String,
    sudoers: PathBuf,
    etc: PathBuf,
    prefix: String,
    host: TestHost,
    opts: Options,
}

/// The real defaults: what users get.
const REAL_TABLE: &str = "vmgate";
const REAL_ETC: &str = "/etc/vmgate";
const REAL_SUDOERS: &str = "/etc/sudoers.d/vmgate";
const REAL_GROUP: &str = "vmconsole";

impl Fixture {
    /// Test-unique table, group, drop-in and paths.
    fn new() -> Self {
        Self::build(false)
    }

    /// The real table, /etc/vmgate, /etc/sudoers.d/vmgate, vmconsole and /var/lib/vmgate;
    /// refuses (before creating anything, so its cleanup cannot touch them) when any of
    /// them exists: this machine has a real vmgate then.
    fn real_defaults() -> Self {
        require_root();
        let opts = Options::default();
        let present: Vec<String> = [REAL_ETC, REAL_SUDOERS]
            .iter()
            .map(PathBuf::from)
            .chain([opts.state_dir.clone()])
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .chain(
                NftTable::new(REAL_TABLE)
                    .unwrap()
                    .exists()
                    .unwrap()
                    .then(|| format!("nft table inet {REAL_TABLE}")),
            )
            .chain(
                vmgate_system::users::group_by_name(REAL_GROUP)
                    .unwrap()
                    .map(|_| format!("group {REAL_GROUP}")),
            )
            .collect();
        assert!(
            present.is_empty(),
            "this machine has a real vmgate installation ({}); the real-defaults test will not touch it",
            present.join(", ")
        );
        Self::build(true)
    }

    fn build(real: bool) -> Self {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        // The user's viewer reads its .vv file below this directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let viewer = dir.path().join("viewer");
        // A tiny "remote-viewer": connects to the host and port of the .vv file it is
        // given, so the real sudo rule, the file modes and the .vv content are all
        // exercised. The user can read the .vv file only with the special group.
        std::fs::write(
            &viewer,
            "#!/bin/sh\n[ \"$1\" = \"--\" ] && shift\n\
             host=$(sed -n 's/^host=//p' \"$1\")\n\
             port=$(sed -n 's/^port=//p' \"$1\")\n\
             exec /usr/bin/socat -u /dev/null \"TCP:$host:$port,connect-timeout=3\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&viewer, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (opts, group, table, sudoers, etc) = if real {
            // Units are not enabled by a test, even on a machine where systemd is PID 1
            // (systemd-analyze checks them in vmgate-policy's tests).
            let opts = Options {
                systemd_run_dir: dir.path().join("no-systemd"),
                ..Options::default()
            };
            (
                opts,
                REAL_GROUP.to_string(),
                REAL_TABLE.to_string(),
                PathBuf::from(REAL_SUDOERS),
                PathBuf::from(REAL_ETC),
            )
        } else {
            (
                Options::under(dir.path()),
                unique_name("g"),
                unique_name("t"),
                PathBuf::from("/etc/sudoers.d").join(unique_name("sudo")),
                dir.path().join("etc"),
            )
        };
        Fixture {
            me: TestUser::create(),
            bro: TestUser::create(),
            other: TestUser::create(),
            group,
            table,
            sudoers,
            etc,
            prefix: format!("{}: ", unique_name("log")),
            host: TestHost::start(&[VM1, VM2, VM3, VM4, OUTSIDE]),
            opts,
            dir,
        }
    }

    fn viewer(&self) -> PathBuf {
        self.dir.path().join("viewer")
    }

    fn etc(&self) -> PathBuf {
        self.etc.clone()
    }

    fn vv(&self, console: &str) -> PathBuf {
        self.etc().join(format!("consoles/{console}.vv"))
    }

    fn gid(&self) -> u32 {
        vmgate_system::users::require_group(&self.group)
            .expect("the special group exists after apply")
            .gid
    }

    /// The test policy. `vm3_open`: vm3's window is open now; `exempt_root` as given.
    fn policy(&self, vm3_open: bool, exempt_root: bool) -> String {
        let now = Timestamp::now();
        let hhmm = |t: Timestamp| t.strftime("%H:%M").to_string();
        let open = format!(
            "{}-{}",
            hhmm(now - SignedDuration::from_mins(60)),
            hhmm(now + SignedDuration::from_mins(120))
        );
        let closed = format!(
            "{}-{}",
            hhmm(now + SignedDuration::from_mins(180)),
            hhmm(now + SignedDuration::from_mins(240))
        );
        let vm3 = if vm3_open { &open } else { &closed };
        format!(
            r#"[defaults]
viewer = "{viewer}"
group = "{group}"
exempt_root = {exempt_root}
log_denied = true
nopasswd = true
timezone = "UTC"
log_prefix = "{prefix}"

[[server]]
name = "testhost"
addresses = ["{v4}", "{v6}"]
guard_ports = "{VM1}-{VM4}"

[[console]]
name = "vm1"
server = "testhost"
port = {VM1}
allow = [ {{ users = ["{me}"] }} ]

[[console]]
name = "vm2"
server = "testhost"
port = {VM2}
allow = [ {{ users = ["{bro}"] }} ]

[[console]]
name = "vm3"
server = "testhost"
port = {VM3}
allow = [ {{ users = ["{me}"], hours = "{vm3}" }} ]

[[console]]
name = "vm4"
server = "testhost"
port = {VM4}
allow = [ {{ users = ["{me}"], hours = "{closed}" }} ]
"#,
            viewer = self.viewer().display(),
            group = self.group,
            prefix = self.prefix,
            v4 = self.host.v4(),
            v6 = self.host.v6(),
            me = self.me.name(),
            bro = self.bro.name(),
        )
    }

    fn source(&self, text: &str) -> Source {
        let mut src = Source::new("test-policy.toml", text, Timestamp::now());
        src.system_timezone = jiff::tz::TimeZone::UTC;
        src.plan.table = self.table.clone();
        src.plan.etc_dir = self.etc().display().to_string();
        src.plan.sudoers_path = self.sudoers.display().to_string();
        src.plan.policy_path = self.dir.path().join("policy.toml").display().to_string();
        src
    }

    /// Every file, attribute and table an apply touches.
    fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::new();
        for c in ["vm1", "vm2", "vm3", "vm4"] {
            s.file(&self.vv(c)).unwrap();
        }
        s.file(&self.etc().join("ruleset.nft")).unwrap();
        s.file(&self.sudoers).unwrap();
        s.attrs(&self.viewer()).unwrap();
        let state = &self.opts.state_dir;
        s.file(&state.join("installed.json")).unwrap();
        s.file(&state.join("originals.json")).unwrap();
        s.file(&state.join("journal.json")).unwrap();
        s.table(&NftTable::new(&self.table).unwrap()).unwrap();
        s
    }

    fn group_exists(&self) -> bool {
        vmgate_system::users::group_by_name(&self.group)
            .unwrap()
            .is_some()
    }

    /// The granted path: `sudo -u USER -g GROUP VIEWER -- VV` as the user, exactly as
    /// the plan tells users to type it.
    fn through_sudo(&self, user: &TestUser, console: &str) -> bool {
        let viewer = self.viewer();
        let vv = self.vv(console);
        let r = Probe::as_user(user).run(
            &[
                "sudo",
                "-n",
                "-u",
                user.name(),
                "-g",
                &self.group,
                viewer.to_str().unwrap(),
                "--",
                vv.to_str().unwrap(),
            ],
            Duration::from_secs(10),
        );
        r.success()
    }

    fn at(&self, ip: IpAddr, port: u16) -> SocketAddr {
        SocketAddr::new(ip, port)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = uninstall(&self.opts);
        let _ = std::fs::remove_file(&self.sudoers);
        let _ = NftTable::new(&self.table).map(|t| t.delete());
        if self.group_exists() {
            let _ = Command::new("groupdel").arg(&self.group).status();
        }
    }
}

fn changed(r: &vmgate_apply::ApplyReport) -> Vec<String> {
    r.changes
        .iter()
        .map(|c| format!("{}: {}", c.item, c.action))
        .collect()
}

#[test]
fn e2e_apply_grants_exactly_the_policy_in_the_kernel_and_uninstall_restores_everything() {
    let f = Fixture::new();
    let other_host = TestHost::start(&[VM1]);
    let policy = f.policy(true, false);
    let src = f.source(&policy);
    let before = f.snapshot();
    let mode_before = files::stat(&f.viewer()).unwrap();

    // --check on a fresh system: changes would be made, and nothing is changed.
    let check = apply(&src, &f.opts, Mode::Check).unwrap();
    assert!(check.changed(), "{}", check.to_text());
    assert!(before.diff(&before.recapture().unwrap()).is_empty());
    assert!(!f.group_exists(), "--check created the group");

    // An invalid policy changes nothing either.
    let bad = policy.replace(f.bro.name(), "no-such-user-vmgt");
    match apply(&f.source(&bad), &f.opts, Mode::Apply) {
        Err(Error::Invalid(d)) => assert!(d.to_string().contains("no-such-user-vmgt"), "{d}"),
        other => panic!("an unknown user must be invalid: {other:?}"),
    }
    assert!(before.diff(&before.recapture().unwrap()).is_empty());

    // Apply: the group is created, everything written, the table loaded.
    let seq = kmsg::last_seq().unwrap();
    let first = apply(&src, &f.opts, Mode::Apply).unwrap();
    assert!(first.changed(), "{}", first.to_text());
    eprintln!("{}", first.to_text());
    assert!(f.group_exists());
    let gid = f.gid();
    assert_eq!(
        files::stat(&f.viewer()).unwrap(),
        vmgate_system::FileAttrs {
            uid: 0,
            gid,
            mode: 0o750
        }
    );
    // Idempotent: a second run and --check both find nothing to do.
    let again = apply(&src, &f.opts, Mode::Apply).unwrap();
    assert!(
        !again.changed(),
        "second apply changed: {:?}",
        changed(&again)
    );
    assert!(again.to_text().contains("no changes"));
    assert!(!apply(&src, &f.opts, Mode::Check).unwrap().changed());
    let v = verify(&src, &f.opts).unwrap();
    assert!(v.ok(), "{}", v.to_text());
    eprintln!("{}", v.to_text());
    let row = |user: &TestUser, console: &str| {
        v.matrix
            .iter()
            .find(|r| r.user == user.name() && r.console == console)
            .unwrap_or_else(|| panic!("no row {} {console}: {}", user.name(), v.to_text()))
            .clone()
    };
    let vm1 = row(&f.me, "vm1");
    assert!(vm1.policy && vm1.live && vm1.week.iter().all(|&d| d == (true, true)));
    let vm4 = row(&f.me, "vm4");
    assert!(!vm4.policy && !vm4.live, "{}", v.to_text());
    assert!(
        vm4.week.iter().all(|&(p, l)| p && l),
        "vm4 opens every day: {}",
        v.to_text()
    );
    let bro1 = row(&f.bro, "vm1");
    assert!(!bro1.policy && !bro1.live && bro1.week.iter().all(|&d| d == (false, false)));

    let (v4, v6) = (f.host.v4(), f.host.v6());
    // The granted user through the real sudo rule and the pinned viewer: vm1 (v4, the
    // .vv's host) and vm3 (open window); not vm2 (bro's) nor vm4 (closed window): sudo
    // has no rule for vm2, and the table refuses vm4.
    let accepted = |p| f.host.accepted(p);
    let (a1, a3) = (accepted(VM1), accepted(VM3));
    assert!(f.through_sudo(&f.me, "vm1"), "me through sudo to vm1");
    assert!(
        f.through_sudo(&f.me, "vm3"),
        "me through sudo to vm3 (open now)"
    );
    assert!(!f.through_sudo(&f.me, "vm4"), "vm4's window is closed now");
    assert!(!f.through_sudo(&f.me, "vm2"), "vm2 is bro's");
    assert!(!f.through_sudo(&f.other, "vm1"), "other has no sudo rule");
    assert_eq!((accepted(VM1), accepted(VM3)), (a1 + 1, a3 + 1));
    // The viewer run directly: its mode stops him.
    let direct = Probe::as_user(&f.me).run(
        &[
            f.viewer().to_str().unwrap(),
            "--",
            f.vv("vm1").to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert!(
        !direct.success() && direct.stderr.contains("Permission denied"),
        "{direct:?}"
    );

    // The kernel's view, v4 and v6, as exact ids.
    let with_group = |u: &TestUser| Probe::as_ids(u.uid(), gid);
    for ip in [v4, v6] {
        let cases: Vec<(&str, Probe, u16, ProbeOutcome)> = vec![
            ("me via group → vm1", with_group(&f.me), VM1, Connected),
            ("me via group → vm2", with_group(&f.me), VM2, Refused),
            (
                "me via group → vm3 (open)",
                with_group(&f.me),
                VM3,
                Connected,
            ),
            (
                "me via group → vm4 (closed)",
                with_group(&f.me),
                VM4,
                Refused,
            ),
            ("me as himself → vm1", Probe::as_user(&f.me), VM1, Refused),
            ("bro via group → vm2", with_group(&f.bro), VM2, Connected),
            ("bro via group → vm1", with_group(&f.bro), VM1, Refused),
            ("other via group → vm1", with_group(&f.other), VM1, Refused),
            (
                "root → vm1 (exempt_root = false)",
                Probe::root(),
                VM1,
                Refused,
            ),
            (
                "bro as himself → outside the range",
                Probe::as_user(&f.bro),
                OUTSIDE,
                Connected,
            ),
        ];
        let wrong: Vec<String> = cases
            .into_iter()
            .filter_map(|(who, p, port, want)| {
                let got = p.connect(f.at(ip, port));
                (got != want).then(|| format!("{who} at {ip}: expected {want:?}, got {got:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "access differs:\n{}", wrong.join("\n"));
    }
    // Other hosts are not our business.
    assert_eq!(
        Probe::as_user(&f.other).connect(f.at(other_host.v4(), VM1)),
        Connected
    );
    assert_eq!(
        Probe::as_user(&f.other).connect(f.at(other_host.v6(), VM1)),
        Connected
    );

    // A user added to the special group by supplementary membership only: refused.
    let out = Command::new("gpasswd")
        .args(["-a", f.other.name(), &f.group])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let member = Probe::as_user(&f.other).groups(&[f.other.gid(), gid]);
    assert_eq!(member.connect(f.at(v4, VM1)), Refused);
    // verify and guard name the membership; guard does not change accounts.
    let v = verify(&src, &f.opts).unwrap();
    assert!(
        v.drift
            .iter()
            .any(|d| d.item == format!("group {}", f.group) && d.action.contains(f.other.name())),
        "{}",
        v.to_text()
    );
    let g = guard(&src, &f.opts, true).unwrap();
    assert!(!g.ok(), "{}", g.to_text());
    let out = Command::new("gpasswd")
        .args(["-d", f.other.name(), &f.group])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // A relay the granted user runs on 127.0.0.1 as himself: its outgoing socket has
    // his own gid, so the table refuses it even when he talks to it through sudo.
    let relay_port = 40_000 + (std::process::id() % 20_000) as u16;
    let _relay = Spawned::start(Probe::as_user(&f.me).command(&[
        "socat",
        &format!("TCP4-LISTEN:{relay_port},bind=127.0.0.1,reuseaddr,fork"),
        &format!("TCP4:{v4}:{VM1}"),
    ]));
    std::thread::sleep(Duration::from_millis(300));
    let before_relay = accepted(VM1);
    let mut via_relay =
        with_group(&f.me).open_session(SocketAddr::from(([127, 0, 0, 1], relay_port)));
    assert!(!via_relay.echo(b"through the relay\n", Duration::from_secs(2)));
    assert_eq!(accepted(VM1), before_relay, "the relay reached the console");

    // Every refusal of a new connection is in the kernel log, with the uid.
    std::thread::sleep(Duration::from_millis(200));
    let log = vmgate_apply::log(
        &f.prefix,
        Some(&vmgate_apply::load(&src).unwrap().policy),
        Some(seq),
    )
    .unwrap();
    let refused = |uid: u32, ip: IpAddr, console: &str| {
        log.iter()
            .any(|r| r.uid == Some(uid) && r.address == ip && r.console.as_deref() == Some(console))
    };
    for ip in [v4, v6] {
        assert!(
            refused(f.other.uid(), ip, "vm1"),
            "other → vm1 at {ip} not logged: {log:?}"
        );
        assert!(
            refused(f.me.uid(), ip, "vm4"),
            "me → vm4 at {ip} not logged: {log:?}"
        );
        assert!(
            refused(f.bro.uid(), ip, "vm1"),
            "bro → vm1 at {ip} not logged: {log:?}"
        );
    }
    assert!(
        log.iter().any(|r| r.uid == Some(f.me.uid())
            && r.gid == Some(f.me.gid())
            && r.address == v4
            && r.port == Some(VM1)),
        "the relay's refusal is logged: {log:?}"
    );
    assert!(log.iter().all(|r| r.port != Some(OUTSIDE)));
    let line = log
        .iter()
        .find(|r| r.uid == Some(f.other.uid()))
        .unwrap()
        .to_text();
    assert!(
        line.contains(f.other.name()) && line.contains("vm1"),
        "{line}"
    );

    // Drift: chmod 755 on the viewer → verify names it → guard --repair → verify is clean.
    std::fs::set_permissions(f.viewer(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let v = verify(&src, &f.opts).unwrap();
    assert!(!v.ok());
    let viewer = f.viewer().display().to_string();
    assert!(v.drift.iter().any(|d| d.item == viewer), "{}", v.to_text());
    // `verify --json` prints the same report.
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["drift"][0]["item"], viewer.as_str());
    assert!(json["matrix"].as_array().is_some_and(|m| !m.is_empty()));
    eprintln!("{}", v.to_text());
    let g = guard(&src, &f.opts, true).unwrap();
    eprintln!("{}", g.to_text());
    assert!(
        g.ok() && g.repaired.iter().any(|d| d.item == viewer),
        "{}",
        g.to_text()
    );
    assert!(
        guard(&src, &f.opts, true).unwrap().drift.is_empty(),
        "guard must change nothing when all is right"
    );
    let v = verify(&src, &f.opts).unwrap();
    assert!(v.ok(), "{}", v.to_text());
    // A hand-made grant in the live table is drift too, named by user and console.
    Command::new("nft")
        .args([
            "add",
            "element",
            "inet",
            &f.table,
            "grants4",
            &format!("{{ {} . {gid} . {v4} . {VM1} }}", f.bro.uid()),
        ])
        .status()
        .unwrap();
    let v = verify(&src, &f.opts).unwrap();
    assert!(
        v.drift.iter().any(|d| d.item.contains(f.bro.name())
            && d.item.contains("vm1")
            && d.action.contains("live table admits")),
        "{}",
        v.to_text()
    );
    assert!(apply(&src, &f.opts, Mode::Apply).unwrap().changed());
    assert!(verify(&src, &f.opts).unwrap().ok());

    // A session opened inside vm3's window is cut when a re-apply closes the window;
    // and exempt_root = true admits root.
    let mut session = with_group(&f.me).open_session(f.at(v6, VM3));
    assert!(session.echo(b"open\n", Duration::from_secs(3)));
    let closing = f.source(&f.policy(false, true));
    let r = apply(&closing, &f.opts, Mode::Apply).unwrap();
    assert!(r.changed());
    assert!(
        !session.echo(b"closed?\n", Duration::from_secs(2)),
        "data passed after the window closed"
    );
    assert!(
        session.wait_closed(Duration::from_secs(3)),
        "the session was not cut"
    );
    assert_eq!(with_group(&f.me).connect(f.at(v4, VM3)), Refused);
    assert_eq!(
        Probe::root().connect(f.at(v4, VM1)),
        Connected,
        "exempt_root admits root"
    );
    assert_eq!(Probe::root().connect(f.at(v6, VM2)), Connected);
    assert!(verify(&closing, &f.opts).unwrap().ok());

    // Uninstall: the system is as before the first apply.
    let u = uninstall(&f.opts).unwrap();
    eprintln!("{}", u.to_text());
    assert!(!u.changes.is_empty(), "{}", u.to_text());
    let diff = before.diff(&before.recapture().unwrap());
    assert!(diff.is_empty(), "uninstall left differences: {diff:?}");
    assert_eq!(files::stat(&f.viewer()).unwrap(), mode_before);
    assert!(!f.group_exists(), "the group vmgate created is gone");
    assert!(!f.etc().exists(), "the directories vmgate created are gone");
    assert!(uninstall(&f.opts).unwrap().changes.is_empty());
}

/// Apply from nothing, and a re-apply, each failing after every step in turn: the state
/// afterwards is exactly the state before.
#[test]
fn e2e_a_failure_after_any_step_rolls_back_to_the_previous_state() {
    let f = Fixture::new();
    let a = f.source(&f.policy(true, false));
    let b = f.source(&f.policy(false, true));
    let fresh = f.snapshot();
    // One apply at a time: while another holds the lock, apply refuses and changes nothing.
    {
        let _held = vmgate_system::lock::ApplyLock::try_acquire(&f.opts.lock_path).unwrap();
        assert!(matches!(
            apply(&a, &f.opts, Mode::Apply),
            Err(Error::System(vmgate_system::Error::Locked { .. }))
        ));
        assert!(fresh.diff(&fresh.recapture().unwrap()).is_empty());
    }
    for step in Step::ALL {
        let mut opts = f.opts.clone();
        opts.hook = Some(std::sync::Arc::new(move |s| {
            if s == step {
                Err(format!("fail after {s}"))
            } else {
                Ok(())
            }
        }));
        match apply(&a, &opts, Mode::Apply) {
            Err(Error::RolledBack { step: at, .. }) => assert_eq!(at, step),
            other => panic!("expected a rollback at {step}: {other:?}"),
        }
        let diff = fresh.diff(&fresh.recapture().unwrap());
        assert!(diff.is_empty(), "after a failure at {step}: {diff:?}");
        assert!(
            !f.group_exists(),
            "the group created before {step} was not removed"
        );
    }
    let _ = apply(&a, &f.opts, Mode::Apply).unwrap();
    let applied = f.snapshot();
    for step in Step::ALL {
        let mut opts = f.opts.clone();
        opts.hook = Some(std::sync::Arc::new(move |s| {
            if s == step {
                Err("boom".into())
            } else {
                Ok(())
            }
        }));
        assert!(matches!(
            apply(&b, &opts, Mode::Apply),
            Err(Error::RolledBack { .. })
        ));
        let diff = applied.diff(&applied.recapture().unwrap());
        assert!(diff.is_empty(), "re-apply failing at {step}: {diff:?}");
        assert!(verify(&a, &f.opts).unwrap().ok());
    }
    // An uninstall killed after it wrote its journal is finished by the next run.
    std::fs::write(f.opts.state_dir.join("journal.json"), "\"uninstall\"\n").unwrap();
    let v = verify(&a, &f.opts).unwrap();
    assert!(
        v.recovered
            .as_deref()
            .is_some_and(|r| r.contains("uninstall")),
        "{}",
        v.to_text()
    );
    assert!(
        !v.ok(),
        "after the uninstall nothing is in place: {}",
        v.to_text()
    );
    let diff = fresh.diff(&fresh.recapture().unwrap());
    assert!(diff.is_empty(), "the finished uninstall left: {diff:?}");
    assert!(!f.group_exists());
}

/// The child side of the kill test: applies the policy in `VMGATE_APPLY_CHILD` and
/// SIGKILLs itself right after the named step. Does nothing in a normal test run.
#[test]
fn kill_test_child() {
    let Ok(spec) = std::env::var("VMGATE_APPLY_CHILD") else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let s = |k: &str| v[k].as_str().unwrap().to_string();
    let mut src = Source::new("test-policy.toml", &s("policy"), s("now").parse().unwrap());
    src.system_timezone = jiff::tz::TimeZone::UTC;
    src.plan.table = s("table");
    src.plan.etc_dir = s("etc");
    src.plan.sudoers_path = s("sudoers");
    let step: Step = serde_json::from_value(v["step"].clone()).unwrap();
    let mut opts = Options::under(Path::new(&s("root")));
    opts.hook = Some(std::sync::Arc::new(move |s| {
        if s == step {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        Ok(())
    }));
    let _ = apply(&src, &opts, Mode::Apply);
    panic!("the child was not killed at {step}");
}

/// kill -9 of an apply after every step: in between, nobody gets in who neither policy
/// admits and nobody admitted by both is locked out; the next vmgate run (verify here)
/// rolls back to exactly the old state.
#[test]
fn e2e_kill_9_after_any_step_leaves_old_or_new_never_a_mix() {
    let f = Fixture::new();
    let old_text = f.policy(true, false);
    let old = f.source(&old_text);
    // The new policy: vm3 closes, root becomes exempt.
    let new_text = f.policy(false, true);
    let _ = apply(&old, &f.opts, Mode::Apply).unwrap();
    let applied = f.snapshot();
    let gid = f.gid();
    let (v4, v6) = (f.host.v4(), f.host.v6());
    for step in Step::ALL {
        let spec = serde_json::json!({
            "policy": new_text, "now": Timestamp::now().to_string(), "table": f.table,
            "etc": f.etc().display().to_string(), "sudoers": f.sudoers.display().to_string(),
            "root": f.dir.path().display().to_string(), "step": step,
        });
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["kill_test_child", "--exact", "--nocapture"])
            .env("VMGATE_APPLY_CHILD", spec.to_string());
        let r = run_bounded(cmd, Duration::from_secs(60));
        let status = r.status.expect("the child finished");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "child at {step}: {}{}",
            r.stdout,
            r.stderr
        );
        assert!(
            f.dir.path().join("state/journal.json").exists(),
            "no journal after {step}"
        );

        // The mix in between: admitted by both → still in; admitted by neither → out.
        assert!(
            f.through_sudo(&f.me, "vm1"),
            "me locked out of vm1 after a kill at {step}"
        );
        for ip in [v4, v6] {
            assert_eq!(
                Probe::as_ids(f.me.uid(), gid).connect(f.at(ip, VM1)),
                Connected,
                "{step}"
            );
            assert_eq!(
                Probe::as_ids(f.bro.uid(), gid).connect(f.at(ip, VM1)),
                Refused,
                "{step}"
            );
            assert_eq!(
                Probe::as_ids(f.me.uid(), gid).connect(f.at(ip, VM4)),
                Refused,
                "{step}"
            );
            assert_eq!(
                Probe::as_user(&f.me).connect(f.at(ip, VM1)),
                Refused,
                "{step}"
            );
        }

        // The next run rolls back: exactly the old state.
        let v = verify(&old, &f.opts).unwrap();
        assert!(v.recovered.is_some(), "verify did not recover after {step}");
        assert!(
            v.ok(),
            "after recovery from a kill at {step}: {}",
            v.to_text()
        );
        let diff = applied.diff(&applied.recapture().unwrap());
        assert!(diff.is_empty(), "kill at {step}: {diff:?}");
    }
    // And the new policy still applies cleanly afterwards.
    let new = f.source(&new_text);
    let _ = apply(&new, &f.opts, Mode::Apply).unwrap();
    assert!(verify(&new, &f.opts).unwrap().ok());
}

/// A real package reinstall keeps the pinned mode through dpkg-statoverride, and
/// uninstall gives the package its own mode back.
#[test]
fn e2e_a_package_reinstall_keeps_the_pinned_viewer_mode() {
    let f = Fixture::new();
    let bin = Path::new("/usr/bin/hello");
    assert!(
        bin.exists(),
        "the Debian package `hello` is needed (scripts/deps.sh vmgate)"
    );
    let debdir = tempfile::tempdir().unwrap();
    let out = Command::new("apt-get")
        .args(["download", "hello"])
        .current_dir(debdir.path())
        .output()
        .unwrap();
    let deb = std::fs::read_dir(debdir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap_or_else(|| {
            panic!(
                "apt-get download hello: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let original = files::stat(bin).unwrap();
    let text = f
        .policy(true, false)
        .replace(&f.viewer().display().to_string(), "/usr/bin/hello");
    let src = f.source(&text);
    let mut opts = f.opts.clone();
    opts.statoverride = true;
    struct Restore<'a>(&'a Options);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = uninstall(self.0);
        }
    }
    let _restore = Restore(&opts);
    let _ = apply(&src, &opts, Mode::Apply).unwrap();
    let pinned = vmgate_system::FileAttrs {
        uid: 0,
        gid: f.gid(),
        mode: 0o750,
    };
    assert_eq!(files::stat(bin).unwrap(), pinned);
    assert!(!apply(&src, &opts, Mode::Check).unwrap().changed());
    let install = Command::new("dpkg").arg("-i").arg(&deb).output().unwrap();
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    assert_eq!(
        files::stat(bin).unwrap(),
        pinned,
        "the reinstall lost the pinned mode"
    );
    assert!(verify(&src, &opts).unwrap().ok());
    let _ = uninstall(&opts).unwrap();
    assert_eq!(files::stat(bin).unwrap(), original);
    assert_eq!(vmgate_system::statoverride::get(bin).unwrap(), None);
}

/// What users get: table `inet vmgate`, /etc/vmgate, /etc/sudoers.d/vmgate, the group
/// vmconsole created by apply, state in /var/lib/vmgate, dpkg-statoverride on Debian.
#[test]
fn e2e_the_real_defaults_apply_verify_and_uninstall_cleanly() {
    let f = Fixture::real_defaults();
    let src = f.source(&f.policy(true, false));
    let defaults = vmgate_policy::PlanOptions::new(Timestamp::now());
    assert_eq!(
        (
            src.plan.table.as_str(),
            src.plan.etc_dir.as_str(),
            src.plan.sudoers_path.as_str()
        ),
        (
            defaults.table.as_str(),
            defaults.etc_dir.as_str(),
            defaults.sudoers_path.as_str()
        )
    );
    let before = f.snapshot();
    let r = apply(&src, &f.opts, Mode::Apply).unwrap();
    assert!(r.changed(), "{}", r.to_text());
    assert!(!apply(&src, &f.opts, Mode::Check).unwrap().changed());
    let gid = f.gid();
    assert_eq!(
        files::stat(&f.vv("vm1")).unwrap(),
        vmgate_system::FileAttrs {
            uid: 0,
            gid,
            mode: 0o640
        }
    );
    assert_eq!(
        files::stat(Path::new(REAL_SUDOERS)).unwrap(),
        vmgate_system::FileAttrs::root(0o440)
    );
    if f.opts.statoverride {
        let o = vmgate_system::statoverride::get(&f.viewer())
            .unwrap()
            .unwrap();
        assert_eq!((o.group.as_str(), o.mode), (REAL_GROUP, 0o750));
    }
    assert!(f.through_sudo(&f.me, "vm1"));
    assert!(!f.through_sudo(&f.bro, "vm1"));
    for ip in f.host.addrs() {
        assert_eq!(
            Probe::as_ids(f.me.uid(), gid).connect(f.at(ip, VM1)),
            Connected
        );
        assert_eq!(
            Probe::as_ids(f.bro.uid(), gid).connect(f.at(ip, VM1)),
            Refused
        );
    }
    let v = verify(&src, &f.opts).unwrap();
    assert!(v.ok(), "{}", v.to_text());
    let _ = uninstall(&f.opts).unwrap();
    let diff = before.diff(&before.recapture().unwrap());
    assert!(diff.is_empty(), "uninstall left differences: {diff:?}");
    assert!(!f.group_exists());
    assert!(!Path::new(REAL_ETC).exists() && !f.opts.state_dir.exists());
    assert_eq!(vmgate_system::statoverride::get(&f.viewer()).unwrap(), None);
}

/// Post 2's `[[pin]]`: a command pinned to exact arguments for one user, through a
/// group of its own that apply creates and uninstall removes.
#[test]
fn e2e_a_pinned_command_runs_only_with_its_exact_arguments() {
    let f = Fixture::new();
    let pin_group = unique_name("p");
    struct GroupGone(String);
    impl Drop for GroupGone {
        fn drop(&mut self) {
            let _ = Command::new("groupdel").arg(&self.0).status();
        }
    }
    let _gone = GroupGone(pin_group.clone());
    let myprog = f.dir.path().join("myprog");
    std::fs::write(&myprog, "#!/bin/sh\necho \"myprog $*\"\n").unwrap();
    std::fs::set_permissions(&myprog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = format!(
        "{}\n[[pin]]\ncommand = \"{}\"\nargs = [\"-h\", \"-L\", \"0\"]\nusers = [\"{}\"]\ngroup = \"{pin_group}\"\nnopasswd = true\n",
        f.policy(true, false),
        myprog.display(),
        f.other.name()
    );
    let src = f.source(&text);
    let r = apply(&src, &f.opts, Mode::Apply).unwrap();
    assert!(
        r.to_text().contains(&format!("group {pin_group}")),
        "{}",
        r.to_text()
    );
    let pgid = vmgate_system::users::require_group(&pin_group).unwrap().gid;
    assert_eq!(
        files::stat(&myprog).unwrap(),
        vmgate_system::FileAttrs {
            uid: 0,
            gid: pgid,
            mode: 0o750
        }
    );
    let prog = myprog.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut argv = vec!["sudo", "-n", "-u", f.other.name(), "-g", &pin_group, prog];
        argv.extend_from_slice(args);
        Probe::as_user(&f.other).run(&argv, Duration::from_secs(10))
    };
    let ok = run(&["-h", "-L", "0"]);
    assert!(
        ok.success() && ok.stdout.contains("myprog -h -L 0"),
        "{ok:?}"
    );
    assert!(
        !run(&["-h", "-L", "1"]).success(),
        "other arguments must be refused"
    );
    assert!(!run(&[]).success());
    let direct = Probe::as_user(&f.other).run(&[prog, "-h", "-L", "1"], Duration::from_secs(10));
    assert!(
        !direct.success() && direct.stderr.contains("Permission denied"),
        "{direct:?}"
    );
    assert!(verify(&src, &f.opts).unwrap().ok());
    let _ = uninstall(&f.opts).unwrap();
    assert_eq!(files::stat(&myprog).unwrap().mode, 0o755);
    assert!(
        vmgate_system::users::group_by_name(&pin_group)
            .unwrap()
            .is_none()
    );
}
