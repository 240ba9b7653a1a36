//! The parts of a scenario folder's compare.md that are functions of its run folders:
//! `c1m-loadgen compare`'s table and plot of a point, the failed runs, which runs are
//! there, and the note on server processes and caps (a function of the run's limits).

use super::folder::backend_and_point;
use super::spread::backend_rank;
use crate::plan::Limits;
use crate::variants::Variant;
use c1m_loadgen::report::compare::{markdown, plot_svg};
use c1m_loadgen::report::model::{load_runs, Run};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

pub fn base_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The runs of `dirs` in canonical backend order, so ratios are against the same backend
/// (the first asked for) whatever order the rounds ran in.
pub fn load_sorted(dirs: &[PathBuf]) -> anyhow::Result<Vec<Run>> {
    let mut dirs = dirs.to_vec();
    dirs.sort_by_key(|d| backend_rank(backend_and_point(&base_name(d)).0));
    load_runs(&dirs)
}

/// `c1m-loadgen compare`'s table of `runs` with paths relative to the scenario folder
/// `sdir` (what a scenario's compare.md shows for them).
pub fn compare_table(sdir: &Path, runs: &[Run]) -> String {
    markdown(runs).replace(&format!("{}/", sdir.display()), "")
}

/// `c1m-loadgen compare`'s table of `dirs` with paths relative to the scenario folder,
/// and its plot written as `svg` in the scenario folder. Returns the markdown and, when
/// something failed, what (a failed run of the suite).
pub fn compare(sdir: &Path, svg: &str, dirs: &[PathBuf]) -> (String, Option<String>) {
    if dirs.is_empty() {
        return ("No run produced results.\n\n".into(), None);
    }
    let runs = match load_sorted(dirs) {
        Ok(r) => r,
        Err(e) => {
            let e = format!("{e:#}");
            let failure = format!("compare in {}: {e}", base_name(sdir));
            return (
                format!("c1m-loadgen compare failed: {e}\n\n"),
                Some(failure),
            );
        }
    };
    let failure = crate::safe_fs::write(&sdir.join(svg), plot_svg(&runs))
        .err()
        .map(|e| format!("compare in {}: cannot write {svg}: {e}", base_name(sdir)));
    let md = format!(
        "{}\n![latency percentiles]({svg})\n\n",
        compare_table(sdir, &runs)
    );
    (md, failure)
}

/// The names in a scenario's runs.txt, in run order.
fn run_names(sdir: &Path) -> Vec<String> {
    fs::read_to_string(sdir.join("runs.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Run folders (in run order) that have a summary.json, whose name ends in `suffix`.
pub fn ok_runs(sdir: &Path, suffix: Option<&str>) -> Vec<PathBuf> {
    run_names(sdir)
        .into_iter()
        .filter(|n| suffix.is_none_or(|s| n.ends_with(s)))
        .map(|n| sdir.join(n))
        .filter(|d| d.join("summary.json").is_file())
        .collect()
}

/// "- **name failed**: reason" for every FAILED run, then a blank line.
pub fn failed_note(sdir: &Path) -> String {
    let mut out = String::new();
    for n in run_names(sdir) {
        if let Ok(why) = fs::read_to_string(sdir.join(&n).join("FAILED")) {
            let _ = writeln!(out, "- **{n} failed**: {}", why.trim_end_matches('\n'));
        }
    }
    out.push('\n');
    out
}

/// Which of `backends` ran as several processes (listening from `listen` up), or were
/// capped, at `n` connections under `limits`.
pub fn procs_note(limits: &Limits, variants: &[Variant], listen: &str, n: u64) -> String {
    let l = limits;
    let mut note = String::new();
    for v in variants {
        let b = v.backend;
        let c = l.conns_for(b, n);
        let p = l.procs_for(b, c);
        if p > 1 {
            let _ = writeln!(note, "- {}: {p} server processes, one port each ({listen} and up), {} connections each; RLIMIT_NOFILE is {} here and this backend needs one fd per connection. server.json is the sum of server-procs/*.json.",
                v.name, c.div_ceil(p), l.nofile_soft);
        }
        if c != n {
            let why = l.cap_reason(b, n).unwrap_or_default();
            let _ = writeln!(
                note,
                "- {}: CAPPED at {c} of {n} connections by {why}",
                v.name
            );
        }
    }
    if !note.is_empty() {
        note.push('\n');
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;
    use c1m_machine::tempdir::TempDir;

    #[test]
    fn run_lists_and_failure_notes() {
        let t = TempDir::new();
        let s = &t.0;
        fs::write(s.join("runs.txt"), "uring-c100\nepoll-c100\nuring-c1000\n").unwrap();
        for n in ["uring-c100", "uring-c1000"] {
            fs::create_dir_all(s.join(n)).unwrap();
            fs::write(s.join(n).join("summary.json"), "{}").unwrap();
        }
        fs::create_dir_all(s.join("epoll-c100")).unwrap();
        fs::write(s.join("epoll-c100/FAILED"), "server exit status 2\n").unwrap();
        assert_eq!(
            ok_runs(s, None),
            vec![s.join("uring-c100"), s.join("uring-c1000")]
        );
        assert_eq!(ok_runs(s, Some("-c100")), vec![s.join("uring-c100")]);
        assert_eq!(
            failed_note(s),
            "- **epoll-c100 failed**: server exit status 2\n\n"
        );
        let (md, failure) = compare(s, "plot.svg", &[]);
        assert_eq!(
            (md.as_str(), failure),
            ("No run produced results.\n\n", None)
        );
    }
}
