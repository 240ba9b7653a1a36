//! The outside programs the kit runs (ip, tc, ethtool, nginx, wrk, taskset): found in one
//! way, on PATH or in the folders root's tools live in (Debian puts nginx in /usr/sbin).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// `name` on PATH, else in /usr/sbin, /sbin, /usr/bin or /bin: an executable file.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_what_every_machine_has_and_not_what_none_has() {
        assert!(super::find_program("sh").is_some());
        assert!(super::find_program("c1m-no-such-program").is_none());
    }
}
