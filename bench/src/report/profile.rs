//! `--perf`: compare.md's table of where the server's CPU went, per case (a variant
//! at a point): the median over rounds of each share in the cases' profile.json
//! ([`crate::observe::breakdown`]).

use super::folder::CASE_FILE;
use super::spread::backend_rank;
use crate::observe::breakdown::Category;
use c1m_loadgen::report::stats::Spread;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

/// The table for the run folders `dirs` (one point), or "" when none has a profile.
pub fn breakdown_table(dirs: &[PathBuf]) -> String {
    // (case, variant, profiles) in the order of the backends, then of appearance.
    let mut groups: Vec<(String, String, Vec<Value>)> = Vec::new();
    for d in dirs {
        let Some(p) = read_json(&d.join("profile.json")) else {
            continue;
        };
        // Rounds of a case share its folder name.
        let name = super::scenario_md::base_name(d);
        let variant = read_json(&d.join(CASE_FILE))
            .and_then(|c| c["variant"].as_str().map(str::to_owned))
            .unwrap_or_default();
        match groups.iter_mut().find(|g| g.0 == name) {
            Some(g) => g.2.push(p),
            None => groups.push((name, variant, vec![p])),
        }
    }
    if groups.is_empty() {
        return String::new();
    }
    groups.sort_by_key(|g| backend_rank(&g.1));
    let mut md = String::from("Where the server's CPU went (`--perf`: perf samples of the server process(es) over the measured window, % of the samples, median over rounds; each case folder has flamegraph.svg and perf.folded):\n\n");
    md.push_str("| case | samples |");
    for c in Category::ALL {
        let _ = write!(md, " {} |", c.title());
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---|".repeat(Category::ALL.len()));
    md.push('\n');
    for (name, _, profiles) in &groups {
        let med = |f: &dyn Fn(&Value) -> Option<f64>| {
            let v: Vec<f64> = profiles.iter().filter_map(f).collect();
            Spread::of(&v).map(|s| s.median)
        };
        let samples = med(&|p| p["samples"].as_f64()).map_or("-".into(), |s| format!("{s:.0}"));
        let _ = write!(md, "| {name} | {samples} |");
        for c in Category::ALL {
            let share = med(&|p| p["shares_pct"][c.key()].as_f64());
            let _ = write!(md, " {} |", share.map_or("-".into(), |s| format!("{s:.1}")));
        }
        md.push('\n');
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_per_variant_in_backend_order() {
        let t = c1m_machine::tempdir::TempDir::new();
        let mut dirs = Vec::new();
        for (name, variant, user, samples) in [
            ("round-1/epoll-c100", "epoll", 20.0, 100),
            ("round-1/uring-c100", "uring", 10.0, 90),
            ("round-2/uring-c100", "uring", 30.0, 110),
            ("round-3/uring-c100", "uring", 12.0, 100),
        ] {
            let d = t.0.join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(CASE_FILE), format!("{{\"variant\": \"{variant}\"}}")).unwrap();
            let p = serde_json::json!({"samples": samples, "shares_pct": {"user": user, "tcp_ip": 100.0 - user}});
            std::fs::write(d.join("profile.json"), p.to_string()).unwrap();
            dirs.push(d);
        }
        let none = t.0.join("none");
        std::fs::create_dir_all(&none).unwrap();
        dirs.push(none.clone());
        let md = breakdown_table(&dirs);
        assert!(md.contains("| case | samples | user | syscall | tcp/ip | io_uring | epoll | sched | softirq | other kernel |"), "{md}");
        let rows: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with("| uring-c100") || l.starts_with("| epoll-c100"))
            .collect();
        assert_eq!(
            rows,
            [
                "| uring-c100 | 100 | 12.0 | - | 88.0 | - | - | - | - | - |",
                "| epoll-c100 | 100 | 20.0 | - | 80.0 | - | - | - | - | - |"
            ]
        );
        assert_eq!(breakdown_table(&[none]), "");
    }
}
