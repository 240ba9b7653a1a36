//! The git revision a run was made from and, when tracked files had changes, the diff
//! that re-creates its tree: `git.diff` beside each scenario's run.md, so a folder
//! committed from a dirty tree can still be re-run (`git apply git.diff` on the revision).

use anyhow::Context as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Written beside run.md when the working tree had changes.
pub const DIFF_FILE: &str = "git.diff";

/// What the run's source tree was.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Revision {
    /// `git rev-parse HEAD`, or "unknown" outside a git checkout.
    pub rev: String,
    /// `git diff HEAD --binary` of tracked files; empty when the tree was clean.
    /// Untracked files are not in it.
    pub diff: String,
}

impl Revision {
    pub fn read(root: &Path) -> Revision {
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(root)
                .args(args)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        };
        let rev = git(&["rev-parse", "HEAD"]).map_or_else(|| "unknown".into(), |s| s.trim().into());
        let diff = git(&["diff", "HEAD", "--binary"]).unwrap_or_default();
        Revision { rev, diff }
    }

    /// Tracked files differ from the revision.
    pub fn dirty(&self) -> bool {
        !self.diff.is_empty()
    }

    /// The run.md line; writes [`DIFF_FILE`] into `dir` when the tree was dirty.
    pub fn record(&self, dir: &Path) -> anyhow::Result<String> {
        if !self.dirty() {
            return Ok(format!("- git revision: {}", self.rev));
        }
        let path = dir.join(DIFF_FILE);
        std::fs::write(&path, &self.diff)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(format!(
            "- git revision: {} with uncommitted changes, in {DIFF_FILE} beside this file \
             (`git checkout {}` then `git apply {DIFF_FILE}` re-creates the tree; untracked files are not in it)",
            self.rev, self.rev
        ))
    }

    /// The warning a run from a dirty tree starts with.
    pub fn warning(&self) -> Option<String> {
        self.dirty().then(|| {
            format!(
                "the working tree has uncommitted changes to tracked files: each result folder records them in {DIFF_FILE}; commit first for results meant to be committed"
            )
        })
    }

    /// `abc123def456` or `abc123def456 (dirty: git.diff in each scenario folder)`.
    pub fn short(&self) -> String {
        let short: String = self.rev.chars().take(12).collect();
        if self.dirty() {
            format!("{short} (dirty: {DIFF_FILE} in each scenario folder)")
        } else {
            short
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir::TempDir;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("git runs")
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn a_dirty_tree_is_recorded_as_a_diff_that_applies() {
        let t = TempDir::new();
        let repo = t.0.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        std::fs::write(repo.join("a.txt"), "one\n").unwrap();
        git(&repo, &["add", "a.txt"]);
        git(&repo, &["commit", "-q", "-m", "first"]);

        let clean = Revision::read(&repo);
        assert_eq!(clean.rev.len(), 40, "{clean:?}");
        assert!(!clean.dirty() && clean.warning().is_none());
        let out = t.0.join("clean");
        std::fs::create_dir_all(&out).unwrap();
        assert_eq!(
            clean.record(&out).unwrap(),
            format!("- git revision: {}", clean.rev)
        );
        assert!(!out.join(DIFF_FILE).exists());

        std::fs::write(repo.join("a.txt"), "one\ntwo\n").unwrap();
        std::fs::write(repo.join("untracked.txt"), "x\n").unwrap();
        let dirty = Revision::read(&repo);
        assert_eq!(dirty.rev, clean.rev);
        assert!(dirty.dirty() && dirty.warning().is_some());
        assert!(dirty
            .short()
            .ends_with("(dirty: git.diff in each scenario folder)"));
        let out = t.0.join("dirty");
        std::fs::create_dir_all(&out).unwrap();
        let line = dirty.record(&out).unwrap();
        assert!(
            line.contains("with uncommitted changes, in git.diff"),
            "{line}"
        );
        // The diff re-creates the tree on a checkout of the revision.
        git(&repo, &["checkout", "-q", "--", "a.txt"]);
        git(&repo, &["apply", out.join(DIFF_FILE).to_str().unwrap()]);
        assert_eq!(
            std::fs::read_to_string(repo.join("a.txt")).unwrap(),
            "one\ntwo\n"
        );
    }

    #[test]
    fn outside_a_checkout_the_revision_is_unknown() {
        let t = TempDir::new();
        let r = Revision::read(&t.0);
        assert_eq!(r.rev, "unknown");
        assert!(!r.dirty());
    }
}
