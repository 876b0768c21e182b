//! `vmgate connect` end to end with the real client and a real server: a diskless QEMU
//! with a Spice server in a network namespace of the test's own, vmgate applied with a
//! test-unique table, sudoers drop-in, special group and paths, remote-viewer (a private
//! copy, pinned by the policy) under Xvfb, started by `vmgate connect` as a test user.
//!
//! Proven for a plain and a TLS console (test CA, a Spice password only the .vv holds):
//! the granted user's viewer opens the main channel and QEMU lists his client; a user
//! whose window is closed is refused by `vmgate connect`, and his viewer, started through
//! the sudo rule he does hold, is refused by the kernel (logged), nothing connects; the
//! viewer run directly and the .vv read directly are denied; a plain socket as the
//! granted user is refused; `vmgate connect` through sudo as someone else is refused.
//! A screenshot of the open console is kept under `target/test-artifacts/vmgate/`.
//!
//! Root only; everything is removed on drop, viewers are killed by PID.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use vmgate_apply::{Mode, Options, Source, apply, uninstall};
use vmgate_system::kmsg;
use vmgate_system::nft::NftTable;
use vmgate_testbed::{
    Bounded, Probe, ProbeOutcome, Spawned, SpiceListen, SpiceServer, TestCa, TestDisplay, TestHost,
    TestUser, collect, kill_exe, require_root, run_bounded, unique_name, wait_until,
};

/// How long a viewer may take to open the console on a loaded 2-core machine (TCG).
const OPEN_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a refused run may take to say so.
const SHORT: Duration = Duration::from_secs(20);
/// How long a refused viewer is given to try (it never exits by itself).
const REFUSED_VIEWER: Duration = Duration::from_secs(30);

const PASSWORD: &str = "only-the-vv-knows";
/// The granted user's own login password, for the sudo rule that asks for it.
const LOGIN_PASSWORD: &str = "his-own-login-pw";

struct Fixture {
    dir: tempfile::TempDir,
    me: TestUser,
    late: TestUser,
    stranger: TestUser,
    group: String,
    table: String,
    sudoers: PathBuf,
    prefix: String,
    opts: Options,
    display: TestDisplay,
    server: SpiceServer,
    ca: Option<TestCa>,
    host: TestHost,
    nopasswd: bool,
}

impl Fixture {
    /// A console (TLS or plain) whose sudo rule asks for a password unless `nopasswd`;
    /// with a password rule, the granted user has a second console.
    fn new(tls: bool, nopasswd: bool) -> Self {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        // Test users traverse it to the viewer, vmgate and the connection files.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().to_owned();
        for (from, to) in [
            ("/usr/bin/remote-viewer".into(), "remote-viewer"),
            (PathBuf::from(env!("CARGO_BIN_EXE_vmgate")), "vmgate"),
        ] {
            std::fs::copy(&from, path.join(to))
                .unwrap_or_else(|e| panic!("copy {}: {e} (package virt-viewer?)", from.display()));
        }
        let host = TestHost::start(&[]);
        let port = if tls { 5901 } else { 5900 };
        let ca = tls.then(|| TestCa::create(&path.join("pki"), "testhost"));
        let listen = match &ca {
            Some(ca) => SpiceListen::Tls {
                ca,
                password: PASSWORD,
            },
            None => SpiceListen::Plain,
        };
        let server = SpiceServer::start(&host, port, listen, &path);
        let f = Fixture {
            me: TestUser::create_with_home(),
            late: TestUser::create_with_home(),
            stranger: TestUser::create(),
            group: unique_name("g"),
            table: unique_name("t"),
            sudoers: PathBuf::from("/etc/sudoers.d").join(unique_name("sudo")),
            prefix: format!("{}: ", unique_name("log")),
            opts: Options::under(&path),
            display: TestDisplay::start(&path),
            server,
            ca,
            host,
            nopasswd,
            dir,
        };
        f.me.set_password(LOGIN_PASSWORD);
        f.apply();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn etc(&self) -> PathBuf {
        self.path("etc")
    }

    fn vv(&self) -> PathBuf {
        self.etc().join("consoles/vm.vv")
    }

    fn policy(&self) -> String {
        let now = Timestamp::now();
        let hhmm = |t: Timestamp| t.strftime("%H:%M").to_string();
        let closed = format!(
            "{}-{}",
            hhmm(now + SignedDuration::from_mins(180)),
            hhmm(now + SignedDuration::from_mins(240))
        );
        let tls = match &self.ca {
            Some(ca) => {
                let secret = self.path("spice-password");
                std::fs::write(&secret, PASSWORD).unwrap();
                std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
                format!(
                    "tls = true\nca_file = \"{}\"\npassword_file = \"{}\"\nhost_subject = \"{}\"\n",
                    ca.ca_cert().display(),
                    secret.display(),
                    ca.subject()
                )
            }
            None => String::new(),
        };
        format!(
            r#"[defaults]
viewer = "{viewer}"
group = "{group}"
exempt_root = false
log_denied = true
nopasswd = {nopasswd}
timezone = "UTC"
log_prefix = "{prefix}"
# remote-viewer's --debug log, through sudo's env_reset.
env_keep = ["G_MESSAGES_DEBUG"]

[[server]]
name = "testhost"
addresses = ["{v4}", "{v6}"]
guard_ports = "5900-5910"

[[console]]
name = "vm"
server = "testhost"
port = {port}
title = "vmgate e2e"
{tls}allow = [ {{ users = ["{me}"] }}, {{ users = ["{late}"], hours = "{closed}" }} ]
{second}"#,
            viewer = self.path("remote-viewer").display(),
            group = self.group,
            prefix = self.prefix,
            v4 = self.host.v4(),
            v6 = self.host.v6(),
            port = self.server.port(),
            me = self.me.name(),
            late = self.late.name(),
            nopasswd = self.nopasswd,
            second = if self.nopasswd {
                String::new()
            } else {
                // A second console of his (nothing listens there): he is asked which.
                format!(
                    "\n[[console]]\nname = \"vm2\"\nserver = \"testhost\"\nport = 5909\nallow = [ {{ users = [\"{}\"] }} ]\n",
                    self.me.name()
                )
            },
        )
    }

    fn source(&self) -> Source {
        let text = self.policy();
        std::fs::write(self.path("policy.toml"), &text).unwrap();
        let mut src = Source::new("policy.toml", &text, Timestamp::now());
        src.system_timezone = jiff::tz::TimeZone::UTC;
        src.plan.table = self.table.clone();
        src.plan.etc_dir = self.etc().display().to_string();
        src.plan.sudoers_path = self.sudoers.display().to_string();
        src.plan.policy_path = self.path("policy.toml").display().to_string();
        src
    }

    fn apply(&self) {
        let r = apply(&self.source(), &self.opts, Mode::Apply).expect("apply the test policy");
        eprintln!("{}", r.to_text());
    }

    /// `vmgate connect ARGS` as `user` (exact ids, no capabilities), in a desktop-like
    /// environment: the test display, its cookie, the user's home, the debug switch.
    fn connect_cmd(&self, user: &TestUser, args: &[&str]) -> Command {
        let argv = self.connect_argv(args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut cmd = Probe::as_user(user).command(&argv);
        self.desktop_env(&mut cmd, user);
        cmd
    }

    /// `VMGATE connect --policy P --etc-dir E ARGS`.
    fn connect_argv(&self, args: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = [
            self.path("vmgate"),
            "connect".into(),
            "--policy".into(),
            self.path("policy.toml"),
            "--etc-dir".into(),
            self.etc(),
        ]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv
    }

    fn desktop_env(&self, cmd: &mut Command, user: &TestUser) {
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("HOME", user.home().unwrap_or_else(|| "/nonexistent".into()))
            .env("USER", user.name())
            .env("DISPLAY", self.display.display())
            .env("XAUTHORITY", self.display.xauthority())
            .env("G_MESSAGES_DEBUG", "all");
    }

    fn run_connect(&self, user: &TestUser, args: &[&str]) -> Bounded {
        run_bounded(self.connect_cmd(user, args), SHORT)
    }

    /// Where the drop-in goes while a test plays "not applied": sudo skips names with a dot.
    fn sudoers_aside(&self) -> PathBuf {
        self.sudoers.with_extension("aside")
    }

    /// Kills every viewer and `vmgate connect` of this test by PID.
    fn end_viewers(&self) {
        kill_exe(&self.path("remote-viewer"));
        kill_exe(&self.path("vmgate"));
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        kill_exe(&self.path("remote-viewer"));
        kill_exe(&self.path("vmgate"));
        let _ = uninstall(&self.opts);
        let _ = std::fs::remove_file(&self.sudoers);
        let _ = std::fs::remove_file(self.sudoers_aside());
        let _ = NftTable::new(&self.table).map(|t| t.delete());
        if vmgate_system::users::group_by_name(&self.group)
            .ok()
            .flatten()
            .is_some()
        {
            let _ = Command::new("groupdel").arg(&self.group).status();
        }
    }
}

fn artifact_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts/vmgate");
    std::fs::create_dir_all(&d).unwrap();
    d.canonicalize().unwrap()
}

/// Standard output and error into `path` (GLib's debug messages go to standard output).
fn to_file(cmd: &mut Command, path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    cmd.stdout(file.try_clone().unwrap()).stderr(file);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn console_end_to_end(tls: bool) {
    let f = Fixture::new(tls, true);
    let variant = if tls { "tls" } else { "plain" };
    let addr = std::net::SocketAddr::new(f.host.v4(), f.server.port());
    assert!(f.server.channels().is_empty());

    // The argv connect runs is one the installed sudo rule admits, word for word.
    let printed = f.run_connect(&f.me, &["--print"]);
    assert!(printed.success(), "{printed:?}");
    let argv: Vec<&str> = printed.stdout.split_whitespace().collect();
    assert_eq!(
        argv,
        [
            "sudo",
            "-n",
            "-u",
            f.me.name(),
            "-g",
            &f.group,
            f.path("remote-viewer").to_str().unwrap(),
            "--",
            f.vv().to_str().unwrap()
        ]
    );
    let listed = Command::new("sudo")
        .args(["-l", "-U", f.me.name()])
        .args(&argv[1..])
        .output()
        .unwrap();
    assert!(listed.status.success(), "sudo -l -U: {listed:?}");

    // Refused at every other door, and the kernel says so.
    let seq = kmsg::last_seq().unwrap();
    let direct = Probe::as_user(&f.me).run(
        &[
            f.path("remote-viewer").to_str().unwrap(),
            "--",
            f.vv().to_str().unwrap(),
        ],
        SHORT,
    );
    assert!(
        !direct.success() && direct.stderr.contains("Permission denied"),
        "{direct:?}"
    );
    let cat = Probe::as_user(&f.me).run(&["cat", f.vv().to_str().unwrap()], SHORT);
    assert!(
        !cat.success() && cat.stderr.contains("Permission denied"),
        "{cat:?}"
    );
    assert_eq!(Probe::as_user(&f.me).connect(addr), ProbeOutcome::Refused);

    // The user whose window is closed: connect says when it opens and starts nothing.
    let late = f.run_connect(&f.late, &[]);
    assert_eq!(late.status.and_then(|s| s.code()), Some(1), "{late:?}");
    assert!(
        late.stderr.contains("none of") && late.stderr.contains("vm: opens next at"),
        "{late:?}"
    );
    // His sudo rule exists (rules do not follow windows), so he can start the viewer:
    // the kernel refuses it, and nothing connects.
    let (viewer_path, vv) = (f.path("remote-viewer"), f.vv());
    let sudo_argv = [
        "sudo",
        "-n",
        "-u",
        f.late.name(),
        "-g",
        &f.group,
        viewer_path.to_str().unwrap(),
        "--",
        vv.to_str().unwrap(),
    ];
    let mut cmd = Probe::as_user(&f.late).command(&sudo_argv);
    f.desktop_env(&mut cmd, &f.late);
    let late_log = f.path(&format!("late-{variant}.log"));
    to_file(&mut cmd, &late_log);
    let late_viewer = Spawned::start(cmd);
    let denied = |uid: u32| {
        vmgate_apply::log(&f.prefix, None, Some(seq))
            .unwrap()
            .iter()
            .any(|r| r.uid == Some(uid) && r.address == f.host.v4() && r.port == Some(addr.port()))
    };
    let logged = wait_until(REFUSED_VIEWER, || denied(f.late.uid()));
    assert!(
        f.server.channels().is_empty(),
        "the closed window let a client in: {:?}",
        f.server.channels()
    );
    assert!(
        logged,
        "no kernel log line for {}'s viewer:\n{}",
        f.late.name(),
        read(&late_log)
    );
    drop(late_viewer);
    f.end_viewers();
    assert!(
        denied(f.me.uid()),
        "the granted user's plain socket is logged"
    );

    // No grant at all; and a named console that is not his.
    let stranger = f.run_connect(&f.stranger, &[]);
    assert_eq!(stranger.status.and_then(|s| s.code()), Some(1));
    assert!(
        stranger.stderr.contains("no console is granted to"),
        "{stranger:?}"
    );
    let named = f.run_connect(&f.stranger, &["vm"]);
    assert!(
        named
            .stderr
            .contains("console `vm` is not one you may open"),
        "{named:?}"
    );

    // `sudo -u me vmgate connect` run by root: the console would open on root's screen.
    let mut cmd = Command::new("sudo");
    cmd.args(["-u", f.me.name(), "--preserve-env=DISPLAY,XAUTHORITY"])
        .arg(f.path("vmgate"))
        .args(["connect", "--policy"])
        .arg(f.path("policy.toml"))
        .arg("--etc-dir")
        .arg(f.etc());
    let via_sudo = run_bounded(cmd, SHORT);
    assert_eq!(
        via_sudo.status.and_then(|s| s.code()),
        Some(3),
        "{via_sudo:?}"
    );
    assert!(via_sudo.stderr.contains("without sudo"), "{via_sudo:?}");
    assert!(f.server.channels().is_empty());

    // The sudo rules missing (vmgate not applied, or stale): sudo's refusal in plain words.
    std::fs::rename(&f.sudoers, f.sudoers_aside()).unwrap();
    let stale = f.run_connect(&f.me, &[]);
    std::fs::rename(f.sudoers_aside(), &f.sudoers).unwrap();
    assert_eq!(stale.status.and_then(|s| s.code()), Some(3), "{stale:?}");
    assert!(
        stale
            .stderr
            .contains("the installed sudo rules are not the policy's; ask your administrator to run `vmgate apply`"),
        "{stale:?}"
    );

    // Last, the granted user: `vmgate connect` (no argument: his only console) opens it.
    // (spice-server 0.15 now and then crashes when a connected client is killed, so
    // nothing after this needs the server.)
    let log_path = f.path(&format!("viewer-{variant}.log"));
    let mut cmd = f.connect_cmd(&f.me, &[]);
    to_file(&mut cmd, &log_path);
    let mut viewer = Spawned::start(cmd);
    let opened = wait_until(OPEN_TIMEOUT, || {
        !viewer.is_running()
            || (read(&log_path).contains("main channel: opened")
                && f.server.channels().iter().any(|c| c.channel_type == 1))
    });
    let log = read(&log_path);
    assert!(
        opened && viewer.is_running(),
        "the console did not open:\n{log}\nQEMU: {}",
        f.server.log()
    );
    let channels = f.server.channels();
    let client = f.host.client_v4().to_string();
    assert!(
        channels.iter().all(|c| c.host == client && c.tls == tls),
        "{channels:?}"
    );
    assert!(log.contains("vmgate: opening console vm"), "{log}");
    if tls {
        // The server wants the Spice password, which only the .vv file held.
        assert_eq!(f.server.query()["auth"], "spice");
        assert!(read(&f.vv()).contains(&format!("password={PASSWORD}")));
    }
    // Let the display channel draw SeaBIOS's text, then keep a picture of it.
    wait_until(Duration::from_secs(10), || {
        f.server.channels().iter().any(|c| c.channel_type == 2)
    });
    std::thread::sleep(Duration::from_secs(2));
    let shot = artifact_dir().join(format!("connect-{variant}.png"));
    f.display.screenshot(&shot);
    eprintln!(
        "screenshot of the open {variant} console: {}",
        shot.display()
    );
    drop(viewer);
    f.end_viewers();
}

#[test]
fn e2e_connect_opens_a_plain_spice_console_and_no_other_way_in() {
    console_end_to_end(false);
}

#[test]
fn e2e_connect_opens_a_tls_spice_console_with_the_password_only_the_vv_holds() {
    console_end_to_end(true);
}

#[test]
fn e2e_connect_with_a_password_rule_asks_which_console_and_for_the_users_own_password() {
    let f = Fixture::new(false, false);
    // The argv has a prompt instead of -n, and the rule still admits it.
    let printed = f.run_connect(&f.me, &["--print", "vm"]);
    assert!(printed.success(), "{printed:?}");
    assert!(
        printed
            .stdout
            .starts_with("sudo -p 'vmgate: password of %p (to open console vm): ' -u"),
        "{printed:?}"
    );
    let argv = f.connect_argv(&[]);
    let shell_line = argv.join(" ");

    // Two consoles and no terminal to ask on: both are listed, nothing starts.
    let two = f.run_connect(&f.me, &[]);
    assert_eq!(two.status.and_then(|s| s.code()), Some(1), "{two:?}");
    assert!(
        two.stderr.contains("1) vm \"vmgate e2e\"")
            && two.stderr.contains("2) vm2")
            && two.stderr.contains("name one: vmgate connect CONSOLE"),
        "{two:?}"
    );

    // No terminal to type the password in: said in plain words; nothing connects.
    let no_tty = f.run_connect(&f.me, &["vm"]);
    assert_eq!(no_tty.status.and_then(|s| s.code()), Some(3), "{no_tty:?}");
    assert!(
        no_tty.stderr.contains("asks for your own login password")
            && no_tty.stderr.contains("no terminal to type it in"),
        "{no_tty:?}"
    );
    assert!(f.server.channels().is_empty());

    // On a terminal (`script` gives it one): he is asked which console, a wrong password
    // is asked again, his own login password opens the console.
    let mut cmd =
        Probe::as_user(&f.me).command(&["script", "-q", "-e", "-c", &shell_line, "/dev/null"]);
    f.desktop_env(&mut cmd, &f.me);
    cmd.env("SHELL", "/bin/sh")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut term = Spawned::start_with_input(cmd);
    let mut input = term.child_mut().stdin.take().unwrap();
    let screen = collect(term.child_mut().stdout.take().unwrap());
    let text = || String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    let prompts = |n: usize| text().matches("(to open console vm): ").count() >= n;
    let typed = |input: &mut std::process::ChildStdin, pw: &str| {
        use std::io::Write;
        input.write_all(format!("{pw}\n").as_bytes()).unwrap();
        input.flush().unwrap();
    };
    assert!(
        wait_until(SHORT, || text()
            .contains("open which one? (number or name)")),
        "no question: {}",
        text()
    );
    typed(&mut input, "1");
    assert!(wait_until(SHORT, || prompts(1)), "no prompt: {}", text());
    typed(&mut input, "not-his-password");
    assert!(
        wait_until(SHORT, || prompts(2)),
        "no second prompt: {}",
        text()
    );
    assert!(text().contains("Sorry, try again."), "{}", text());
    typed(&mut input, LOGIN_PASSWORD);
    let opened = wait_until(OPEN_TIMEOUT, || {
        text().contains("main channel: opened")
            && f.server.channels().iter().any(|c| c.channel_type == 1)
    });
    assert!(opened, "the console did not open:\n{}", text());
    assert!(
        text().contains("sudo asks for your own login password (not the VM's)"),
        "{}",
        text()
    );
    drop(input);
    drop(term);
    f.end_viewers();
}
