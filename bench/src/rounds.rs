//! Interleaved rounds: every backend runs once at every point of a scenario per round, in
//! a freshly shuffled order, so that drift of the machine (other work, thermal, page
//! cache) lands on every backend alike; results are read as medians over rounds and
//! ratios of paired rounds (DESIGN.md, statistics).

use c1m_loadgen::report::stats::Spread;
use c1m_platform::rng::SplitMix64;
use std::path::PathBuf;

/// The run order of every round: `cases` shuffled anew for each round, from `seed` (the
/// same seed gives the same orders).
pub fn orders<T: Clone>(cases: &[T], rounds: u32, seed: u64) -> Vec<Vec<T>> {
    let mut rng = SplitMix64::new(seed);
    (0..rounds)
        .map(|_| {
            let mut round = cases.to_vec();
            rng.shuffle(&mut round);
            round
        })
        .collect()
}

/// A run's folder name inside its scenario folder: `round-R/NAME` when there are several
/// rounds (every round keeps its folder; the label stays NAME), else NAME.
pub fn run_name(round: u32, rounds: u32, name: &str) -> String {
    if rounds > 1 {
        format!("round-{round}/{name}")
    } else {
        name.to_owned()
    }
}

/// The label of a run folder name: its last component (`round-2/uring-c100` ->
/// `uring-c100`).
pub fn label_of(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// A seed for the round orders when none is given: from the clock.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// The open-loop rate that puts every backend under the same load: `fraction` of the
/// slowest backend's closed-loop maximum, where each backend's maximum is the median of
/// its rounds' msgs/s. `runs` are (label, msgs/s) of the closed-loop runs at the same
/// connection count. At least 1; None when no run has a positive throughput.
pub fn equal_load_rate(fraction: f64, runs: &[(String, f64)]) -> Option<u64> {
    let mut labels: Vec<&str> = runs.iter().map(|(l, _)| l.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    let slowest = labels
        .iter()
        .filter_map(|l| {
            let v: Vec<f64> = runs
                .iter()
                .filter(|(x, r)| x == l && *r > 0.0)
                .map(|(_, r)| *r)
                .collect();
            Spread::of(&v).map(|s| s.median)
        })
        .min_by(f64::total_cmp)?;
    Some(((slowest * fraction).floor() as u64).max(1))
}

/// (label, msgs/s) of run folders, the label from the folder name.
pub fn throughputs(dirs: &[PathBuf]) -> Vec<(String, f64)> {
    dirs.iter()
        .filter_map(|d| {
            let run = crate::report::RunFolder::read(d).ok()?;
            Some((run.name.clone(), run.get(|s| s.throughput_msgs_per_s)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_runs_every_case_in_its_own_order() {
        let cases: Vec<u32> = (0..8).collect();
        let o = orders(&cases, 3, 42);
        assert_eq!(o.len(), 3);
        for round in &o {
            let mut sorted = round.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, cases);
        }
        assert!(
            o[0] != o[1] || o[1] != o[2],
            "rounds should not all share one order"
        );
        assert_eq!(o, orders(&cases, 3, 42), "a seed repeats its orders");
    }

    #[test]
    fn names_and_labels() {
        assert_eq!(run_name(2, 3, "uring-c100"), "round-2/uring-c100");
        assert_eq!(run_name(1, 1, "uring-c100"), "uring-c100");
        assert_eq!(label_of("round-2/uring-c100"), "uring-c100");
        assert_eq!(label_of("epoll"), "epoll");
    }

    #[test]
    fn equal_load_is_a_fraction_of_the_slowest_median() {
        let runs = |v: &[(&str, f64)]| -> Vec<(String, f64)> {
            v.iter().map(|(l, r)| (l.to_string(), *r)).collect()
        };
        // epoll's median is 100k (its one slow round does not decide), uring's 150k.
        let r = runs(&[
            ("uring", 150_000.0),
            ("epoll", 100_000.0),
            ("uring", 160_000.0),
            ("epoll", 60_000.0),
            ("uring", 140_000.0),
            ("epoll", 110_000.0),
        ]);
        assert_eq!(equal_load_rate(0.25, &r), Some(25_000));
        assert_eq!(equal_load_rate(0.5, &r), Some(50_000));
        assert_eq!(equal_load_rate(0.5, &runs(&[("uring", 0.0)])), None);
        assert_eq!(equal_load_rate(0.5, &[]), None);
    }
}
