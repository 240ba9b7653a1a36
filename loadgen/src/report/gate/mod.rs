//! Pass/fail and exports over result folders, one code path for `c1m-loadgen compare`
//! and the orchestrator's end of run:
//! - [`metric`]: the one table of metric names (compare.md's columns in snake_case);
//! - [`cases`]: result folders read into cases over their rounds;
//! - [`expr`]: the `--threshold` grammar, parsed; [`eval`]: a threshold checked, its
//!   ✓/✗ lines;
//! - [`baseline`]: `--baseline OLD`: NEW/OLD per case and metric, whether rounds separate;
//! - [`export`]: `--export bencher|github-benchmark|github-benchmark-bigger FILE`;
//! - [`command`]: `c1m-loadgen compare` with all of them.

pub mod baseline;
pub mod cases;
pub mod command;
pub mod eval;
pub mod export;
pub mod expr;
pub mod metric;

pub use command::compare_cli;
use std::path::PathBuf;

/// The exit status of a run or a compare whose thresholds did not all pass (1: the run
/// failed, 2: usage, 3: the loadgen lost connections or echoes).
pub const EXIT_THRESHOLD_FAILED: u8 = 4;

/// What to check and write after a run.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    pub thresholds: Vec<expr::Threshold>,
    pub exports: Vec<export::Export>,
}

/// What [`check`] found: the text to print, whether a threshold failed, and the export
/// files' contents (the caller writes them, the way it writes files).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub text: String,
    pub failed: bool,
    pub files: Vec<(PathBuf, String)>,
}

impl Gate {
    /// From `--threshold` and `--export` values; the error says how to fix them.
    pub fn from_args(thresholds: &[String], exports: &[String]) -> Result<Gate, String> {
        Ok(Gate {
            thresholds: thresholds
                .iter()
                .map(|t| expr::parse(t))
                .collect::<Result<_, _>>()?,
            exports: export::parse_pairs(exports)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.thresholds.is_empty() && self.exports.is_empty()
    }

    /// The first threshold that needs `--baseline`.
    pub fn needs_baseline(&self) -> Option<&expr::Threshold> {
        self.thresholds.iter().find(|t| t.baseline)
    }
}

/// Reads the cases of `new` (and of the baseline `old`), checks the thresholds, renders
/// the exports. With a baseline the text starts with its table.
pub fn check(gate: &Gate, new: &[PathBuf], old: Option<&[PathBuf]>) -> anyhow::Result<Outcome> {
    let cases = cases::collect(new)?;
    let old_cases = old.map(cases::collect).transpose()?;
    let mut out = Outcome::default();
    if let Some(o) = &old_cases {
        out.text = baseline::markdown(o, &cases).map_err(anyhow::Error::msg)?;
        out.text.push('\n');
    }
    for t in &gate.thresholds {
        let v = eval::evaluate(t, &cases, old_cases.as_deref());
        out.failed |= !v.pass;
        for l in v.lines {
            out.text.push_str(&l);
            out.text.push('\n');
        }
    }
    out.files = gate
        .exports
        .iter()
        .map(|e| (e.path.clone(), export::render(e.format, &cases)))
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A committed result folder against itself: every ratio 1.00, nothing separates,
    /// and a baseline threshold at 1.0x passes.
    #[test]
    fn a_committed_folder_against_itself() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../results/2026-12-03-1140-vm-latency");
        let gate = Gate::from_args(
            &[
                "cpu_us_per_msg <= 1x baseline".into(),
                "p99_us <= 1.0x baseline @latency-c1000".into(),
                "uring/epoll cpu_us_per_msg < 2 @latency-c1000-r25".into(),
            ],
            &[],
        )
        .expect("gate");
        let out = check(
            &gate,
            std::slice::from_ref(&dir),
            Some(std::slice::from_ref(&dir)),
        )
        .expect("check");
        assert!(!out.failed, "{}", out.text);
        let rows: Vec<Vec<&str>> = out
            .text
            .lines()
            .filter(|l| l.starts_with("| latency "))
            .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
            .collect();
        assert!(rows.len() >= 16 * 10, "{}", out.text);
        for r in &rows {
            // NEW/OLD and separate; a metric that is 0 in OLD (errors) has no ratio.
            let ok = (r[4].starts_with("1.00") && r[5] == "no") || (r[4] == "–" && r[5] == "–");
            assert!(ok, "{r:?}");
        }
        assert!(
            out.text
                .contains("✓ cpu_us_per_msg <= 1x baseline: all 16 cases pass"),
            "{}",
            out.text
        );
        assert!(!out.text.contains("only in"), "{}", out.text);
    }
}
