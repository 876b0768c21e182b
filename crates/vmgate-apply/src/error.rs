//! What can go wrong when vmgate acts on the machine.

use crate::options::Step;

/// Errors of apply, verify, guard, uninstall and log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy is invalid; nothing was changed. Print the diagnostics.
    #[error("the policy is invalid; nothing was changed")]
    Invalid(vmgate_policy::Diagnostics),
    /// A precondition does not hold (checked before anything changes).
    #[error("{what}; nothing was changed ({fix})")]
    Precondition {
        /// What is wrong.
        what: String,
        /// How to fix it.
        fix: String,
    },
    /// A step failed and everything done so far was rolled back.
    #[error("apply failed at step `{step}`: {cause}; the previous state was restored")]
    RolledBack {
        /// The step that failed.
        step: Step,
        /// Why.
        cause: String,
    },
    /// A step failed and the rollback failed too: the journal is kept, the next vmgate
    /// run (as root) retries the rollback.
    #[error(
        "apply failed at step `{step}`: {cause}; rolling back failed too: {rollback}; the journal {journal} is kept and the next `vmgate apply`, `verify` or `guard` retries the rollback"
    )]
    RollbackFailed {
        /// The step that failed.
        step: Step,
        /// Why.
        cause: String,
        /// Why the rollback failed.
        rollback: String,
        /// The journal file.
        journal: String,
    },
    /// An OS operation failed.
    #[error(transparent)]
    System(#[from] vmgate_system::Error),
    /// A state file of ours cannot be read.
    #[error(
        "state file {path} is not valid: {cause} (it is vmgate's own; remove it only if you know the system is clean)"
    )]
    BadState {
        /// The file.
        path: String,
        /// The parse error.
        cause: String,
    },
    /// The live table cannot be read back.
    #[error("the live nft table inet {table} cannot be interpreted: {cause}")]
    Listing {
        /// Table name.
        table: String,
        /// Why.
        cause: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
