//! The posts' whole mechanism with the edge primitives only: a client program runnable
//! only through the pinned group, a sudoers drop-in that lets one user run it with exactly
//! one argument list as himself with that group, and an nft table that admits the
//! (uid, group) pair. "You should see that user myself can access VM1 whilst mybro
//! cannot."

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use vmgate_system::FileAttrs;
use vmgate_system::files;
use vmgate_system::sudoers::{SUDOERS_D, SudoersDropIn};
use vmgate_testbed::{
    Probe, ProbeOutcome, TestGroup, TestHost, TestTable, TestUser, require_root, unique_name,
};

const PORT: u16 = 5900;

struct DropInGuard(SudoersDropIn);
impl Drop for DropInGuard {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

#[test]
fn e2e_only_the_sudo_pinned_group_path_reaches_the_console() {
    require_root();
    let me = TestUser::create();
    let bro = TestUser::create();
    let group = TestGroup::create();
    let host = TestHost::start(&[PORT]);
    let table = TestTable::new(None);

    // The "viewer": a copy of socat that only root and the group may run.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let viewer = dir.path().join("viewer");
    std::fs::copy("/usr/bin/socat", &viewer).unwrap();
    files::set_attrs(
        &viewer,
        FileAttrs {
            uid: 0,
            gid: group.gid(),
            mode: 0o750,
        },
    )
    .unwrap();
    let viewer = viewer.to_str().unwrap().to_owned();
    let target = format!("TCP4:{}:{PORT}", host.v4());

    let dropin = DropInGuard(SudoersDropIn::new(SUDOERS_D, &unique_name("sudo")).unwrap());
    dropin
        .0
        .install(&format!(
            "{me} ALL=({me}:{g}) NOPASSWD: {viewer} -u /dev/null {escaped}\n",
            me = me.name(),
            g = group.name(),
            escaped = target.replace(':', "\\:")
        ))
        .unwrap();

    table
        .load(&format!(
            "table inet {t} {{\n  set grants4 {{ type uid . gid . ipv4_addr . inet_service; elements = {{ {u} . {g} . {h} . {PORT} }} }}\n  chain output {{\n    type filter hook output priority filter; policy accept;\n    tcp flags & (syn | ack) != syn accept\n    meta skuid . meta skgid . ip daddr . tcp dport @grants4 accept\n    ip daddr {h} tcp dport {PORT} reject with tcp reset\n  }}\n}}",
            t = table.name(),
            u = me.uid(),
            g = group.gid(),
            h = host.v4()
        ))
        .unwrap();

    let wait = Duration::from_secs(10);
    let sudo = |user: &TestUser| {
        Probe::as_user(user).run(
            &[
                "sudo",
                "-n",
                "-u",
                user.name(),
                "-g",
                group.name(),
                &viewer,
                "-u",
                "/dev/null",
                &target,
            ],
            wait,
        )
    };

    // myself, through sudo and the pinned group: connected.
    let before = host.accepted(PORT);
    let ok = sudo(&me);
    assert!(ok.success(), "the granted path failed: {ok:?}");
    assert_eq!(host.accepted(PORT), before + 1);

    // myself running the viewer directly: the file mode stops him.
    let direct = Probe::as_user(&me).run(&[&viewer, "-u", "/dev/null", &target], wait);
    assert!(
        !direct.success() && direct.stderr.contains("Permission denied"),
        "{direct:?}"
    );

    // myself with another argument list: sudo refuses.
    let other_args = Probe::as_user(&me).run(
        &[
            "sudo",
            "-n",
            "-u",
            me.name(),
            "-g",
            group.name(),
            &viewer,
            "-u",
            "/dev/null",
            "TCP4:10.200.0.1:22",
        ],
        wait,
    );
    assert!(!other_args.success(), "{other_args:?}");

    // myself with a plain socket client: the table refuses him.
    assert_eq!(
        Probe::as_user(&me).connect(SocketAddr::new(host.v4(), PORT)),
        ProbeOutcome::Refused
    );

    // mybro through sudo: not in the drop-in.
    let bro_try = sudo(&bro);
    assert!(!bro_try.success(), "{bro_try:?}");
    assert_eq!(
        host.accepted(PORT),
        before + 1,
        "nothing else may have connected"
    );
}
