//! vmgate's edge to the operating system, as small primitives that take plain values
//! (text, paths, names, modes) and know nothing of policies:
//!
//! - [`nft`]: check, load (one transaction, atomic replace), list as JSON and delete
//!   *our* table, optionally inside a network namespace;
//! - [`sudoers`]: a drop-in written to an ignored temporary name, checked by `visudo`,
//!   renamed into place with mode 0440;
//! - [`files`]: owner/group/mode, atomic writes with exact attributes;
//! - [`originals`]: the recorded original attributes, for uninstall;
//! - [`snapshot`]: the affected files and tables before a change, to compare and roll back;
//! - [`statoverride`]: Debian's `dpkg-statoverride` registration;
//! - [`users`]: NSS lookups, the system group, group members;
//! - [`lock`]: one apply at a time;
//! - [`systemd`]: unit files, and a plain answer when systemd is not PID 1;
//! - [`kmsg`]: our denials in the kernel log, with uid and destination.
//!
//! **Boundary:** this crate runs tools and changes files it is told to; deciding *what*
//! to write is the policy compiler's job. Every function that acts on the machine takes
//! the name or path it acts on, so tests use test-unique names and temporary paths.
//!
//! ```no_run
//! use vmgate_system::nft::NftTable;
//! let table = NftTable::new("vmgate")?;
//! table.check("table inet vmgate { }")?;
//! table.load("table inet vmgate { }")?;
//! assert!(table.list_json()?.is_some());
//! table.delete()?;
//! # Ok::<(), vmgate_system::Error>(())
//! ```
#![forbid(unsafe_code)]

mod cmd;
mod error;

pub mod files;
pub mod kmsg;
pub mod lock;
pub mod nft;
pub mod originals;
pub mod snapshot;
pub mod statoverride;
pub mod sudoers;
pub mod systemd;
pub mod users;

pub use error::{Error, Result};
pub use files::FileAttrs;
