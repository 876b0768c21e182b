//! Test users and groups, created with `useradd`/`groupadd` and removed in `Drop`.

use crate::{run_passwd_tool, unique_name};

/// A group of the test's own.
#[derive(Debug)]
pub struct TestGroup {
    name: String,
    gid: u32,
}

impl TestGroup {
    /// Creates a group `vmgtg<pid>x<n>`.
    pub fn create() -> Self {
        Self::create_named(unique_name("g"))
    }

    /// Creates a group with this exact (test-unique!) name.
    pub fn create_named(name: String) -> Self {
        let out = run_passwd_tool(&["groupadd", &name]);
        assert!(
            out.status.success(),
            "groupadd {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let gid = vmgate_system::users::require_group(&name)
            .expect("the group just created resolves")
            .gid;
        TestGroup { name, gid }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group's gid.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// Adds `user` as a supplementary member (`gpasswd -a`).
    pub fn add_member(&self, user: &TestUser) {
        let out = run_passwd_tool(&["gpasswd", "-a", user.name(), &self.name]);
        assert!(
            out.status.success(),
            "gpasswd -a {} {} failed: {}",
            user.name(),
            self.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let out = run_passwd_tool(&["groupdel", &self.name]);
        if !out.status.success() {
            eprintln!(
                "warning: groupdel {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

/// A user of the test's own, with a private primary group of the same name, no login
/// shell, a locked password unless [`TestUser::set_password`] sets one, and a home
/// directory only on request.
#[derive(Debug)]
pub struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    home: bool,
}

impl TestUser {
    /// Creates a user `vmgtu<pid>x<n>` without a home directory.
    pub fn create() -> Self {
        Self::create_inner(false)
    }

    /// Creates a user with a home directory (removed with the user), for programs that
    /// write to `~/.config` or `~/.cache`, such as a viewer.
    pub fn create_with_home() -> Self {
        Self::create_inner(true)
    }

    fn create_inner(home: bool) -> Self {
        let name = unique_name("u");
        let out = run_passwd_tool(&[
            "useradd",
            if home {
                "--create-home"
            } else {
                "--no-create-home"
            },
            "--user-group",
            "--shell",
            "/usr/sbin/nologin",
            &name,
        ]);
        assert!(
            out.status.success(),
            "useradd {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let info =
            vmgate_system::users::require_user(&name).expect("the user just created resolves");
        TestUser {
            name,
            uid: info.uid,
            gid: info.gid,
            home,
        }
    }

    /// Sets the user's password (`chpasswd`), for sudo rules that ask for it.
    pub fn set_password(&self, password: &str) {
        use std::io::Write;
        let mut child = std::process::Command::new("chpasswd")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("chpasswd (package passwd)");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(format!("{}:{password}\n", self.name).as_bytes())
            .expect("write to chpasswd");
        assert!(
            child.wait().expect("chpasswd").success(),
            "chpasswd failed for {}",
            self.name
        );
    }

    /// The home directory, when the user was created with one.
    pub fn home(&self) -> Option<std::path::PathBuf> {
        if !self.home {
            return None;
        }
        nix::unistd::User::from_name(&self.name)
            .ok()
            .flatten()
            .map(|u| u.dir)
    }

    /// The login name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The uid.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The primary (user-private) group's gid.
    pub fn gid(&self) -> u32 {
        self.gid
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let out = if self.home {
            run_passwd_tool(&["userdel", "--remove", &self.name])
        } else {
            run_passwd_tool(&["userdel", &self.name])
        };
        if !out.status.success() {
            eprintln!(
                "warning: userdel {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        // userdel removes the user-private group only when USERGROUPS_ENAB is set.
        if vmgate_system::users::group_by_name(&self.name)
            .ok()
            .flatten()
            .is_some()
        {
            let _ = run_passwd_tool(&["groupdel", &self.name]);
        }
    }
}
