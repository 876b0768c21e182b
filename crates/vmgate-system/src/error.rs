//! One error type for the whole edge crate: every variant names the thing that failed
//! (program, path, user, group) and carries the tool's own words where there are any.

use std::path::PathBuf;

/// Everything that can go wrong when vmgate touches the machine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Ruleset text meant for our table touches another table or the whole ruleset.
    #[error(
        "refusing to load ruleset text for table inet {table}: the line `{line}` would touch another table or the whole ruleset"
    )]
    ForeignRuleset {
        /// Our table.
        table: String,
        /// The offending line.
        line: String,
    },
    /// A program could not be started at all (usually: its package is not installed).
    #[error("could not run `{program}`: {source} (is the package that provides it installed?)")]
    Spawn {
        /// The program we tried to run.
        program: String,
        /// Why the kernel refused to start it.
        #[source]
        source: std::io::Error,
    },
    /// A program ran and failed; `stderr` holds its own explanation.
    #[error("`{command}` failed ({status}): {stderr}")]
    Tool {
        /// The command line, for the reader (not for a shell).
        command: String,
        /// The exit status as the OS reports it.
        status: String,
        /// The program's standard error, trimmed.
        stderr: String,
    },
    /// A file system operation failed.
    #[error("could not {op} {}: {source}", path.display())]
    Io {
        /// What we were doing, e.g. "write", "rename into place".
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A system call made through `nix` failed.
    #[error("{what}: {source}")]
    Sys {
        /// What we were doing.
        what: String,
        /// The errno.
        #[source]
        source: nix::errno::Errno,
    },
    /// A name given to us cannot be used safely (table, drop-in, unit, group).
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// What kind of name: "nft table", "sudoers drop-in", ...
        kind: &'static str,
        /// The name as given.
        name: String,
        /// What is wrong and what would be accepted.
        reason: &'static str,
    },
    /// A user or group that must exist does not.
    #[error("no {kind} named {name:?} on this system (check `getent {kind}` / NSS)")]
    NotFound {
        /// "passwd" or "group".
        kind: &'static str,
        /// The name we looked for.
        name: String,
    },
    /// `visudo` rejected a drop-in; nothing was installed.
    #[error("visudo rejected the sudoers drop-in {}, nothing was installed: {stderr}", path.display())]
    SudoersRejected {
        /// The drop-in's final path.
        path: PathBuf,
        /// visudo's own explanation.
        stderr: String,
    },
    /// A state file exists but cannot be understood.
    #[error("state file {} is not valid: {source} (fix or remove it; it records the original owners and modes)", path.display())]
    BadState {
        /// The state file.
        path: PathBuf,
        /// The parse error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// Another process holds the apply lock.
    #[error("another vmgate apply is running (lock {} is held); wait for it and retry", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// systemd is not the init system, so units cannot be reloaded or enabled.
    #[error("systemd is not PID 1 on this machine (no {}): units are installed but not enabled; run `vmgate guard` from another scheduler", run_dir.display())]
    SystemdNotRunning {
        /// The directory whose absence told us so.
        run_dir: PathBuf,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
