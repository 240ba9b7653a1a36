//! `c1m-loadgen compare`: the table of run folders as before and, with `--threshold`,
//! `--baseline` or `--export`, the gate over them (run, scenario or `--out` folders).

use super::{check, Gate, EXIT_THRESHOLD_FAILED};
use crate::cli::CompareArgs;
use crate::report::compare::{compare, write_creating_parent};
use anyhow::bail;
use std::path::Path;
use std::process::ExitCode;

fn is_run_folder(d: &Path) -> bool {
    d.join("summary.json").is_file()
}

/// Runs `c1m-loadgen compare` and says its exit status: 0, or
/// [`EXIT_THRESHOLD_FAILED`] when a threshold failed.
pub fn compare_cli(a: &CompareArgs) -> anyhow::Result<ExitCode> {
    let gate = Gate::from_args(&a.thresholds, &a.exports).map_err(anyhow::Error::msg)?;
    if gate.is_empty() && a.baseline.is_none() {
        print!("{}", compare(&a.dirs, a.out.as_deref(), a.plot.as_deref())?);
        return Ok(ExitCode::SUCCESS);
    }
    if let (Some(t), None) = (gate.needs_baseline(), &a.baseline) {
        bail!(
            "--threshold '{}' compares with a baseline: give it with --baseline OLD (c1m-loadgen compare --baseline OLD NEW...)",
            t.text
        );
    }
    let runs_only = a.baseline.is_none() && a.dirs.iter().all(|d| is_run_folder(d));
    let mut text = String::new();
    if runs_only {
        // The table as without a gate; --out gets it with the threshold lines below.
        text = compare(&a.dirs, None, a.plot.as_deref())?;
        text.push('\n');
    } else if a.plot.is_some() {
        bail!("--plot draws run folders: give run folders (not scenario or --out folders) and no --baseline, or drop --plot");
    }
    let old = a.baseline.as_ref().map(std::slice::from_ref);
    let outcome = check(&gate, &a.dirs, old)?;
    text.push_str(&outcome.text);
    print!("{text}");
    if let Some(out) = &a.out {
        write_creating_parent(out, text.as_bytes())?;
        eprintln!("wrote {}", out.display());
    }
    for (path, body) in &outcome.files {
        write_creating_parent(path, body.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(if outcome.failed {
        ExitCode::from(EXIT_THRESHOLD_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
