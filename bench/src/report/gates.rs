//! The end of a run, after its compare.md and headline: `--threshold` checked and
//! `--export` files written over the run's scenario folders, through the same code as
//! `c1m-loadgen compare` (`c1m_loadgen::report::gate`). The ✓/✗ lines go to stderr and
//! into each scenario's run.md.

use c1m_loadgen::report::gate::{check, Gate};
use std::path::{Path, PathBuf};

/// What the run's gate found.
#[derive(Debug, Default)]
pub struct GateResult {
    /// A threshold failed or could not be checked.
    pub failed: bool,
    /// The export files written (handed to the sudo user with the results).
    pub written: Vec<PathBuf>,
}

/// `--threshold` and `--export` of `c1m-bench run`, parsed before anything runs: a bad
/// expression, or one that needs a baseline (which a run does not have), is a usage
/// error (exit 2).
pub fn gate_from_args(thresholds: &[String], exports: &[String]) -> anyhow::Result<Gate> {
    let gate = Gate::from_args(thresholds, exports).map_err(crate::UsageError)?;
    if let Some(t) = gate.needs_baseline() {
        return Err(crate::UsageError(format!(
            "--threshold '{}': a run has no baseline; after it, compare with one: c1m-loadgen compare --baseline OLD NEW --threshold '{}'",
            t.text, t.text
        ))
        .into());
    }
    Ok(gate)
}

/// Checks `gate` on the scenario folders `sdirs`; nothing when it is empty. As root the
/// folder of an export file must be one only root and the sudo user can change.
pub fn after_run(gate: &Gate, sdirs: &[PathBuf]) -> anyhow::Result<GateResult> {
    let mut res = GateResult::default();
    if gate.is_empty() {
        return Ok(res);
    }
    let found: Vec<PathBuf> = sdirs.iter().filter(|d| d.is_dir()).cloned().collect();
    let text = match check(gate, &found, None) {
        Ok(outcome) => {
            res.failed = outcome.failed;
            for (path, body) in &outcome.files {
                write_export(path, body)?;
                res.written.push(path.clone());
            }
            outcome.text
        }
        Err(e) => {
            res.failed = !gate.thresholds.is_empty();
            format!("✗ thresholds and exports: cannot read the results: {e:#}\n")
        }
    };
    if !gate.thresholds.is_empty() {
        crate::say!("c1m: thresholds:\n{text}");
        for d in &found {
            crate::safe_fs::append(
                &d.join("run.md"),
                format!("\n## Thresholds\n\n```\n{text}```\n"),
            )?;
        }
    }
    for p in &res.written {
        crate::log(format!("wrote {}", p.display()));
    }
    Ok(res)
}

fn write_export(path: &Path, body: &str) -> anyhow::Result<()> {
    let parent = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from("."),
    };
    if crate::preflight::is_root() {
        let sudo_uid = crate::owner::sudo_owner().map(|(uid, _)| uid);
        crate::safe_fs::check_out_dir(&parent, sudo_uid)?;
    }
    crate::safe_fs::write(path, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use c1m_machine::tempdir::TempDir;

    fn scenario(root: &Path) -> PathBuf {
        let s = root.join("2026-01-01-1200-h-pingpong");
        let d = s.join("uring-c100");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(
            d.join("summary.json"),
            r#"{"workload": {"kind": "closed", "size": 64}, "latency": {"p99_us": 90}}"#,
        )
        .expect("summary");
        std::fs::write(s.join("runs.txt"), "uring-c100\n").expect("runs.txt");
        std::fs::write(s.join("run.md"), "# pingpong\n").expect("run.md");
        s
    }

    #[test]
    fn lines_go_into_run_md_and_a_failure_is_reported() {
        let t = TempDir::new();
        let s = scenario(&t.0);
        let export = t.0.join("bmf.json");
        let gate = Gate::from_args(
            &["p99_us < 100".into(), "errors == 0".into()],
            &["bencher".into(), export.display().to_string()],
        )
        .expect("gate");
        let r = after_run(&gate, std::slice::from_ref(&s)).expect("gate ran");
        assert!(!r.failed);
        assert_eq!(r.written, vec![export.clone()]);
        let md = std::fs::read_to_string(s.join("run.md")).expect("run.md");
        assert!(
            md.contains(
                "## Thresholds\n\n```\n✓ p99_us < 100: pingpong uring-c100: 90.0 µs over 1 round"
            ),
            "{md}"
        );
        let bmf: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&export).expect("export")).expect("json");
        assert_eq!(
            bmf["pingpong/uring-c100"]["p99_us"]["value"],
            serde_json::json!(90.0)
        );
        let gate = Gate::from_args(&["p99_us < 50".into()], &[]).expect("gate");
        assert!(after_run(&gate, &[s]).expect("ran").failed);
        // Nothing asked: nothing read, nothing written.
        assert!(
            !after_run(&Gate::default(), &[t.0.join("none")])
                .expect("ran")
                .failed
        );
    }

    #[test]
    fn bad_thresholds_are_usage_errors() {
        for (bad, says) in [
            ("p99 < 1", "unknown metric `p99`"),
            ("p99_us <= 1.05x baseline", "a run has no baseline"),
        ] {
            let e = gate_from_args(&[bad.into()], &[]).expect_err(bad);
            let u = e.downcast_ref::<crate::UsageError>().expect("usage error");
            assert!(u.0.contains(says), "{}", u.0);
        }
        let e = gate_from_args(&[], &["csv".into(), "x".into()]).expect_err("format");
        assert!(e.downcast_ref::<crate::UsageError>().is_some());
    }
}
