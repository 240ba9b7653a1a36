//! `.hgrm`: the classic percentile distribution that HdrHistogram's Java
//! `AbstractHistogram.outputPercentileDistribution`, wrk2 and the HdrHistogram plotter share.
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        1.000 0.000000000000          1           1.00
//!      ...
//!       10.007 1.000000000000         10
//! #[Mean    =        5.502, StdDeviation   =        2.874]
//! #[Max     =       10.007, Total count    =           10]
//! #[Buckets =            4, SubBuckets     =         2048]
//! ```
//!
//! Rows are produced by [`percentile_rows`], a line-for-line port of Java's
//! `PercentileIterator` (percent arithmetic, the one extra step to 100%). The crate's
//! `iter_quantiles` walks the same ticks but in quantile arithmetic, which lands a tick one
//! bucket later than Java whenever `k/n` and the tick differ by one ulp (for example 3/10 vs
//! 0.1+0.1+0.1), so its rows would not match files written by the Java tools.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Ticks per half distance to 100%, as wrk2 and the Java examples print.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// One row of a percentile distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentileRow {
    /// Highest value equivalent to the bucket the tick landed in (histogram units).
    pub value: u64,
    /// The percentile tick, 0..=100 (not the bucket's own percentile: Java prints the tick).
    pub percentile: f64,
    /// Values at or below `value`.
    pub total_count: u64,
}

/// The rows Java's `PercentileIterator` yields for `h`, the last one at exactly 100%.
/// Empty for an empty histogram.
pub fn percentile_rows(h: &Histogram<u64>, ticks_per_half_distance: u32) -> Vec<PercentileRow> {
    let total = h.len();
    let mut rows = Vec::new();
    if total == 0 {
        return rows;
    }
    let ticks_per_half = f64::from(ticks_per_half_distance.max(1));
    // Non-empty buckets in value order: Java's iterator skips empty ones
    // (`reachedIterationLevel` is false when `countAtThisValue == 0`).
    let buckets: Vec<(u64, u64)> = h
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();

    let mut level = 0.0_f64; // percentileLevelToIterateTo
    let mut reached_last = false; // reachedLastRecordedValue
    let mut index = 0_usize;
    let mut cumulative = 0_u64; // totalCountToCurrentIndex
    let mut fresh = true; // freshSubBucket
    loop {
        // hasNext(): the base iterator has more while the running count is below the total;
        // then one extra step to 100%.
        if cumulative >= total {
            if reached_last {
                break;
            }
            level = 100.0;
            reached_last = true;
        }
        // next()
        loop {
            let Some(&(value, count)) = buckets.get(index) else {
                return rows;
            };
            if fresh {
                cumulative += count;
                fresh = false;
            }
            let current = (100.0 * cumulative as f64) / total as f64;
            if current >= level {
                rows.push(PercentileRow {
                    value,
                    percentile: level,
                    total_count: cumulative,
                });
                level = next_level(level, ticks_per_half);
                break;
            }
            index += 1;
            fresh = true;
        }
    }
    rows
}

/// Java's `PercentileIterator.incrementIterationLevel`: fixed-size ticks within each half
/// distance to 100%, halving at 50%, 75%, 87.5%, ...
fn next_level(level: f64, ticks_per_half: f64) -> f64 {
    if level >= 100.0 {
        return 100.0;
    }
    // (long) (Math.log(100.0 / (100.0 - level)) / Math.log(2)), kept in that exact form.
    let halvings = ((100.0 / (100.0 - level)).ln() / 2.0_f64.ln()) as i64;
    let reporting_ticks = ticks_per_half * 2.0_f64.powi((halvings.clamp(0, 1000) + 1) as i32);
    let next = level + 100.0 / reporting_ticks;
    // Only reachable with more than 2^53 samples: the tick no longer moves; finish at 100%
    // instead of repeating it forever.
    if next == level {
        100.0
    } else {
        next
    }
}

/// Sub-buckets per bucket for `sigfig` significant digits (HdrHistogram's `subBucketCount`).
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest_single_unit = 2 * 10_u64.pow(u32::from(sigfig));
    let magnitude = (largest_single_unit as f64).log2().ceil() as u32;
    1_u64 << magnitude.max(1)
}

/// The `.hgrm` text for `h`, values divided by `scale` (1000.0 turns nanoseconds into
/// microseconds), exactly as Java's `outputPercentileDistribution(out, 5, scale)` prints it.
pub fn format_hgrm(h: &Histogram<u64>, scale: f64) -> String {
    let digits = usize::from(h.sigfig());
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for row in percentile_rows(h, TICKS_PER_HALF_DISTANCE) {
        let value = row.value as f64 / scale;
        let fraction = row.percentile / 100.0;
        if row.percentile != 100.0 {
            let _ = writeln!(
                out,
                "{value:12.digits$} {fraction:2.12} {:10} {:14.2}",
                row.total_count,
                1.0 / (1.0 - fraction)
            );
        } else {
            // Java leaves the 1/(1-Percentile) column off the 100% row (it is infinite), so
            // the plotter, which reads four-column lines only, skips it.
            let _ = writeln!(
                out,
                "{value:12.digits$} {fraction:2.12} {:10}",
                row.total_count
            );
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.digits$}, StdDeviation   = {:12.digits$}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let max = if h.is_empty() { 0 } else { h.max() };
    let _ = writeln!(
        out,
        "#[Max     = {:12.digits$}, Total count    = {:12}]",
        max as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_bucket_count(h.sigfig())
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::hlog::new_histogram;

    /// Values 1, 2, ..., 10 µs recorded in nanoseconds. Checked by hand against Java's
    /// algorithm: 3000 ns and up fall in buckets 2, 4 and 8 ns wide, so their highest
    /// equivalent values are 3001, 5003, 9007, ...; the 30% tick lands on 3 µs (Java's
    /// percent arithmetic: 100*3/10 == 30.0 exactly), the ticks halve at 50%, 75%, 87.5%
    /// (10, 5, 2.5, 1.25 points), the last bucket is printed at its first tick (91.25%)
    /// and once more at 100%. Mean and standard deviation use median-equivalent values
    /// (1000, 2000, 3001, 4001, 5002, ...): 5501.8 and 2873.53 ns.
    const GOLDEN_1_TO_10_US: &str = "       Value     Percentile TotalCount 1/(1-Percentile)

       1.000 0.000000000000          1           1.00
       1.000 0.100000000000          1           1.11
       2.000 0.200000000000          2           1.25
       3.001 0.300000000000          3           1.43
       4.001 0.400000000000          4           1.67
       5.003 0.500000000000          5           2.00
       6.003 0.550000000000          6           2.22
       6.003 0.600000000000          6           2.50
       7.003 0.650000000000          7           2.86
       7.003 0.700000000000          7           3.33
       8.003 0.750000000000          8           4.00
       8.003 0.775000000000          8           4.44
       8.003 0.800000000000          8           5.00
       9.007 0.825000000000          9           5.71
       9.007 0.850000000000          9           6.67
       9.007 0.875000000000          9           8.00
       9.007 0.887500000000          9           8.89
       9.007 0.900000000000          9          10.00
      10.007 0.912500000000         10          11.43
      10.007 1.000000000000         10
#[Mean    =        5.502, StdDeviation   =        2.874]
#[Max     =       10.007, Total count    =           10]
#[Buckets =            4, SubBuckets     =         2048]
";

    #[test]
    fn hgrm_matches_the_java_output_for_1_to_10_us() {
        let mut h = new_histogram();
        for us in 1..=10_u64 {
            h.record(us * 1000)
                .expect("auto-resizing histogram records any value");
        }
        let text = format_hgrm(&h, 1000.0);
        assert_eq!(text, GOLDEN_1_TO_10_US, "got:\n{text}");
    }

    #[test]
    fn hgrm_rows_are_what_the_plotter_reads() {
        let mut h = new_histogram();
        let mut x = 12345_u64;
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            h.record(1_000 + (x >> 40) % 1_000_000).expect("record");
        }
        let text = format_hgrm(&h, 1000.0);
        let mut four_columns = 0;
        let mut last_percentile = -1.0;
        for line in text.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() == 4 && !line.starts_with('#') {
                if let (Ok(_), Ok(p)) = (cols[0].parse::<f64>(), cols[1].parse::<f64>()) {
                    assert!(p >= last_percentile, "percentiles must not go down: {line}");
                    assert!(p < 1.0);
                    last_percentile = p;
                    four_columns += 1;
                }
            }
        }
        assert!(four_columns > 50, "{four_columns} data rows");
        assert!(text.contains(" 1.000000000000      10000\n"));
    }

    #[test]
    fn empty_histogram_prints_header_and_footer_only() {
        let h = new_histogram();
        let text = format_hgrm(&h, 1000.0);
        assert!(percentile_rows(&h, 5).is_empty());
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.contains("Total count    =            0]"));
    }

    #[test]
    fn sub_buckets_follow_significant_digits() {
        assert_eq!(sub_bucket_count(1), 32);
        assert_eq!(sub_bucket_count(2), 256);
        assert_eq!(sub_bucket_count(3), 2048);
    }
}
