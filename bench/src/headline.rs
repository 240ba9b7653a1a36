//! The end of a run: the git revision it ran from and the headline file (its table
//! of every scenario, the failed runs), printed too.

use crate::plan::Scenario;
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

/// How the headline's server CPU figures were measured, for the scenarios that ran.
fn cost_note(scenarios: &[Scenario]) -> String {
    let echo =
        "srv CPU µs/msg = server user+sys CPU / messages it echoed or answered (warm-up and set-up included).";
    let http = "http (HTTP/1.1 against the c1m backends and nginx, with c1m-loadgen and wrk as clients): srv CPU µs/req = the server's user+sys CPU from /proc over each client's measured window / requests answered in it, the same for every server and client.";
    match (
        scenarios.iter().any(|s| s.is_echo()),
        scenarios.contains(&Scenario::Http),
    ) {
        (true, true) => format!("{echo} {http}"),
        (false, true) => http.to_owned(),
        _ => echo.to_owned(),
    }
}

/// Which arrival process the equal-load (latency) points used, when they ran.
fn arrivals_note(scenarios: &[Scenario], arrivals: &str) -> String {
    if !scenarios.contains(&Scenario::Latency) {
        return String::new();
    }
    format!(
        " Equal-load points: {}.",
        crate::options::arrivals_text(arrivals)
    )
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
    let _ = write!(
        md,
        "git {short}{}; server CPU {}, loadgen CPU {}; {tuning}. {}{} Details: compare.md in each folder.\n\n",
        if dirty { " (dirty)" } else { "" },
        p.split.server,
        p.split.loadgen,
        cost_note(&o.scenarios),
        arrivals_note(&o.scenarios, &o.arrivals),
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headline_says_how_cost_was_measured() {
        let echo = cost_note(&[Scenario::Pingpong]);
        assert!(echo.starts_with("srv CPU µs/msg") && !echo.contains("http"));
        let both = cost_note(&[Scenario::Pingpong, Scenario::Http]);
        assert!(both.contains("srv CPU µs/msg") && both.contains("http (HTTP/1.1"));
        let poisson = arrivals_note(&[Scenario::Latency], "poisson");
        assert!(poisson.contains("Poisson arrivals"), "{poisson}");
        assert!(arrivals_note(&[Scenario::Latency], "uniform").contains("evenly spaced"));
        assert!(arrivals_note(&[Scenario::Pingpong], "poisson").is_empty());
        let http = cost_note(&[Scenario::Http]);
        assert!(http.starts_with("http (HTTP/1.1 against the c1m backends and nginx"));
    }
}
