//! `c1m-machine`: what the orchestrator needs from the machine it runs on, as root,
//! trusting nothing another user can write. A leaf: it knows no scenario, plan or
//! topology.
//!
//! Code map:
//! - [`safe_fs`]: files and folders created without following links, vetted before use;
//! - [`statedir`]: the private state directory, its lock, the sysctl state file;
//! - [`sysctl`]: the one place that reads, applies and restores sysctls;
//! - [`procs`]: children in their own sessions, tracked and stopped (one way to run a
//!   command);
//! - [`interrupt`]: SIGINT/SIGTERM/SIGHUP as an error that unwinds into cleanup;
//! - [`tools`]: the outside programs (ip, tc, ethtool, nginx, wrk), found one way;
//! - [`owner`]: result folders handed to the sudo user;
//! - [`preflight`]: machine facts, io_uring check, ulimits;
//! - [`revision`]: the git revision and the diff of a dirty tree;
//! - [`timefmt`]: local time stamps;
//! - [`tempdir`]: a private temporary directory for tests;
//! - [`say!`], [`sayln!`], [`sayln_out!`], [`log`], [`warn`]: how every c1m tool prints.

pub mod interrupt;
pub mod owner;
pub mod preflight;
pub mod procs;
pub mod revision;
pub mod safe_fs;
pub mod statedir;
pub mod sysctl;
pub mod tempdir;
pub mod timefmt;
pub mod tools;

/// `eprint!` that ignores a closed stderr (`c1m.sh 2>&1 | head`) instead of panicking:
/// the run goes on and restores what it tuned.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed stderr, as [`say!`].
#[macro_export]
macro_rules! sayln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `println!` that ignores a closed stdout (`c1m.sh | head`), as [`say!`].
#[macro_export]
macro_rules! sayln_out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// A progress line on stderr, as every c1m tool prints them.
pub fn log(msg: impl std::fmt::Display) {
    sayln!("c1m: {msg}");
}

/// A warning line on stderr.
pub fn warn(msg: impl std::fmt::Display) {
    sayln!("c1m: warning: {msg}");
}
