//! `RLIMIT_NOFILE`: read it, raise it as far as the process may.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use serde::Serialize;

/// The open-files limit before and after trying to raise it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NofileLimit {
    pub soft: u64,
    pub hard: u64,
    /// Soft limit before [`raise_nofile`] touched it.
    pub soft_before: u64,
    /// True if the hard limit could be raised too (needs CAP_SYS_RESOURCE).
    pub hard_raised: bool,
}

/// Current (soft, hard) `RLIMIT_NOFILE`.
pub fn nofile() -> (u64, u64) {
    getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024))
}

/// Raises the soft limit to `want`: first past the hard limit (works only with
/// CAP_SYS_RESOURCE, up to `fs.nr_open`), else to the hard limit. Never lowers it.
pub fn raise_nofile(want: u64) -> NofileLimit {
    let (soft_before, hard) = nofile();
    let mut hard_raised = false;
    if want > hard {
        let nr_open = crate::procfs::read_sysctl("fs.nr_open")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1 << 20);
        let target = want.min(nr_open);
        if target > hard && setrlimit(Resource::RLIMIT_NOFILE, target, target).is_ok() {
            hard_raised = true;
        }
    }
    let (_, hard) = nofile();
    let target = want.min(hard);
    if target > soft_before {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, target, hard);
    }
    let (soft, hard) = nofile();
    NofileLimit {
        soft,
        hard,
        soft_before,
        hard_raised,
    }
}
