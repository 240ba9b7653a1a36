//! The end of a run: the git revision it ran from and the headline file (its table
//! of every scenario, the failed runs), printed too.

use crate::session::{Options, Planned};
use crate::{log, report, warn};
use anyhow::Context as _;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// `git rev-parse HEAD` (or "unknown") and whether tracked files have changes.
pub(crate) fn git_revision(root: &Path) -> (String, bool) {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let rev = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    (rev, dirty)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn write_headline(
    o: &Options,
    p: &Planned,
    rev: &str,
    dirty: bool,
    tuning: &str,
    sdirs: &[PathBuf],
    failures: &[String],
    t_start: Instant,
) -> anyhow::Result<()> {
    let path = p.out.join(format!("{}-{}-headline.md", p.stamp, p.host));
    let mut md = format!(
        "# c1m headline: {} on {} ({})\n\n",
        p.stamp,
        p.host,
        if o.quick { "quick" } else { "full" }
    );
    let short: String = rev.chars().take(12).collect();
    // Writing to a String cannot fail; results are ignored on purpose.
    let _ = write!(md, "git {short}{}; server CPU {}, loadgen CPU {}; {tuning}. srv CPU µs/msg = server user+sys CPU / messages it echoed (warm-up and set-up included). Details: compare.md in each folder.\n\n",
        if dirty { " (dirty)" } else { "" }, p.split.server, p.split.loadgen);
    md.push_str(&report::headline(sdirs));
    if !failures.is_empty() {
        md.push_str("\n**Failed runs:**\n\n");
        for f in failures {
            let _ = writeln!(md, "- {f}");
        }
    }
    std::fs::write(&path, &md).with_context(|| format!("cannot write {}", path.display()))?;
    println!("\n{md}");
    let names: String = sdirs
        .iter()
        .map(|d| {
            format!(
                "{} ",
                d.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            )
        })
        .collect();
    log(format!(
        "done in {} s: {} and {names}",
        t_start.elapsed().as_secs(),
        path.display()
    ));
    if !failures.is_empty() {
        warn(format!("{} run(s) failed:", failures.len()));
        for f in failures {
            eprintln!("  {f}");
        }
    }
    Ok(())
}
