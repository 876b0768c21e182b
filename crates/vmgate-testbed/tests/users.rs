//! Test users and groups exist while their guards live, and are gone afterwards.

use vmgate_system::users;
use vmgate_testbed::{Probe, TestGroup, TestUser, require_root};

#[test]
fn e2e_users_groups_homes_and_passwords_come_and_go() {
    require_root();
    let (name, group_name, home);
    {
        let user = TestUser::create_with_home();
        let group = TestGroup::create();
        group.add_member(&user);
        user.set_password("correct horse");
        name = user.name().to_owned();
        group_name = group.name().to_owned();
        home = user.home().expect("created with a home");
        assert!(home.is_dir());
        assert_eq!(users::require_user(&name).unwrap().uid, user.uid());
        assert_eq!(
            users::group_members(&group_name).unwrap().supplementary,
            vec![name.clone()]
        );
        assert!(users::user_group_ids(&name).unwrap().contains(&group.gid()));
        let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
        let hash = shadow
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap();
        assert!(
            hash.split(':').nth(1).unwrap().starts_with('$'),
            "password not set"
        );

        // The probe's ids are exactly those asked for, supplementary groups included.
        let status = Probe::as_user(&user).groups(&[group.gid()]).run(
            &["cat", "/proc/self/status"],
            std::time::Duration::from_secs(5),
        );
        assert!(status.success(), "{status:?}");
        let field = |key: &str| {
            let line = status.stdout.lines().find(|l| l.starts_with(key)).unwrap();
            line[key.len()..]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        let (uid, gid) = (user.uid(), user.gid());
        assert_eq!(field("Uid:"), format!("{uid} {uid} {uid} {uid}"));
        assert_eq!(field("Gid:"), format!("{gid} {gid} {gid} {gid}"));
        assert_eq!(field("Groups:"), group.gid().to_string());
    }
    assert!(users::user_by_name(&name).unwrap().is_none());
    assert!(
        users::group_by_name(&name).unwrap().is_none(),
        "the user-private group stayed"
    );
    assert!(users::group_by_name(&group_name).unwrap().is_none());
    assert!(!home.exists());
}

/// Regression: `setpriv --reuid` alone keeps root's effective capabilities until its exec,
/// so a probe could run a 0750 root:root file as an ordinary user. The probe must be
/// refused exactly as the user would be.
#[test]
fn e2e_regression_probe_cannot_execute_a_file_the_user_may_not() {
    use std::os::unix::fs::PermissionsExt;
    require_root();
    let user = TestUser::create();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("true");
    std::fs::copy("/bin/true", &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o750)).unwrap();
    let r = Probe::as_user(&user).run(&[bin.to_str().unwrap()], std::time::Duration::from_secs(5));
    assert!(
        !r.success() && r.stderr.contains("Permission denied"),
        "{r:?}"
    );
    let r = Probe::root().run(&[bin.to_str().unwrap()], std::time::Duration::from_secs(5));
    assert!(r.success(), "root may run it: {r:?}");
}
