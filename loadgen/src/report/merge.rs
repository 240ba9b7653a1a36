//! `c1m-loadgen merge`: one run folder from the folders of several processes or hosts that
//! loaded the same server at the same time.
//!
//! Each part describes only its own share of the load (its connections, its rate, its
//! messages). The merge adds histograms and counters, lines intervals up by absolute time,
//! and recomputes throughput and the latency summaries from the merged data.

use super::hlog::new_histogram;
use super::rundir::RunRecord;
use super::rundir::{latency_summary, read_run_dir, write_run_dir, Interval};
use anyhow::{anyhow, bail, Context as _};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn add_into(into: &mut Histogram<u64>, from: &Histogram<u64>, what: &str) -> anyhow::Result<()> {
    into.add(from)
        .map_err(|e| anyhow!("cannot add {what} histograms: {e:?}"))
}

fn add_maps(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_insert(0) += v;
    }
}

fn sum_opt(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values.flatten().reduce(|a, b| a + b)
}

fn max_opt(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values.flatten().reduce(f64::max)
}

/// The loadgen's CPU figures of the parts: CPU, spin and work summed, CPU lists joined;
/// the per-CPU window is the first part's when every part ran on one host (the same
/// machine's CPUs), else left out; the bound mark follows from the result.
pub fn merge_environment(s: &mut super::Summary, parts: &[RunRecord]) {
    let env = |p: &RunRecord| p.summary.environment.clone();
    let e = &mut s.environment;
    e.machine_cpu_busy_pct = max_opt(parts.iter().map(|p| env(p).machine_cpu_busy_pct));
    e.loadgen_cpu_pct = sum_opt(parts.iter().map(|p| env(p).loadgen_cpu_pct));
    e.loadgen_spin_pct = sum_opt(parts.iter().map(|p| env(p).loadgen_spin_pct));
    e.loadgen_work_pct = sum_opt(parts.iter().map(|p| env(p).loadgen_work_pct));
    let cpus: BTreeSet<usize> = parts.iter().flat_map(|p| env(p).loadgen_cpus).collect();
    e.loadgen_cpus = cpus.into_iter().collect();
    let hosts: BTreeSet<String> = parts.iter().map(|p| env(p).hostname).collect();
    e.cpu_window = match parts.first() {
        Some(p) if hosts.len() == 1 => env(p).cpu_window,
        _ => Vec::new(),
    };
    s.values_not_recorded = parts.iter().map(|p| p.summary.values_not_recorded).sum();
    s.bound = s.environment.bound();
}

/// The intervals of `parts` on one grid of the median interval length from the
/// earliest start (`start_epoch_s`): an interval joins the cell its midpoint falls in.
fn merge_intervals(parts: &[RunRecord], start_epoch_s: f64) -> anyhow::Result<Vec<Interval>> {
    let mut lengths: Vec<f64> = parts
        .iter()
        .flat_map(|p| p.intervals.iter().map(|i| i.length_s))
        .filter(|l| l.is_finite() && *l > 0.0)
        .collect();
    lengths.sort_by(f64::total_cmp);
    let grid = lengths.get(lengths.len() / 2).copied().unwrap_or(1.0);
    let mut cells: BTreeMap<i64, Interval> = BTreeMap::new();
    for p in parts {
        let offset = p.start_epoch_s - start_epoch_s;
        for i in &p.intervals {
            let start = offset + i.start_s;
            let end = start + i.length_s.max(0.0);
            let key = ((start + end) / 2.0 / grid).floor() as i64;
            match cells.get_mut(&key) {
                Some(cell) => {
                    let cell_end = (cell.start_s + cell.length_s).max(end);
                    cell.start_s = cell.start_s.min(start);
                    cell.length_s = cell_end - cell.start_s;
                    add_into(&mut cell.hist, &i.hist, "interval")?;
                }
                None => {
                    let mut hist = new_histogram();
                    add_into(&mut hist, &i.hist, "interval")?;
                    cells.insert(
                        key,
                        Interval {
                            start_s: start,
                            length_s: end - start,
                            hist,
                        },
                    );
                }
            }
        }
    }
    Ok(cells.into_values().collect())
}

/// Merges runs that happened at the same time into one.
///
/// - histograms (measured, connect) are added;
/// - counters (connections, messages, errors, per-errno maps, asked connections, rate,
///   procs, churn connects/s, loadgen CPU %) are summed;
/// - durations (measured, warm-up, ramp) and worst cases (send lag, machine CPU busy %)
///   take the maximum;
/// - intervals are aligned by absolute time on a grid of the median interval length
///   (1 s) from the earliest start; an interval joins the grid cell its midpoint falls in;
/// - throughput = merged messages received / merged measured seconds;
/// - everything else (label, command line, environment) comes from the first part, with
///   differing host names joined by commas.
pub fn merge_records(parts: &[RunRecord]) -> anyhow::Result<RunRecord> {
    let Some(first) = parts.first() else {
        bail!("nothing to merge: give at least one run folder");
    };
    let start_epoch_s = parts
        .iter()
        .map(|p| p.start_epoch_s)
        .fold(f64::INFINITY, f64::min);

    let mut latency = new_histogram();
    let mut connect_latency = new_histogram();
    for p in parts {
        add_into(&mut latency, &p.latency, "latency")?;
        add_into(&mut connect_latency, &p.connect_latency, "connect latency")?;
    }

    let intervals = merge_intervals(parts, start_epoch_s)?;

    let mut s = first.summary.clone();
    if let Some(earliest) = parts
        .iter()
        .min_by(|a, b| a.start_epoch_s.total_cmp(&b.start_epoch_s))
    {
        s.start_time = earliest.summary.start_time.clone();
    }
    let hosts: BTreeSet<&str> = parts
        .iter()
        .map(|p| p.summary.environment.hostname.as_str())
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.len() > 1 {
        s.environment.hostname = hosts.into_iter().collect::<Vec<_>>().join(",");
    }
    let sums = |f: fn(&RunRecord) -> u64| parts.iter().map(f).sum::<u64>();
    let maxes = |f: fn(&RunRecord) -> f64| parts.iter().map(f).fold(0.0_f64, f64::max);

    s.connections_established = sums(|p| p.summary.connections_established);
    s.connections_failed = sums(|p| p.summary.connections_failed);
    s.messages_sent = sums(|p| p.summary.messages_sent);
    s.messages_received = sums(|p| p.summary.messages_received);
    s.verify_errors = sums(|p| p.summary.verify_errors);
    s.lost_echoes = sums(|p| p.summary.lost_echoes);
    s.unanswered_echoes = sums(|p| p.summary.unanswered_echoes);
    let before_first_echo = sums(|p| p.summary.connection_losses.before_first_echo);
    s.stopped_early = parts.iter().find_map(|p| p.summary.stopped_early.clone());
    s.connect_errors.clear();
    s.connection_errors.clear();
    for p in parts {
        add_maps(&mut s.connect_errors, &p.summary.connect_errors);
        add_maps(&mut s.connection_errors, &p.summary.connection_errors);
    }
    s.connection_losses =
        super::ConnectionLosses::from_causes(&s.connection_errors, before_first_echo);
    s.workload.connections = sums(|p| p.summary.workload.connections);
    s.workload.procs = sums(|p| p.summary.workload.procs.max(1));
    s.workload.rate_msgs_per_s = sum_opt(parts.iter().map(|p| p.summary.workload.rate_msgs_per_s));
    s.workload.duration_s = maxes(|p| p.summary.workload.duration_s);
    s.workload.warmup_s = maxes(|p| p.summary.workload.warmup_s);
    s.ramp_s = maxes(|p| p.summary.ramp_s);
    s.measured_s = maxes(|p| p.summary.measured_s);
    s.throughput_msgs_per_s = if s.measured_s > 0.0 {
        s.messages_received as f64 / s.measured_s
    } else {
        0.0
    };
    s.coordinated_omission_corrected = parts
        .iter()
        .all(|p| p.summary.coordinated_omission_corrected);
    // Lag percentiles of the parts, not of the whole: the worst part's is the bound.
    s.send_lag_p50_us = max_opt(parts.iter().map(|p| p.summary.send_lag_p50_us));
    s.send_lag_p99_us = max_opt(parts.iter().map(|p| p.summary.send_lag_p99_us));
    s.max_send_lag_us = max_opt(parts.iter().map(|p| p.summary.max_send_lag_us));
    s.connects_per_s = sum_opt(parts.iter().map(|p| p.summary.connects_per_s));
    merge_environment(&mut s, parts);
    s.latency = latency_summary(&latency);
    s.connect_latency = latency_summary(&connect_latency);
    s.warnings = s.derived_warnings();
    for p in parts {
        for w in &p.summary.warnings {
            if !s.warnings.contains(w) {
                s.warnings.push(w.clone());
            }
        }
    }

    Ok(RunRecord {
        summary: s,
        latency,
        connect_latency,
        intervals,
        start_epoch_s: if start_epoch_s.is_finite() {
            start_epoch_s
        } else {
            first.start_epoch_s
        },
    })
}

/// The run folders `dirs` merged into the new run folder `out` (`c1m-loadgen merge
/// DIR... --out DIR`); returns the merged record.
pub fn merge(dirs: &[PathBuf], out: &Path) -> anyhow::Result<RunRecord> {
    let mut parts = Vec::with_capacity(dirs.len());
    for dir in dirs {
        parts.push(read_run_dir(dir).with_context(|| format!("cannot merge {}", dir.display()))?);
    }
    let merged = merge_records(&parts)?;
    write_run_dir(out, &merged)?;
    let l = &merged.summary.latency;
    eprintln!(
        "merged {} run folders into {}: {} connections, {:.0} msgs/s, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        parts.len(),
        out.display(),
        merged.summary.connections_established,
        merged.summary.throughput_msgs_per_s,
        l.p50_us,
        l.p99_us,
        l.max_us
    );
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rundir::read_run_dir;
    use crate::report::rundir::tests::{lcg, synthetic_record, TempDir};

    #[test]
    fn two_halves_merge_to_the_whole() {
        // One random data set, split in two halves by sample, as two processes would see it.
        let mut seed = 42;
        let mut whole = new_histogram();
        let mut halves = [new_histogram(), new_histogram()];
        let mut whole_intervals: Vec<Histogram<u64>> = (0..6).map(|_| new_histogram()).collect();
        let mut half_intervals: [Vec<Histogram<u64>>; 2] = [
            (0..6).map(|_| new_histogram()).collect(),
            (0..6).map(|_| new_histogram()).collect(),
        ];
        for n in 0..60_000_u64 {
            let v = 5_000 + lcg(&mut seed) % 2_000_000;
            let second = (n / 10_000) as usize;
            let half = (lcg(&mut seed) % 2) as usize;
            whole_intervals[second].record(v).expect("record");
            half_intervals[half][second].record(v).expect("record");
            if second >= 1 {
                whole.record(v).expect("record");
                halves[half].record(v).expect("record");
            }
        }
        let mut parts: Vec<RunRecord> = (0..2)
            .map(|k| synthetic_record(&format!("part{k}"), 9 + k as u64, 10_000, 6, 1, 1))
            .collect();
        for (k, p) in parts.iter_mut().enumerate() {
            p.latency = halves[k].clone();
            p.summary.messages_received = halves[k].len();
            p.summary.messages_sent = halves[k].len() + 1;
            p.summary.measured_s = 5.0;
            // The second process started 0.3 s later; its intervals are its own seconds.
            p.start_epoch_s = 1_718_006_400.0 + 0.3 * k as f64;
            p.intervals = half_intervals[k]
                .iter()
                .enumerate()
                .map(|(s, h)| Interval {
                    start_s: s as f64,
                    length_s: 1.0,
                    hist: h.clone(),
                })
                .collect();
        }
        parts[1]
            .summary
            .connect_errors
            .insert("ETIMEDOUT".to_owned(), 4);
        parts[1].summary.connections_failed = 6;
        parts[1].summary.environment.hostname = "b".to_owned();
        parts[0].summary.environment.hostname = "a".to_owned();

        let m = merge_records(&parts).expect("merge");
        assert_eq!(m.latency, whole);
        assert_eq!(m.summary.latency, latency_summary(&whole));
        assert_eq!(m.summary.messages_received, whole.len());
        assert_eq!(m.summary.messages_sent, whole.len() + 2);
        assert_eq!(m.summary.connections_established, 200);
        assert_eq!(m.summary.connections_failed, 8);
        assert_eq!(m.summary.connect_errors.get("ECONNREFUSED"), Some(&4));
        assert_eq!(m.summary.connect_errors.get("ETIMEDOUT"), Some(&4));
        assert_eq!(m.summary.connection_errors.get("ECONNRESET"), Some(&2));
        assert_eq!(m.summary.workload.connections, 204);
        assert_eq!(m.summary.workload.procs, 2);
        assert_eq!(m.summary.environment.hostname, "a,b");
        assert!((m.summary.throughput_msgs_per_s - whole.len() as f64 / 5.0).abs() < 1e-6);
        assert_eq!(m.connect_latency.len(), 200);
        assert_eq!(m.start_epoch_s, 1_718_006_400.0);
        assert_eq!(m.summary.label, "part0");

        // Intervals: same second of both processes in one cell, 6 cells, whole per cell.
        assert_eq!(m.intervals.len(), 6);
        for (s, (got, want)) in m.intervals.iter().zip(&whole_intervals).enumerate() {
            assert_eq!(&got.hist, want, "second {s}");
            assert!((got.start_s - s as f64).abs() < 1e-9);
            assert!((got.length_s - 1.3).abs() < 1e-6);
        }
    }

    #[test]
    fn merge_command_reads_writes_and_explains_errors() {
        let tmp = TempDir::new("merge");
        let a = tmp.0.join("a");
        let b = tmp.0.join("b");
        let out = tmp.0.join("merged");
        let ra = synthetic_record("a", 1, 20_000, 3, 1, 500);
        let rb = synthetic_record("b", 2, 30_000, 3, 1, 700);
        write_run_dir(&a, &ra).expect("write a");
        write_run_dir(&b, &rb).expect("write b");
        merge(&[a.clone(), b.clone()], &out).expect("merge");
        let m = read_run_dir(&out).expect("read merged");
        assert_eq!(m.latency.len(), ra.latency.len() + rb.latency.len());
        assert_eq!(
            m.summary.messages_received,
            ra.summary.messages_received + rb.summary.messages_received
        );
        assert_eq!(m.intervals.len(), 3);

        let not_a_run = tmp.0.join("empty");
        std::fs::create_dir_all(&not_a_run).expect("mkdir");
        let e = merge(&[a, not_a_run], &tmp.0.join("x")).expect_err("must fail");
        let e = format!("{e:#}");
        assert!(e.contains("is not a run folder: no summary.json"), "{e}");
        let e = merge(&[PathBuf::from("/nonexistent/c1m-run")], &tmp.0.join("y"))
            .expect_err("must fail");
        assert!(format!("{e:#}").contains("does not exist"));
        assert!(merge_records(&[]).is_err());
    }
}
