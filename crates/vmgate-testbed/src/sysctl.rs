//! A sysctl set for the duration of a test and restored in `Drop`.

use std::path::PathBuf;

/// Holds a sysctl at a value; the previous value comes back on drop.
///
/// Machine-wide: only `e2e_` tests (run one at a time) should use it.
#[derive(Debug)]
pub struct SysctlGuard {
    path: PathBuf,
    previous: String,
}

impl SysctlGuard {
    /// Sets `key` (dotted, e.g. `net.netfilter.nf_log_all_netns`) to `value`.
    pub fn set(key: &str, value: &str) -> Self {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        let previous = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read sysctl {key} ({}): {e}", path.display()))
            .trim()
            .to_owned();
        std::fs::write(&path, value)
            .unwrap_or_else(|e| panic!("cannot set sysctl {key}={value}: {e}"));
        SysctlGuard { path, previous }
    }

    /// The value before the guard changed it.
    pub fn previous(&self) -> &str {
        &self.previous
    }
}

impl Drop for SysctlGuard {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(&self.path, &self.previous) {
            eprintln!("warning: could not restore {}: {e}", self.path.display());
        }
    }
}
