//! The primitives against the real tools, as root. Every name is test-unique and every
//! change is undone by a guard's `Drop`, even when an assertion fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use vmgate_system::Error;
use vmgate_system::files::{self, FileAttrs};
use vmgate_system::kmsg;
use vmgate_system::nft::NftTable;
use vmgate_system::originals::OriginalStore;
use vmgate_system::statoverride;
use vmgate_system::sudoers::{self, SudoersDropIn};
use vmgate_system::users;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these end-to-end tests change machine state and must run as root (they run in CI as root)"
    );
}

fn unique(kind: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "vmgt{kind}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn")
}

/// Deletes the table on drop.
struct TableGuard(NftTable);
impl Drop for TableGuard {
    fn drop(&mut self) {
        let _ = self.0.delete();
    }
}

/// A network namespace of the test's own.
struct NetnsGuard(String);
impl NetnsGuard {
    fn new() -> Self {
        let name = unique("ns");
        assert!(sh(&["ip", "netns", "add", &name]).status.success());
        NetnsGuard(name)
    }
}
impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "delete", &self.0]);
    }
}

fn table_text(name: &str, port: u16) -> String {
    format!(
        "table inet {name} {{\n  chain output {{\n    type filter hook output priority 0; policy accept;\n    ip daddr 10.200.254.254 tcp dport {port} reject with tcp reset\n  }}\n}}"
    )
}

#[test]
fn e2e_nft_table_checks_loads_replaces_lists_and_deletes() {
    require_root();
    let table = TableGuard(NftTable::new(unique("t")).unwrap());
    let t = &table.0;
    assert!(!t.exists().unwrap());
    assert_eq!(t.list_json().unwrap(), None);

    t.check(&table_text(t.name(), 5900)).unwrap();
    assert!(!t.exists().unwrap(), "check must not load anything");

    t.load(&table_text(t.name(), 5900)).unwrap();
    let json = t.list_json().unwrap().unwrap();
    assert!(
        json.contains("\"nftables\"") && json.contains("5900"),
        "{json}"
    );

    // Loading again replaces the table: the old rule is gone, not duplicated.
    t.load(&table_text(t.name(), 5901)).unwrap();
    let text = t.list_text().unwrap().unwrap();
    assert!(text.contains("5901") && !text.contains("5900"), "{text}");
    assert_eq!(text.matches("reject").count(), 1, "{text}");

    // A broken ruleset is refused with nft's message and leaves the old one in force.
    let err = t
        .load(&format!(
            "table inet {} {{ chain output {{ nonsense }} }}",
            t.name()
        ))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tool { stderr, .. } if stderr.contains("syntax error")),
        "{err}"
    );
    assert!(t.list_text().unwrap().unwrap().contains("5901"));
    assert!(
        t.check("table inet other_table { chain c { bogus } }")
            .is_err()
    );

    t.delete().unwrap();
    assert!(!t.exists().unwrap());
    t.delete().unwrap(); // idempotent
}

#[test]
fn e2e_nft_table_in_a_network_namespace_stays_there() {
    require_root();
    let ns = NetnsGuard::new();
    let name = unique("t");
    let inside = TableGuard(NftTable::new(&name).unwrap().in_netns(&ns.0));
    inside.0.load(&table_text(&name, 5900)).unwrap();
    assert!(inside.0.exists().unwrap());
    assert!(
        !NftTable::new(&name).unwrap().exists().unwrap(),
        "leaked into the root namespace"
    );
    assert!(inside.0.list_json().unwrap().unwrap().contains(&name));
}

#[test]
fn e2e_sudoers_drop_in_is_checked_then_installed_with_0440() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = SudoersDropIn::new(dir.path(), "vmgate").unwrap();
    let rule = "Defaults:nobody !lecture\n";
    assert!(d.install(rule).unwrap());
    assert_eq!(d.read().unwrap().as_deref(), Some(rule));
    assert_eq!(files::stat(d.path()).unwrap(), FileAttrs::root(0o440));
    assert!(
        !d.install(rule).unwrap(),
        "same content must change nothing"
    );

    let err = d.install("this is not sudoers\n").unwrap_err();
    assert!(matches!(err, Error::SudoersRejected { .. }), "{err}");
    assert!(err.to_string().contains("syntax error"), "{err}");
    assert_eq!(
        d.read().unwrap().as_deref(),
        Some(rule),
        "a rejected text must replace nothing"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("vmgate")],
        "temporary left behind"
    );

    assert!(sudoers::check_text(rule).is_ok());
    assert!(sudoers::check_text("nonsense here\n").is_err());
    assert!(d.remove().unwrap());
    assert!(!d.remove().unwrap());
}

/// Removes a drop-in from the real /etc/sudoers.d on drop.
struct DropInGuard(SudoersDropIn);
impl Drop for DropInGuard {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

#[test]
fn e2e_sudoers_drop_in_in_the_real_directory_is_read_by_sudo() {
    require_root();
    let user = unique("u");
    let guard = DropInGuard(SudoersDropIn::new(sudoers::SUDOERS_D, &user).unwrap());
    // A rule for a user that does not exist grants nothing to anyone.
    let rule = format!("{user} ALL=(root) NOPASSWD: /bin/true\n");
    assert!(guard.0.install(&rule).unwrap());
    // The whole configuration, with our file included, still parses.
    let out = sh(&["visudo", "-c"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&user));
}

/// Removes a group on drop.
struct GroupGuard(String);
impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = sh(&["groupdel", &self.0]);
    }
}

#[test]
fn e2e_system_group_is_created_once_and_members_are_listed() {
    require_root();
    let g = GroupGuard(unique("g"));
    let (gid, created) = users::ensure_system_group(&g.0).unwrap();
    assert!(created);
    assert!(gid < 1000, "a system group gets a system gid, got {gid}");
    assert_eq!(users::ensure_system_group(&g.0).unwrap(), (gid, false));
    assert_eq!(
        users::group_members(&g.0).unwrap(),
        users::GroupMembers::default()
    );
    assert!(sh(&["gpasswd", "-a", "root", &g.0]).status.success());
    let m = users::group_members(&g.0).unwrap();
    assert_eq!(m.supplementary, vec!["root".to_owned()]);
    assert!(users::user_group_ids("root").unwrap().contains(&gid));
}

/// Removes a statoverride on drop.
struct OverrideGuard(PathBuf);
impl Drop for OverrideGuard {
    fn drop(&mut self) {
        let _ = statoverride::remove(&self.0);
    }
}

#[test]
fn e2e_dpkg_statoverride_registers_applies_and_removes() {
    require_root();
    assert!(
        statoverride::available(),
        "dpkg-statoverride is missing (Debian's dpkg)"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("viewer");
    std::fs::write(&file, b"#!/bin/sh\n").unwrap();
    files::set_attrs(&file, FileAttrs::root(0o755)).unwrap();
    let guard = OverrideGuard(file.clone());

    assert_eq!(statoverride::get(&file).unwrap(), None);
    assert!(statoverride::set(&file, "root", "daemon", 0o750).unwrap());
    let daemon = users::require_group("daemon").unwrap().gid;
    assert_eq!(
        files::stat(&file).unwrap(),
        FileAttrs {
            uid: 0,
            gid: daemon,
            mode: 0o750
        },
        "--update applies at once"
    );
    assert!(!statoverride::set(&file, "root", "daemon", 0o750).unwrap());
    assert!(
        statoverride::set(&file, "root", "daemon", 0o710).unwrap(),
        "a different override replaces the old one"
    );
    assert_eq!(statoverride::get(&file).unwrap().unwrap().mode, 0o710);
    assert!(statoverride::remove(&guard.0).unwrap());
    assert_eq!(statoverride::get(&file).unwrap(), None);
}

/// Puts a packaged binary back: override removed, recorded original attributes restored.
struct PackagedBinaryGuard {
    path: PathBuf,
    store: OriginalStore,
}
impl Drop for PackagedBinaryGuard {
    fn drop(&mut self) {
        let _ = statoverride::remove(&self.path);
        let _ = self.store.restore_all();
    }
}

fn dpkg_install(deb: &Path) {
    // Another process may hold the dpkg lock for a moment.
    for _ in 0..60 {
        let out = sh(&["dpkg", "-i", deb.to_str().unwrap()]);
        if out.status.success() {
            return;
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            err.contains("lock"),
            "dpkg -i {} failed: {err}",
            deb.display()
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    panic!("the dpkg lock stayed held for a minute");
}

/// The property issue 4 needs: a package upgrade must not undo the pinned mode.
#[test]
fn e2e_dpkg_statoverride_survives_a_real_package_reinstall() {
    require_root();
    let bin = PathBuf::from("/usr/bin/hello");
    assert!(
        bin.exists(),
        "the Debian package `hello` is needed (scripts/deps.sh vmgate installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("apt-get")
        .args(["download", "hello"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let deb = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap_or_else(|| {
            panic!(
                "apt-get download hello failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });

    let group = GroupGuard(unique("g"));
    let (gid, _) = users::ensure_system_group(&group.0).unwrap();
    let mut guard = PackagedBinaryGuard {
        path: bin.clone(),
        store: OriginalStore::open(dir.path().join("originals.json")).unwrap(),
    };
    guard.store.record_current(&bin).unwrap();
    let original = guard.store.get(&bin).unwrap();
    let pinned = FileAttrs {
        uid: 0,
        gid,
        mode: 0o750,
    };

    // Control: without an override a reinstall puts the package's mode back, so the
    // reinstall below really replaces the file.
    files::set_attrs(&bin, pinned).unwrap();
    dpkg_install(&deb);
    assert_eq!(
        files::stat(&bin).unwrap(),
        original,
        "reinstall did not replace the binary"
    );

    assert!(statoverride::set(&bin, "root", &group.0, 0o750).unwrap());
    assert_eq!(files::stat(&bin).unwrap(), pinned);
    dpkg_install(&deb);
    assert_eq!(
        files::stat(&bin).unwrap(),
        pinned,
        "the reinstall lost the pinned owner and mode"
    );

    drop(guard);
    assert_eq!(files::stat(&bin).unwrap(), original);
    assert_eq!(statoverride::get(&bin).unwrap(), None);
}

#[test]
fn e2e_originals_are_restored_after_a_mode_change() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("remote-viewer");
    std::fs::write(&file, b"x").unwrap();
    files::set_attrs(&file, FileAttrs::root(0o755)).unwrap();
    let mut store = OriginalStore::open(dir.path().join("var/originals.json")).unwrap();
    store.record_current(&file).unwrap();
    store.save().unwrap();
    files::set_attrs(
        &file,
        FileAttrs {
            uid: 0,
            gid: 1,
            mode: 0o750,
        },
    )
    .unwrap();
    let mut store = OriginalStore::open(store.path()).unwrap();
    store.restore_all().unwrap();
    assert_eq!(files::stat(&file).unwrap(), FileAttrs::root(0o755));
}

#[test]
fn e2e_kernel_log_records_with_our_prefix_are_found_and_parsed() {
    require_root();
    let prefix = format!("{}: ", unique("log"));
    let before = kmsg::last_seq().unwrap();
    // Writing to /dev/kmsg adds a record exactly as the kernel stores nft's lines.
    let line = format!(
        "{prefix}IN= OUT=lo SRC=10.200.0.1 DST=10.200.0.2 LEN=60 PROTO=TCP SPT=40000 DPT=5930 SYN URGP=0 UID=4242 GID=4343\n"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(kmsg::KMSG)
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
    let found = kmsg::denials(&prefix).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let d = &found[0];
    assert!(d.seq > before);
    assert_eq!(
        (d.uid, d.gid, d.dport),
        (Some(4242), Some(4343), Some(5930))
    );
    assert_eq!(d.dst.to_string(), "10.200.0.2");
}

#[test]
fn e2e_kernel_log_follow_sees_only_new_denials() {
    require_root();
    let prefix = format!("{}: ", unique("log"));
    let write = |uid: u32| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(kmsg::KMSG)
            .unwrap()
            .write_all(format!("{prefix}IN= OUT=lo SRC=10.200.0.1 DST=10.200.0.3 PROTO=TCP SPT=1 DPT=5931 UID={uid} GID=1\n").as_bytes())
            .unwrap();
    };
    write(1);
    let mut follow = kmsg::follow(&prefix).unwrap();
    write(2);
    let d = follow.next().unwrap().unwrap();
    assert_eq!(d.uid, Some(2), "follow must start at the end of the log");
}

#[test]
fn e2e_snapshot_restores_a_replaced_table_and_a_drop_in() {
    require_root();
    let table = TableGuard(NftTable::new(unique("t")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let dropin = SudoersDropIn::new(dir.path(), "vmgate").unwrap();
    table.0.load(&table_text(table.0.name(), 5900)).unwrap();
    dropin.install("Defaults:nobody !lecture\n").unwrap();

    let mut before = vmgate_system::snapshot::Snapshot::new();
    before.table(&table.0).unwrap().file(dropin.path()).unwrap();
    table.0.load(&table_text(table.0.name(), 5999)).unwrap();
    dropin.remove().unwrap();
    let diff = before.diff(&before.recapture().unwrap());
    assert_eq!(diff.len(), 2, "{diff:?}");

    // nft's own listing loads back: the rollback path of a failed apply.
    before.restore().unwrap();
    assert!(before.diff(&before.recapture().unwrap()).is_empty());
    assert!(table.0.list_text().unwrap().unwrap().contains("5900"));
    assert_eq!(files::stat(dropin.path()).unwrap(), FileAttrs::root(0o440));
}

#[test]
fn lock_path_parent_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path: &Path = &dir.path().join("run/vmgate/apply.lock");
    let lock = vmgate_system::lock::ApplyLock::try_acquire(path).unwrap();
    assert_eq!(lock.path(), path);
}
