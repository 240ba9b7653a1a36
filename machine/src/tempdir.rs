//! For tests (here and in the crates that use this one): a private temporary directory.

use std::path::PathBuf;

/// A private temporary directory (mkdtemp, mode 0700), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Panics when no directory can be made: tests only.
    pub fn new() -> TempDir {
        let tmpl = std::env::temp_dir().join("c1m-bench-test.XXXXXX");
        TempDir(nix::unistd::mkdtemp(&tmpl).expect("mkdtemp"))
    }
}

impl Default for TempDir {
    fn default() -> TempDir {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
