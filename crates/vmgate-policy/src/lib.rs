//! vmgate's policy model and compiler: a pure core with no I/O.
//!
//! One declarative policy in (TOML), everything the client needs out: the
//! nftables table, the sudoers drop-in, the .vv connection files, owners and
//! modes, and the systemd units; plus two independent evaluators, the policy's
//! own [`decide()`] and an interpreter of the compiled ruleset
//! ([`nft::Ruleset::evaluate`]), which the property tests hold equal.
//!
//! ```
//! use vmgate_policy::{CheckInput, PlanOptions, check, decide, example, plan};
//! use jiff::{Timestamp, tz::TimeZone};
//!
//! let dir = example::demo_directory();
//! let input = CheckInput { file: "office.toml", text: example::OFFICE_TOML, system_timezone: TimeZone::UTC };
//! let policy = check(&input, &dir).expect("the example is valid");
//! let now: Timestamp = "2026-12-02T09:00:00Z".parse().unwrap(); // a Wednesday
//! let plan = plan(&policy, &PlanOptions::new(now));
//! assert!(plan.nft_text.contains("meta skuid . meta skgid . ip daddr . tcp dport @grants4 accept"));
//!
//! // mybro (1022), through the viewer's group (990), may not reach debianx (20002)...
//! let debianx = "192.168.10.5".parse().unwrap();
//! assert!(!decide(&policy, 1022, 990, debianx, 20002, now).allowed);
//! // ...but myself may, and the compiled table agrees.
//! assert!(decide(&policy, 1021, 990, debianx, 20002, now).allowed);
//! ```
//!
//! # Group grants
//! The viewer runs with the special group as its effective group, so the
//! kernel sees `skgid` = that group, never the user's own groups: a grant to
//! `groups = ["bookkeeping"]` cannot be matched on the socket. It is therefore
//! expanded when compiling, to the group's members (its member list, plus the
//! users whose primary group it is, where the [`Directory`] can tell), and each
//! member gets the same nft elements and sudoers line as a named user, with
//! the run-as user pinned to the caller. Membership changes take effect at the
//! next compile (the reload timer runs daily and at offset changes), in nft and
//! sudoers alike, so the two never disagree.
//!
//! # Time
//! The kernel matches `meta day`/`meta hour` in UTC, and vmgate always runs
//! `nft` with `TZ=UTC` (loading and listing), so the text holds UTC hours.
//! Weekly windows written in the policy's zone are compiled for the UTC
//! offset in force at plan time; the plan also carries the table for the
//! next offset ([`plan::NextOffset`]), which `vmgate-offset.timer` loads at
//! the change instant without needing the policy or the user directory.
//! Scheduled grants are checked on every packet (no established-connection
//! shortcut), so a closing window cuts open sessions.
//!
//! # Connecting
//! [`connect::choices`] answers `vmgate connect`: which consoles a user may open now
//! (each with the [`sudoers::SudoRule`] whose line the drop-in holds, so the command run
//! is word for word the one sudo admits), and when the closed ones open next.
//!
//! # Proof
//! [`decide()`] (the policy) and [`nft::Ruleset::evaluate`] (the compiled table,
//! read back from its nft JSON) are held equal by property tests over random
//! policies, zones and packets; end-to-end tests load the text into a real
//! kernel, read `nft -j` back (structurally equal, [`nft::diff`]), and make
//! real connections with exact uids and gids. [`matrix`] gives `verify` the
//! same comparison on the live table.
//!
//! **Boundary**: nothing here reads files, asks NSS or runs tools; the binary
//! does, through [`Directory`] and by writing what [`Plan`] says.

#![forbid(unsafe_code)]

pub mod connect;
pub mod decide;
pub mod diag;
pub mod directory;
pub mod example;
pub mod explain;
pub mod matrix;
pub mod nft;
pub mod plan;
pub mod policy;
pub mod raw;
pub mod ruleset;
pub mod schedule;
mod shape;
pub mod sudoers;
pub mod units;
pub mod validate;
pub mod vv;

pub use decide::{Decision, Reason, decide};
pub use diag::{Diagnostic, Diagnostics};
pub use directory::{Directory, GroupEntry, LookupError, StaticDirectory, UserEntry};
pub use explain::{Explanation, explain};
pub use plan::{Plan, PlanOptions, plan};
pub use policy::Policy;
pub use validate::{CheckInput, check};
