//! `c1m-loadgen compare --baseline OLD NEW`: the same cases of two result folders of
//! one experiment (two revisions, two machines) side by side, per metric the ratio
//! NEW/OLD with its spread, and whether the rounds separate.
//!
//! Rounds of two runs made at different times are not paired: the ratio is that of the
//! medians, its range the extreme ratios any NEW round and any OLD round give
//! (min NEW / max OLD to max NEW / min OLD). The rounds separate when that range lies
//! on one side of 1.0: every NEW round above every OLD round, or below.

use super::cases::Case;
use super::metric::{Fold, Metric, METRICS};
use crate::report::fmt::padded_table;
use crate::report::stats::Spread;
use std::fmt::Write as _;

/// One side's value of a case: the median (or the sum, for a summed metric) and the
/// range over its rounds.
pub fn side(c: &Case, m: &Metric) -> Option<Spread> {
    let v: Vec<f64> = c.values(m).into_iter().flatten().collect();
    let s = Spread::of(&v)?;
    Some(match m.fold {
        Fold::Median => s,
        Fold::Sum => {
            let sum: f64 = v.iter().sum();
            Spread {
                median: sum,
                min: sum,
                max: sum,
                n: s.n,
            }
        }
    })
}

/// NEW/OLD: median over median, range from the extreme pairs of rounds; None when an
/// OLD value is not positive.
pub fn ratio(new: &Spread, old: &Spread) -> Option<Spread> {
    if old.min <= 0.0 || old.median <= 0.0 {
        return None;
    }
    Some(Spread {
        median: new.median / old.median,
        min: new.min / old.max,
        max: new.max / old.min,
        n: new.n.min(old.n),
    })
}

/// Whether the rounds separate, in words.
pub fn separation(r: &Spread) -> &'static str {
    if r.min > 1.0 {
        "yes: NEW higher"
    } else if r.max < 1.0 {
        "yes: NEW lower"
    } else {
        "no"
    }
}

/// The OLD case of `new` (same scenario, same run name).
pub fn partner<'a>(new: &Case, old: &'a [Case]) -> Option<&'a Case> {
    old.iter()
        .find(|o| o.scenario == new.scenario && o.name == new.name)
}

/// The markdown: one row per paired case and metric both sides have, then the cases
/// only one side has. An error when no case pairs (not the same experiment).
pub fn markdown(old: &[Case], new: &[Case]) -> Result<String, String> {
    let mut rows = Vec::new();
    for n in new {
        let Some(o) = partner(n, old) else { continue };
        for m in METRICS.iter().filter(|m| n.has(m) && o.has(m)) {
            let (Some(sn), Some(so)) = (side(n, m), side(o, m)) else {
                continue;
            };
            let cell = |s: &Spread| m.with_unit(s.format(m.show));
            let (r, sep) = match ratio(&sn, &so) {
                Some(r) => (r.format(|v| format!("{v:.2}")), separation(&r)),
                None => ("–".into(), "–"),
            };
            rows.push(vec![
                n.title(),
                m.name.to_owned(),
                cell(&so),
                cell(&sn),
                r,
                sep.to_owned(),
            ]);
        }
    }
    if rows.is_empty() {
        let names = |cs: &[Case]| cs.iter().map(Case::title).collect::<Vec<_>>().join(", ");
        return Err(format!(
            "--baseline: OLD and NEW share no case, so they are not runs of the same experiment (same scenarios, variants and points). OLD has: {}; NEW has: {}",
            names(old),
            names(new)
        ));
    }
    let mut md = String::from(
        "NEW against the baseline OLD: each value the median (min-max) over a case's rounds (errors: summed); \
         NEW/OLD is the ratio of the medians, its range min NEW / max OLD to max NEW / min OLD; \
         the rounds separate when every NEW round lies above every OLD round, or below.\n\n",
    );
    md.push_str(&padded_table(
        &["run", "metric", "OLD", "NEW", "NEW/OLD", "separate"],
        &rows,
    ));
    for (cs, others, which) in [(new, old, "NEW"), (old, new, "OLD")] {
        let alone: Vec<String> = cs
            .iter()
            .filter(|c| partner(c, others).is_none())
            .map(Case::title)
            .collect();
        if !alone.is_empty() {
            // Writing to a String cannot fail.
            let _ = writeln!(md, "- only in {which}: {}", alone.join(", "));
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::gate::cases::{collect, tests::run_folder};
    use crate::report::rundir::tests::TempDir;
    use std::path::Path;

    fn experiment(root: &Path, cpu: [f64; 3]) {
        for (i, c) in cpu.into_iter().enumerate() {
            let r = i as u64 + 1;
            run_folder(
                root,
                "s-h-pingpong",
                r,
                "uring-c100",
                "closed",
                (c, 100.0, 1000.0),
            );
            run_folder(
                root,
                "s-h-pingpong",
                r,
                "epoll-c100",
                "closed",
                (5.0, 100.0, 1000.0),
            );
        }
    }

    #[test]
    fn ratios_spreads_and_separation() {
        let t = TempDir::new("baseline");
        let (old, new) = (t.0.join("old"), t.0.join("new"));
        experiment(&old, [4.0, 4.2, 4.4]);
        experiment(&new, [4.6, 4.8, 5.0]);
        let (o, n) = (collect(&[old]).expect("old"), collect(&[new]).expect("new"));
        let md = markdown(&o, &n).expect("pairs");
        let row = md
            .lines()
            .find(|l| l.contains("pingpong uring-c100") && l.contains("cpu_us_per_msg"))
            .expect(&md);
        let cells = |l: &str| -> Vec<String> {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        };
        // 4.8/4.2 = 1.14; 4.6/4.4 = 1.05 to 5.0/4.0 = 1.25: every NEW round above.
        assert_eq!(
            cells(row)[2..],
            [
                "4.20 (4.00-4.40) µs",
                "4.80 (4.60-5.00) µs",
                "1.14 (1.05-1.25)",
                "yes: NEW higher"
            ]
        );
        let same = md
            .lines()
            .find(|l| l.contains("epoll-c100") && l.contains("cpu_us_per_msg"))
            .expect(&md);
        assert_eq!(cells(same)[4..], ["1.00", "no"]);
        let s = Spread::of(&[1.0, 2.0]).expect("s");
        assert_eq!(ratio(&s, &Spread::of(&[0.0, 1.0]).expect("z")), None);
        assert_eq!(
            separation(&Spread::of(&[0.8, 0.9]).expect("r")),
            "yes: NEW lower"
        );
    }

    #[test]
    fn folders_of_different_experiments_do_not_pair() {
        let t = TempDir::new("baseline-other");
        run_folder(
            &t.0.join("a"),
            "s-h-hold",
            1,
            "uring",
            "heartbeat",
            (1.0, 1.0, 1.0),
        );
        run_folder(
            &t.0.join("b"),
            "s-h-churn",
            1,
            "uring",
            "churn",
            (1.0, 1.0, 1.0),
        );
        let a = collect(&[t.0.join("a")]).expect("a");
        let b = collect(&[t.0.join("b")]).expect("b");
        let e = markdown(&a, &b).expect_err("no pair");
        assert!(
            e.contains("share no case") && e.contains("OLD has: hold uring"),
            "{e}"
        );
    }
}
