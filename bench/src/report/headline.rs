//! The headline of a whole run: what it says above its tables ([`Head`]), how the
//! server CPU figures were measured, the tables of its scenario folders
//! ([`super::tables::headline`]) and its failed runs. A function of the folders and the
//! head alone.

use crate::plan::Scenario;
use std::fmt::Write as _;
use std::path::PathBuf;

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

/// What a headline says above its tables: facts of the run, not of its folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub stamp: String,
    pub host: String,
    pub quick: bool,
    /// The revision as the headline names it (`Revision::short`: 12 characters, and
    /// where its diff is when the tree was dirty).
    pub revision: String,
    /// `--cpus` of the server and the loadgen.
    pub server_cpus: String,
    pub loadgen_cpus: String,
    /// The topology and the tuning, e.g. "topology loopback (...); tuned: sysctl/c1m.conf".
    pub setting: String,
    pub scenarios: Vec<Scenario>,
    /// The arrival process of the equal-load points, when they ran and it was recorded.
    pub arrivals: Option<String>,
}

/// Which arrival process the equal-load (latency) points used, when they ran.
fn arrivals_note(scenarios: &[Scenario], arrivals: Option<&str>) -> String {
    match arrivals {
        Some(a) if scenarios.contains(&Scenario::Latency) => format!(" Equal-load points: {a}."),
        _ => String::new(),
    }
}

/// The headline file of a run: `head`, the tables of its scenario folders `sdirs`, its
/// failed runs. Reads only those folders.
pub fn headline_md(head: &Head, sdirs: &[PathBuf], failures: &[String]) -> String {
    let mut md = format!(
        "# c1m headline: {} on {} ({})\n\n",
        head.stamp,
        head.host,
        if head.quick { "quick" } else { "full" }
    );
    // Writing to a String cannot fail; results are ignored on purpose.
    let _ = write!(
        md,
        "git {}; server CPU {}, loadgen CPU {}; {}. {}{} Details: compare.md in each folder.\n\n",
        head.revision,
        head.server_cpus,
        head.loadgen_cpus,
        head.setting,
        cost_note(&head.scenarios),
        arrivals_note(&head.scenarios, head.arrivals.as_deref()),
    );
    md.push_str(&super::tables::headline(sdirs));
    if !failures.is_empty() {
        md.push_str("\n**Failed runs:**\n\n");
        for f in failures {
            let _ = writeln!(md, "- {f}");
        }
    }
    md
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
        let poisson = arrivals_note(
            &[Scenario::Latency],
            Some(crate::options::arrivals_text("poisson")),
        );
        assert!(poisson.contains("Poisson arrivals"), "{poisson}");
        assert!(arrivals_note(
            &[Scenario::Latency],
            Some(crate::options::arrivals_text("uniform"))
        )
        .contains("evenly spaced"));
        assert!(arrivals_note(
            &[Scenario::Pingpong],
            Some(crate::options::arrivals_text("poisson"))
        )
        .is_empty());
        let http = cost_note(&[Scenario::Http]);
        assert!(http.starts_with("http (HTTP/1.1 against the c1m backends and nginx"));
    }
}
