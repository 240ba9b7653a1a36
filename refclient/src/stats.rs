//! Percentiles from the sorted raw samples (no histogram, so no shared bucketing with
//! the loadgen's HdrHistogram).

/// Nearest-rank percentile of sorted samples: the smallest sample with at least `p`% of
/// the samples at or below it. `None` when there are no samples.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // Less a hair so that 99.9% of 1000 is rank 999 despite floating point
    // (0.999 * 1000 = 999.0000000000001).
    let rank = ((p / 100.0) * n as f64 - 1e-6).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// The figures reported for one set of nanosecond samples, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    pub count: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

/// Sorts `samples` (nanoseconds) and takes the figures; all zero when empty.
pub fn figures(samples: &mut [u64]) -> Figures {
    samples.sort_unstable();
    let us = |p: f64| percentile(samples, p).map_or(0.0, |v| v as f64 / 1000.0);
    let count = samples.len();
    let mean_us = if count == 0 {
        0.0
    } else {
        samples.iter().map(|&v| v as f64).sum::<f64>() / count as f64 / 1000.0
    };
    Figures {
        count,
        p50_us: us(50.0),
        p90_us: us(90.0),
        p99_us: us(99.0),
        p999_us: us(99.9),
        max_us: us(100.0),
        mean_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), Some(500));
        assert_eq!(percentile(&v, 99.0), Some(990));
        assert_eq!(percentile(&v, 99.9), Some(999));
        assert_eq!(percentile(&v, 100.0), Some(1000));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.9), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        // Two samples: the median is the lower one (rank ceil(1.0) = 1).
        assert_eq!(percentile(&[10, 20], 50.0), Some(10));
        assert_eq!(percentile(&[10, 20], 50.1), Some(20));
    }

    #[test]
    fn figures_in_microseconds_from_unsorted_samples() {
        let mut v: Vec<u64> = (1..=100).rev().map(|i| i * 1000).collect();
        let f = figures(&mut v);
        assert_eq!(f.count, 100);
        assert_eq!((f.p50_us, f.p90_us, f.p99_us), (50.0, 90.0, 99.0));
        assert_eq!((f.p999_us, f.max_us), (100.0, 100.0));
        assert!((f.mean_us - 50.5).abs() < 1e-9);
        assert_eq!(figures(&mut []), Figures::default());
    }
}
