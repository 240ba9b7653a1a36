//! The statistics of every report (`c1m-loadgen compare` and the orchestrator's
//! compare.md and headline): median and range of one metric ([`Spread`]), the runs of
//! one label over its rounds ([`Group`]), pairing of two labels' rounds, ratios of paired
//! rounds as a table cell ([`ratio_cell`]), and the warning when a label's rounds
//! disagree ([`disagreement_warning`]).
//!
//! The method (DESIGN.md, statistics): every backend runs once per round, rounds are
//! interleaved, and two backends are compared by the median of their per-round paired
//! ratios. When the paired ratios fall on both sides of 1.0 the rounds do not agree on
//! which side is better: "no clear difference".

/// Median, minimum and maximum of a set of values, and how many there were.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    /// Over the finite values of `values`; `None` when there is none. The median of an
    /// even count is the mean of the two middle values.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }

    /// max / min: how far the rounds disagree (1.0 when they agree exactly). Infinite
    /// when the minimum is zero and the maximum is not.
    pub fn max_over_min(&self) -> f64 {
        if self.max == self.min {
            1.0
        } else if self.min > 0.0 {
            self.max / self.min
        } else {
            f64::INFINITY
        }
    }

    /// The values lie on both sides of 1.0 (for ratios: some rounds say "less", others
    /// "more"), so the median ratio is no clear difference.
    pub fn straddles_one(&self) -> bool {
        self.min < 1.0 && self.max > 1.0
    }

    /// "4.70 (4.51-4.93)" with `fmt` for each number; just "4.70" for one value or
    /// identical values.
    pub fn format(&self, fmt: impl Fn(f64) -> String) -> String {
        let median = fmt(self.median);
        let (lo, hi) = (fmt(self.min), fmt(self.max));
        if self.n < 2 || lo == hi {
            median
        } else {
            format!("{median} ({lo}-{hi})")
        }
    }
}

/// Which round of one label goes with which round of another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    /// (index into the first label's rounds, index into the second's).
    pub pairs: Vec<(usize, usize)>,
    /// Paired by round number (true) or by position (false).
    pub by_round: bool,
}

/// Pairs the rounds of two labels: by their round numbers when every round of both has
/// one and no number repeats within a label (rounds missing on one side stay unpaired),
/// otherwise by position (the i-th of one with the i-th of the other, as far as the
/// shorter goes).
pub fn pair_rounds(a: &[Option<u64>], b: &[Option<u64>]) -> Pairing {
    let numbered = |r: &[Option<u64>]| -> Option<Vec<u64>> {
        let nums: Vec<u64> = r.iter().copied().collect::<Option<Vec<u64>>>()?;
        let mut sorted = nums.clone();
        sorted.sort_unstable();
        sorted.dedup();
        (sorted.len() == nums.len()).then_some(nums)
    };
    if let (Some(na), Some(nb)) = (numbered(a), numbered(b)) {
        let mut pairs: Vec<(usize, usize)> = na
            .iter()
            .enumerate()
            .filter_map(|(i, ra)| nb.iter().position(|rb| rb == ra).map(|j| (i, j)))
            .collect();
        pairs.sort_by_key(|&(i, _)| na[i]);
        return Pairing {
            pairs,
            by_round: true,
        };
    }
    Pairing {
        pairs: (0..a.len().min(b.len())).map(|i| (i, i)).collect(),
        by_round: false,
    }
}

/// `this[j] / base[i]` for every pair (i, j) where both values are finite and the base
/// is not zero.
pub fn paired_ratios(pairing: &Pairing, base: &[Option<f64>], this: &[Option<f64>]) -> Vec<f64> {
    pairing
        .pairs
        .iter()
        .filter_map(|&(i, j)| {
            let b = (*base.get(i)?)?;
            let t = (*this.get(j)?)?;
            let r = t / b;
            (b != 0.0 && r.is_finite()).then_some(r)
        })
        .collect()
}

/// A run that may know which round it was.
pub trait Rounded {
    fn round(&self) -> Option<u64>;
}

/// The runs of one label (its rounds), in the order given.
pub struct Group<'a, T> {
    pub name: &'a str,
    pub runs: Vec<&'a T>,
}

impl<'a, T: Rounded> Group<'a, T> {
    /// `metric` of every run, in run order.
    pub fn values(&self, metric: impl Fn(&T) -> Option<f64>) -> Vec<Option<f64>> {
        self.runs.iter().map(|r| metric(r)).collect()
    }

    /// Median and range of `metric` over the runs that have it.
    pub fn spread(&self, metric: impl Fn(&T) -> Option<f64>) -> Option<Spread> {
        let v: Vec<f64> = self.values(metric).into_iter().flatten().collect();
        Spread::of(&v)
    }

    pub fn rounds(&self) -> Vec<Option<u64>> {
        self.runs.iter().map(|r| r.round()).collect()
    }

    /// `metric` of this group over that of `base`, per paired round.
    pub fn ratios_to(&self, base: &Group<'_, T>, metric: impl Fn(&T) -> Option<f64>) -> Vec<f64> {
        let pairing = pair_rounds(&base.rounds(), &self.rounds());
        paired_ratios(&pairing, &base.values(&metric), &self.values(&metric))
    }
}

/// `runs` grouped by `name`, names in the order of their first run.
pub fn group_by<'a, T>(runs: &'a [T], name: impl Fn(&'a T) -> &'a str) -> Vec<Group<'a, T>> {
    let mut groups: Vec<Group<'a, T>> = Vec::new();
    for r in runs {
        let n = name(r);
        match groups.iter_mut().find(|g| g.name == n) {
            Some(g) => g.runs.push(r),
            None => groups.push(Group {
                name: n,
                runs: vec![r],
            }),
        }
    }
    groups
}

/// "0.95 (0.88-1.04) ~": median (min-max) of paired ratios, `~` when they straddle 1;
/// None without a ratio (each table says so its own way).
pub fn ratio_cell(ratios: &[f64]) -> Option<String> {
    let s = Spread::of(ratios)?;
    let text = s.format(|v| format!("{v:.2}"));
    Some(if s.straddles_one() {
        format!("{text} ~")
    } else {
        text
    })
}

/// Above this max/min of server CPU µs/msg over a label's rounds, a warning says the
/// rounds disagree (MACHINE.md: the same server varies ±20-35% between rounds here;
/// differences under ~10% are noise).
pub const DISAGREE_MAX_OVER_MIN: f64 = 1.15;

/// Hyperfine-style warning when `name`'s rounds disagree on server CPU per message
/// (`cpu`: its spread over the rounds).
pub fn disagreement_warning(name: &str, cpu: &Spread) -> Option<String> {
    let ratio = cpu.max_over_min();
    (cpu.n > 1 && ratio > DISAGREE_MAX_OVER_MIN).then(|| {
        format!(
            "Warning: {name}: rounds disagree: server CPU µs/msg max/min = {ratio:.2} \
             ({:.2}-{:.2} over {} rounds), more than {DISAGREE_MAX_OVER_MIN}. \
             Run more rounds or on a quieter machine before reading ratios near 1.",
            cpu.min, cpu.max, cpu.n
        )
    })
}

/// What the rounds tables' notation means (the orchestrator prints it under them).
pub const ROUNDS_NOTE: &str = "Each number is the median over rounds with (min-max); CPU ratio is the server CPU µs/msg of the backend over that of the first backend at the same point, the median of per-round paired ratios; \"~\" marks a ratio whose rounds fall on both sides of 1.0 (no clear difference).";

#[cfg(test)]
mod tests {
    use super::*;

    fn f2(v: f64) -> String {
        format!("{v:.2}")
    }

    #[test]
    fn median_and_range() {
        let s = Spread::of(&[4.93, 4.51, 4.70]).expect("values");
        assert_eq!((s.median, s.min, s.max, s.n), (4.70, 4.51, 4.93, 3));
        assert_eq!(s.format(f2), "4.70 (4.51-4.93)");
        let even = Spread::of(&[1.0, 4.0, 2.0, 3.0]).expect("values");
        assert_eq!(even.median, 2.5);
        // Non-finite values are left out; nothing left is None.
        let s = Spread::of(&[f64::NAN, 2.0, f64::INFINITY]).expect("one value");
        assert_eq!((s.median, s.n), (2.0, 1));
        assert_eq!(s.format(f2), "2.00");
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
        // Identical after formatting: no range.
        assert_eq!(
            Spread::of(&[1.001, 1.002]).expect("values").format(f2),
            "1.00"
        );
    }

    #[test]
    fn disagreement_and_straddle() {
        let s = Spread::of(&[4.0, 4.8, 4.4]).expect("values");
        assert!((s.max_over_min() - 1.2).abs() < 1e-12);
        assert_eq!(Spread::of(&[3.0]).expect("one").max_over_min(), 1.0);
        assert_eq!(
            Spread::of(&[0.0, 1.0]).expect("two").max_over_min(),
            f64::INFINITY
        );
        assert!(Spread::of(&[0.88, 0.95, 1.04])
            .expect("ratios")
            .straddles_one());
        assert!(!Spread::of(&[0.7, 0.8, 0.9])
            .expect("ratios")
            .straddles_one());
        assert!(!Spread::of(&[1.1, 1.2]).expect("ratios").straddles_one());
        // Touching 1.0 is not both sides.
        assert!(!Spread::of(&[1.0, 1.2]).expect("ratios").straddles_one());
    }

    #[test]
    fn pairs_by_round_number_when_every_round_has_one() {
        let p = pair_rounds(
            &[Some(3), Some(1), Some(2)],
            &[Some(1), Some(2), Some(3), Some(4)],
        );
        assert!(p.by_round);
        // Sorted by round number: round 1, 2, 3.
        assert_eq!(p.pairs, vec![(1, 0), (2, 1), (0, 2)]);
        // Round 2 missing on one side: unpaired.
        let p = pair_rounds(&[Some(1), Some(2)], &[Some(1), Some(3)]);
        assert_eq!(p.pairs, vec![(0, 0)]);
    }

    #[test]
    fn pairs_by_position_otherwise() {
        let p = pair_rounds(&[Some(1), None, Some(3)], &[Some(1), Some(2)]);
        assert!(!p.by_round);
        assert_eq!(p.pairs, vec![(0, 0), (1, 1)]);
        // A repeated round number cannot pair by number.
        let p = pair_rounds(&[Some(1), Some(1)], &[Some(1), Some(2)]);
        assert!(!p.by_round);
        assert_eq!(p.pairs, vec![(0, 0), (1, 1)]);
        let p = pair_rounds(&[None; 3], &[None; 3]);
        assert_eq!(p.pairs, vec![(0, 0), (1, 1), (2, 2)]);
    }

    #[test]
    fn ratios_of_paired_rounds() {
        let p = pair_rounds(&[Some(1), Some(2), Some(3)], &[Some(2), Some(1), Some(3)]);
        // base rounds 1, 2, 3 = 4, 5, 6; this (rounds 2, 1, 3) = 4.5, 4.4, 6.6.
        let base = [Some(4.0), Some(5.0), Some(6.0)];
        let this = [Some(4.5), Some(4.4), Some(6.6)];
        let r = paired_ratios(&p, &base, &this);
        assert_eq!(r.len(), 3);
        assert!((r[0] - 1.1).abs() < 1e-12);
        assert!((r[1] - 0.9).abs() < 1e-12);
        assert!((r[2] - 1.1).abs() < 1e-12);
        let s = Spread::of(&r).expect("ratios");
        assert!((s.median - 1.1).abs() < 1e-12);
        assert!(s.straddles_one());
        // Missing or zero values leave a pair out.
        let r = paired_ratios(&p, &[Some(0.0), None, Some(2.0)], &this);
        assert_eq!(r.len(), 1);
        assert!((r[0] - 3.3).abs() < 1e-12);
    }

    struct R(Option<u64>, f64, &'static str);
    impl Rounded for R {
        fn round(&self) -> Option<u64> {
            self.0
        }
    }

    #[test]
    fn groups_spreads_and_ratio_cells() {
        let runs = [
            R(Some(1), 4.0, "uring"),
            R(Some(1), 4.4, "epoll"),
            R(Some(2), 5.0, "uring"),
            R(Some(2), 4.8, "epoll"),
            R(Some(3), 4.5, "uring"),
            R(Some(3), 4.6, "epoll"),
        ];
        let g = group_by(&runs, |r| r.2);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].name, g[1].name), ("uring", "epoll"));
        assert_eq!(g[1].rounds(), vec![Some(1), Some(2), Some(3)]);
        let s = g[0].spread(|r| Some(r.1)).expect("values");
        assert_eq!((s.median, s.min, s.max), (4.5, 4.0, 5.0));
        // 4.4/4.0, 4.8/5.0, 4.6/4.5 = 1.10, 0.96, 1.02: both sides of 1.
        let r = g[1].ratios_to(&g[0], |r| Some(r.1));
        assert_eq!(ratio_cell(&r).as_deref(), Some("1.02 (0.96-1.10) ~"));
        assert_eq!(ratio_cell(&[0.9, 0.8]).as_deref(), Some("0.85 (0.80-0.90)"));
        assert_eq!(ratio_cell(&[1.2]).as_deref(), Some("1.20"));
        assert_eq!(ratio_cell(&[]), None);
        let w = disagreement_warning("uring", &s).expect("1.25 > 1.15");
        assert!(
            w.contains("uring: rounds disagree") && w.contains("max/min = 1.25"),
            "{w}"
        );
        let calm = Spread::of(&[4.4, 4.6]).expect("values");
        assert_eq!(disagreement_warning("epoll", &calm), None);
        assert_eq!(
            disagreement_warning("one", &Spread::of(&[1.0]).expect("v")),
            None
        );
    }
}
