//! vmgate on a real system: `apply`, `verify`, `guard`, `uninstall` and `log`, as a
//! library the `vmgate` binary calls. It joins the pure core (`vmgate-policy`: what the
//! policy compiles to) and the OS primitives (`vmgate-system`: how to change one thing
//! safely) into whole operations that are validated first, idempotent, one at a time,
//! journaled and rolled back on failure.
//!
//! ```no_run
//! use vmgate_apply::{Mode, Options, Source, apply, verify};
//!
//! let text = std::fs::read_to_string("/etc/vmgate/policy.toml")?;
//! let src = Source::new("/etc/vmgate/policy.toml", &text, jiff::Timestamp::now());
//! let opts = Options::default();
//! let report = apply(&src, &opts, Mode::Apply)?; // a second run reports "no changes"
//! print!("{}", report.to_text());
//! assert!(verify(&src, &opts)?.ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What the CLI calls
//!
//! Every subcommand builds a [`Source`] from the policy file (`Source::new(path, text,
//! Timestamp::now())`, then sets `source.plan.table`/`etc_dir`/`sudoers_path` when flags
//! override them) and uses [`Options::default()`] (state in `/var/lib/vmgate`, lock
//! `/run/vmgate/apply.lock`, units in `/etc/systemd/system`, statoverride when
//! `dpkg-statoverride` exists).
//!
//! | command | call | exit code |
//! |---|---|---|
//! | `vmgate apply [POLICY]` | [`apply`]`(&src, &opts, Mode::Apply)`, print [`ApplyReport::to_text`] | 0 applied or nothing to do; 3 error (a failed step was rolled back: [`Error::RolledBack`]); 4 invalid policy ([`Error::Invalid`]: print its diagnostics; nothing changed) |
//! | `vmgate apply --check [POLICY]` | [`apply`]`(&src, &opts, Mode::Check)` | 0 no changes; **2 changes would be made** ([`ApplyReport::changed`]); 3 error; 4 invalid |
//! | `vmgate verify [POLICY] [--json]` | [`verify`]`(&src, &opts)`, print [`VerifyReport::to_text`] or its JSON | **0 only when [`VerifyReport::ok`]** (live == policy); 1 drift; 3 error; 4 invalid |
//! | `vmgate guard [POLICY] [--repair]` | [`guard`]`(&src, &opts, repair)` | 0 when [`GuardReport::ok`] (nothing wrong, or all repaired); 1 drift left (e.g. a member in the special group); 3 error; 4 invalid |
//! | `vmgate uninstall` | [`uninstall`]`(&opts)` (needs no policy) | 0 done (also when nothing was installed); 3 error |
//! | `vmgate log [POLICY]` | [`log`]`(prefix, Some(&policy), None)`; the prefix is the policy's `log_prefix` (default `vmgate denied: `); print [`Refusal::to_text`] per line. Without a policy, `journalctl -k --grep 'vmgate denied'` or `dmesg \| grep 'vmgate denied'` show the same lines | 0; 3 error |
//!
//! Exit 2 is reserved for "changes would be made", as configuration managers expect
//! (Ansible's `changed_when: rc == 2`), so an invalid policy is 4 in these subcommands
//! (the read-only `check`/`plan`/`explain` keep their own codes). "Another vmgate apply is
//! running" ([`vmgate_system::Error::Locked`], inside [`Error::System`]) is 3.
//!
//! # Steps of an apply, and why a crash is safe
//!
//! Before anything changes: the policy is checked ([`load`]: an unknown user or group is
//! an error, except the special and pin groups, which apply creates), the commands must
//! exist, `nft -c` must accept the table and `visudo -c` the drop-in, the apply lock is
//! taken, and the differences are computed. No differences: "no changes", and nothing is
//! written, not even the journal (idempotence). With [`Mode::Check`], the differences
//! are the report.
//!
//! Then, in this order ([`Step`]; the [`Options::hook`] failpoint fires after each):
//! 1. **journal**: a before-image of everything the apply may touch (files with content,
//!    binaries' attributes, the table's listing, statoverride registrations, which
//!    groups and directories did not exist) is written atomically to
//!    `STATE/journal.json`;
//! 2. **groups**: the special and pin groups are created if missing;
//! 3. **originals**: the pinned commands' owner and mode are recorded (first record wins);
//! 4. **modes**: each pinned command becomes root:GROUP 0750 (registered with
//!    `dpkg-statoverride --update` on Debian);
//! 5. **connection files** (root:GROUP 0640);
//! 6. **sudoers**: written to a temporary name sudo ignores, `visudo -cf`, renamed 0440;
//! 7. **table**: loaded in one nft transaction that replaces the old table atomically;
//! 8. **ruleset file**: the boot copy;
//! 9. **stale**: what the previous policy had and this one has not goes;
//! 10. **units**: installed and enabled when systemd is PID 1 (otherwise a note says so);
//! 11. **manifest**: `STATE/installed.json`, what is installed, for the next apply,
//!     verify and uninstall;
//!
//! and the **commit**: the journal is removed. A failing step restores the before-image
//! at once and reports [`Error::RolledBack`]. A process killed at any point leaves the
//! journal behind; the next `apply`, `verify`, `guard` or `uninstall` that gets the lock
//! (a `flock`, released by the kernel when the holder dies) restores the before-image
//! first, so after it the system is in the old state, and the committed state is the new
//! one: never a mix. Restoring is idempotent, so a crash during a rollback is repaired by
//! the next run too. The journal and every file are written by rename after fsync, so
//! each is whole or absent.
//!
//! **Between the kill and the next run** the system may hold a mix, and the order makes
//! every mix safe. A user reaches a console only when both the nft table admits his
//! (uid, special gid) and a sudo rule lets him start the viewer with that gid (he holds
//! no other way to a socket with the special gid: the viewer is root:GROUP 0750 and the
//! group has no members). Both come from the same policy, and the compiler grants nft
//! access only to users that also get the sudo rule (the table adds a schedule on top).
//! Any mix of the table of one policy with the sudo rules of the other therefore admits
//! at most what the table admits, which is a subset of old ∪ new: nobody is let in who
//! neither policy admits. Conversely a user admitted by both policies keeps his sudo rule
//! in both and his nft grant in both, so no mix locks him out (the exception is a policy
//! that renames the special group: then the mix fails closed until the next run). The
//! table switches in one transaction, so no packet ever sees half a table. The tests kill
//! a child apply with SIGKILL after every step and check exactly this.
//!
//! **Boundary**: decisions about *what* to write come from `vmgate-policy`; *how* to
//! write one thing comes from `vmgate-system`. This crate owns the order, the journal,
//! the manifest and the comparison of live state with the policy.

#![forbid(unsafe_code)]

mod apply;
mod error;
mod log;
mod options;
mod source;
mod state;
mod uninstall;
mod verify;

pub use apply::{ApplyReport, Change, Mode, apply};
pub use error::{Error, Result};
pub use log::{Refusal, follow, log};
pub use options::{Hook, Options, Step};
pub use source::{Loaded, Source, SystemDirectory, load};
pub use state::Manifest;
pub use uninstall::{UninstallReport, uninstall};
pub use verify::{AccessRow, GuardReport, VerifyReport, guard, verify};
