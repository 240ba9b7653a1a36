//! Statistics over interleaved rounds: median and range of one metric, pairing of two
//! labels' rounds, ratios of paired rounds, and whether a ratio is a clear difference.
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
}
