//! systemd units: load the compiled table before the network, switch to the
//! precompiled table at the next UTC-offset change, recompile daily, and
//! guard the permissions.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::policy::Policy;

/// One unit file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unit {
    /// File name, e.g. `vmgate-ruleset.service`.
    pub name: String,
    /// Contents.
    pub text: String,
}

/// Paths the units refer to.
#[derive(Debug, Clone)]
pub struct UnitPaths<'a> {
    /// The vmgate binary.
    pub vmgate: &'a str,
    /// The nft binary.
    pub nft: &'a str,
    /// The compiled ruleset file.
    pub ruleset: &'a str,
    /// The ruleset for after the next offset change.
    pub next_ruleset: &'a str,
    /// The policy.
    pub policy: &'a str,
    /// The sudoers drop-in.
    pub sudoers: &'a str,
    /// The nft table name.
    pub table: &'a str,
}

/// The units for a policy; `next_change` is the next UTC-offset change.
#[must_use]
pub fn units(policy: &Policy, p: &UnitPaths<'_>, next_change: Option<Timestamp>) -> Vec<Unit> {
    let mut out = Vec::new();
    out.push(Unit {
        name: "vmgate-ruleset.service".into(),
        text: format!(
            "[Unit]\n\
             Description=vmgate: load the console gate (nftables table inet {table})\n\
             # Loads the last compiled ruleset (numeric ids only): boot never waits\n\
             # for a user directory, and no console port is open before it runs.\n\
             DefaultDependencies=no\n\
             After=local-fs.target\n\
             Wants=network-pre.target\n\
             Before=network-pre.target shutdown.target\n\
             Conflicts=shutdown.target\n\
             \n\
             [Service]\n\
             Type=oneshot\n\
             RemainAfterExit=yes\n\
             # meta hour is UTC in the compiled text; nft must not shift it.\n\
             Environment=TZ=UTC\n\
             ExecStart={nft} -f {ruleset}\n\
             \n\
             [Install]\n\
             WantedBy=sysinit.target\n",
            table = p.table,
            nft = p.nft,
            ruleset = p.ruleset,
        ),
    });
    out.push(Unit {
        name: "vmgate-reload.service".into(),
        text: format!(
            "[Unit]\n\
             Description=vmgate: recompile and apply the policy\n\
             After=network-online.target nss-user-lookup.target vmgate-ruleset.service\n\
             Wants=network-online.target\n\
             \n\
             [Service]\n\
             Type=oneshot\n\
             ExecStart={vmgate} apply {policy}\n",
            vmgate = p.vmgate,
            policy = p.policy,
        ),
    });
    if let Some(t) = next_change {
        out.push(Unit {
            name: "vmgate-offset.service".into(),
            text: format!(
                "[Unit]\n\
                 Description=vmgate: switch to the ruleset compiled for the new UTC offset\n\
                 # Precompiled: needs neither the policy nor the user directory.\n\
                 After=vmgate-ruleset.service\n\
                 \n\
                 [Service]\n\
                 Type=oneshot\n\
                 Environment=TZ=UTC\n\
                 ExecStart={nft} -f {next}\n",
                nft = p.nft,
                next = p.next_ruleset,
            ),
        });
        out.push(Unit {
            name: "vmgate-offset.timer".into(),
            text: format!(
                "[Unit]\n\
                 Description=vmgate: the UTC offset of {zone} changes at {when} UTC\n\
                 \n\
                 [Timer]\n\
                 # The compiled day/hour windows are only right until that instant;\n\
                 # Persistent catches up at boot when the machine was off then.\n\
                 OnCalendar={when} UTC\n\
                 Persistent=true\n\
                 AccuracySec=1s\n\
                 Unit=vmgate-offset.service\n\
                 \n\
                 [Install]\n\
                 WantedBy=timers.target\n",
                zone = policy.defaults.timezone_name,
                when = t.strftime("%Y-%m-%d %H:%M:%S"),
            ),
        });
    }
    out.push(Unit {
        name: "vmgate-reload.timer".into(),
        text: "[Unit]\n\
               Description=vmgate: recompile daily (group grants expand to their members when compiling)\n\
               \n\
               [Timer]\n\
               OnCalendar=daily\n\
               Persistent=true\n\
               RandomizedDelaySec=15min\n\
               Unit=vmgate-reload.service\n\
               \n\
               [Install]\n\
               WantedBy=timers.target\n"
            .into(),
    });
    let mut watched = vec![policy.defaults.viewer.clone()];
    for pin in &policy.pins {
        if !watched.contains(&pin.command) {
            watched.push(pin.command.clone());
        }
    }
    watched.push(p.sudoers.to_string());
    let mut path = String::from(
        "[Unit]\nDescription=vmgate: watch the pinned commands for permission drift\n\n[Path]\n",
    );
    for w in &watched {
        let _ = writeln!(path, "PathChanged={w}");
    }
    path.push_str("Unit=vmgate-guard.service\n\n[Install]\nWantedBy=paths.target\n");
    out.push(Unit {
        name: "vmgate-guard.path".into(),
        text: path,
    });
    out.push(Unit {
        name: "vmgate-guard.service".into(),
        text: format!(
            "[Unit]\n\
             Description=vmgate: restore the pinned commands' owner and mode\n\
             \n\
             [Service]\n\
             Type=oneshot\n\
             ExecStart={vmgate} guard --repair {policy}\n",
            vmgate = p.vmgate,
            policy = p.policy,
        ),
    });
    out.push(Unit {
        name: "vmgate-guard.timer".into(),
        text: "[Unit]\n\
               Description=vmgate: check the pinned commands' permissions regularly\n\
               \n\
               [Timer]\n\
               OnBootSec=2min\n\
               OnUnitActiveSec=15min\n\
               Unit=vmgate-guard.service\n\
               \n\
               [Install]\n\
               WantedBy=timers.target\n"
            .into(),
    });
    out
}
