//! A run folder on disk, and the in-memory record of one run.
//!
//! | file | what | read back |
//! | --- | --- | --- |
//! | `summary.json` | [`Summary`], pretty JSON | yes |
//! | `latency.hgrm` | measured-phase percentile distribution, µs ([`super::hgrm`]) | no (derived) |
//! | `connect.hgrm` | connect-latency percentile distribution, µs | no (derived) |
//! | `latency.hlog` | interval log, ns: one untagged histogram per interval (warm-up included) and one `Tag=measured` line with the measured-phase histogram | yes |
//! | `connect.hlog` | interval log, ns: one `Tag=connect` line with every successful connect's latency | yes (an empty histogram when absent) |
//!
//! Histograms are stored exactly (V2 + DEFLATE), so a folder read back gives the same
//! histograms it was written from; the `.hgrm` files are views for people and plotters.

use super::hgrm::format_hgrm;
pub use super::hlog::{add_into, new_histogram, record_ns, SIGFIG};
use super::hlog::{read_interval_log, write_interval_log, LogLine};
use super::summary::{LatencySummary, Summary};
use anyhow::{anyhow, bail, Context as _};
use hdrhistogram::Histogram;
use std::fs;
use std::path::Path;

pub const SUMMARY_FILE: &str = "summary.json";
pub const LATENCY_HGRM_FILE: &str = "latency.hgrm";
pub const CONNECT_HGRM_FILE: &str = "connect.hgrm";
pub const LATENCY_HLOG_FILE: &str = "latency.hlog";
pub const CONNECT_HLOG_FILE: &str = "connect.hlog";
/// Tag of the measured-phase histogram in `latency.hlog`.
pub const MEASURED_TAG: &str = "measured";
/// Tag of the connect histogram in `connect.hlog`.
pub const CONNECT_TAG: &str = "connect";

/// One interval of the interval log.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Seconds since [`RunRecord::start_epoch_s`].
    pub start_s: f64,
    pub length_s: f64,
    pub hist: Histogram<u64>,
}

/// Everything a run folder holds.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub summary: Summary,
    /// Measured phase only (warm-up excluded), ns.
    pub latency: Histogram<u64>,
    /// Every successful connect, ns.
    pub connect_latency: Histogram<u64>,
    /// One per second, warm-up included, ns.
    pub intervals: Vec<Interval>,
    /// Unix time of the run start.
    pub start_epoch_s: f64,
}

/// Latency percentiles of a nanosecond histogram, in microseconds. All zero when empty.
pub fn latency_summary(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    LatencySummary {
        count: h.len(),
        min_us: us(h.min()),
        mean_us: h.mean() / 1000.0,
        p50_us: us(h.value_at_quantile(0.5)),
        p90_us: us(h.value_at_quantile(0.9)),
        p99_us: us(h.value_at_quantile(0.99)),
        p999_us: us(h.value_at_quantile(0.999)),
        p9999_us: us(h.value_at_quantile(0.9999)),
        max_us: us(h.max()),
    }
}

/// Where the measured phase sits in the interval log: it ends where the last interval
/// ends and lasts `measured_s` (clamped to the log).
fn measured_span(rec: &RunRecord) -> (f64, f64) {
    let end = rec
        .intervals
        .iter()
        .map(|i| i.start_s + i.length_s)
        .fold(0.0_f64, f64::max);
    let length = rec.summary.measured_s.max(0.0);
    if end > 0.0 {
        let start = (end - length).max(0.0);
        (start, end - start)
    } else {
        (rec.summary.workload.warmup_s.max(0.0), length)
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a run folder (creating it and its parents): summary.json, latency.hgrm,
/// connect.hgrm, latency.hlog, connect.hlog. Existing files of those names are replaced.
pub fn write_run_dir(dir: &Path, rec: &RunRecord) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create the run folder {}: check the path and its permissions",
            dir.display()
        )
    })?;

    let mut json = serde_json::to_string_pretty(&rec.summary).context("encoding summary.json")?;
    json.push('\n');
    write_file(&dir.join(SUMMARY_FILE), json.as_bytes())?;
    write_file(
        &dir.join(LATENCY_HGRM_FILE),
        format_hgrm(&rec.latency, 1000.0).as_bytes(),
    )?;
    write_file(
        &dir.join(CONNECT_HGRM_FILE),
        format_hgrm(&rec.connect_latency, 1000.0).as_bytes(),
    )?;

    let label = if rec.summary.label.is_empty() {
        String::new()
    } else {
        format!(" ({})", rec.summary.label)
    };
    let (measured_start, measured_len) = measured_span(rec);
    let mut lines: Vec<LogLine<'_>> = rec
        .intervals
        .iter()
        .map(|i| LogLine {
            tag: None,
            start_s: i.start_s,
            length_s: i.length_s,
            hist: &i.hist,
        })
        .collect();
    lines.push(LogLine {
        tag: Some(MEASURED_TAG),
        start_s: measured_start,
        length_s: measured_len,
        hist: &rec.latency,
    });
    let latency_log = write_interval_log(
        &[
            &format!("c1m-loadgen echo latency{label}: values are nanoseconds; Interval_Max is in microseconds (MaxValueDivisor 1000)"),
            "Untagged lines: one histogram per interval, warm-up included; timestamps are seconds since StartTime (= BaseTime), the run start.",
            "Tag=measured: the whole measured phase (warm-up excluded), the histogram summary.json and latency.hgrm report (HistogramLogProcessor -tag measured).",
        ],
        rec.start_epoch_s,
        &lines,
    )
    .with_context(|| format!("writing {}", dir.join(LATENCY_HLOG_FILE).display()))?;
    write_file(&dir.join(LATENCY_HLOG_FILE), &latency_log)?;

    let connect_log = write_interval_log(
        &[&format!(
            "c1m-loadgen connect latency{label}: values are nanoseconds; Interval_Max is in microseconds (MaxValueDivisor 1000)"
        ),
        "Tag=connect: every successful connect of the run, from the start of the ramp-up."],
        rec.start_epoch_s,
        &[LogLine {
            tag: Some(CONNECT_TAG),
            start_s: 0.0,
            length_s: rec.summary.ramp_s.max(0.0),
            hist: &rec.connect_latency,
        }],
    )
    .with_context(|| format!("writing {}", dir.join(CONNECT_HLOG_FILE).display()))?;
    write_file(&dir.join(CONNECT_HLOG_FILE), &connect_log)?;
    Ok(())
}

/// The typed summary.json of a run folder (what [`read_run_dir`] starts with): for
/// folders without an interval log (wrk's), and readers that need no histogram.
pub fn read_summary(dir: &Path) -> anyhow::Result<Summary> {
    let shown = dir.display();
    if !dir.exists() {
        bail!("{shown} does not exist: give a run folder written by `c1m-loadgen run --out DIR`");
    }
    if !dir.is_dir() {
        bail!("{shown} is not a folder: give a run folder written by `c1m-loadgen run --out DIR`");
    }
    let summary_path = dir.join(SUMMARY_FILE);
    if !summary_path.is_file() {
        bail!(
            "{shown} is not a run folder: no {SUMMARY_FILE} (run folders are written by `c1m-loadgen run --out DIR`)"
        );
    }
    let json = fs::read(&summary_path)
        .with_context(|| format!("cannot read {}", summary_path.display()))?;
    serde_json::from_slice(&json).with_context(|| {
        format!(
            "{} is not a valid summary.json; rewrite it with `c1m-loadgen run` or fix the JSON",
            summary_path.display()
        )
    })
}

/// Reads a run folder written by [`write_run_dir`] (summary.json, latency.hlog and, when
/// present, connect.hlog).
///
/// latency.hlog without a `Tag=measured` line (written by other tools) gives the measured
/// histogram as the sum of the untagged intervals that start at or after the warm-up.
pub fn read_run_dir(dir: &Path) -> anyhow::Result<RunRecord> {
    let shown = dir.display();
    let summary = read_summary(dir)?;
    let hlog_path = dir.join(LATENCY_HLOG_FILE);
    if !hlog_path.is_file() {
        bail!(
            "{shown} is not a complete run folder: {SUMMARY_FILE} is there but {LATENCY_HLOG_FILE} is missing (was the run interrupted?)"
        );
    }
    let bytes =
        fs::read(&hlog_path).with_context(|| format!("cannot read {}", hlog_path.display()))?;
    let log = read_interval_log(&bytes).with_context(|| {
        format!(
            "{} is not a valid HdrHistogram interval log",
            hlog_path.display()
        )
    })?;

    let mut measured: Option<Histogram<u64>> = None;
    let mut intervals = Vec::new();
    for li in log.intervals {
        match li.tag.as_deref() {
            None => intervals.push(Interval {
                start_s: li.start_s,
                length_s: li.length_s,
                hist: li.hist,
            }),
            Some(MEASURED_TAG) => {
                let m = measured.get_or_insert_with(new_histogram);
                m.add(&li.hist)
                    .map_err(|e| anyhow!("adding measured histograms: {e:?}"))?;
            }
            Some(_) => {} // other tools' tags: not ours to interpret
        }
    }
    let latency = match measured {
        Some(m) => m,
        None => {
            let mut m = new_histogram();
            let warmup = summary.workload.warmup_s;
            for i in intervals.iter().filter(|i| i.start_s + 1e-6 >= warmup) {
                m.add(&i.hist)
                    .map_err(|e| anyhow!("adding interval histograms: {e:?}"))?;
            }
            m
        }
    };

    let connect_path = dir.join(CONNECT_HLOG_FILE);
    let mut connect_latency = new_histogram();
    if connect_path.is_file() {
        let bytes = fs::read(&connect_path)
            .with_context(|| format!("cannot read {}", connect_path.display()))?;
        let log = read_interval_log(&bytes).with_context(|| {
            format!(
                "{} is not a valid HdrHistogram interval log",
                connect_path.display()
            )
        })?;
        for li in log.intervals {
            connect_latency
                .add(&li.hist)
                .map_err(|e| anyhow!("adding connect histograms: {e:?}"))?;
        }
    }

    Ok(RunRecord {
        summary,
        latency,
        connect_latency,
        intervals,
        start_epoch_s: log.start_epoch_s,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    /// A folder under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(name: &str) -> TempDir {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let dir = std::env::temp_dir().join(format!(
                "c1m-report-{name}-{}-{n}-{nanos}",
                std::process::id()
            ));
            fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    pub(crate) fn lcg(x: &mut u64) -> u64 {
        *x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *x >> 33
    }

    /// A synthetic run: `seconds` one-second intervals of `per_s` samples around `base_ns`,
    /// the first `warmup` of them warm-up.
    pub(crate) fn synthetic_record(
        label: &str,
        seed: u64,
        base_ns: u64,
        seconds: usize,
        warmup: usize,
        per_s: usize,
    ) -> RunRecord {
        let mut seed = seed;
        let mut latency = new_histogram();
        let mut connect = new_histogram();
        let mut intervals = Vec::new();
        for s in 0..seconds {
            let mut h = new_histogram();
            for _ in 0..per_s {
                let v = base_ns
                    + lcg(&mut seed) % base_ns
                    + (lcg(&mut seed) % 1000) * (lcg(&mut seed) % 1000);
                h.record(v).expect("record");
            }
            if s >= warmup {
                latency.add(&h).expect("add");
            }
            intervals.push(Interval {
                start_s: s as f64,
                length_s: 1.0,
                hist: h,
            });
        }
        for _ in 0..100 {
            connect
                .record(20_000 + lcg(&mut seed) % 100_000)
                .expect("record");
        }
        let mut summary = Summary {
            label: label.to_owned(),
            start_time: "2024-06-10T08:00:00Z".to_owned(),
            connections_established: 100,
            connections_failed: 2,
            connect_errors: BTreeMap::from([("ECONNREFUSED".to_owned(), 2)]),
            connection_errors: BTreeMap::from([("ECONNRESET".to_owned(), 1)]),
            ramp_s: 0.25,
            messages_sent: latency.len() + 3,
            messages_received: latency.len(),
            verify_errors: 0,
            measured_s: (seconds - warmup) as f64,
            ..Summary::default()
        };
        summary.workload.kind = "closed".to_owned();
        summary.workload.connections = 102;
        summary.workload.size = 64;
        summary.workload.warmup_s = warmup as f64;
        summary.workload.duration_s = (seconds - warmup) as f64;
        summary.workload.procs = 1;
        summary.throughput_msgs_per_s = summary.messages_received as f64 / summary.measured_s;
        summary.latency = latency_summary(&latency);
        summary.connect_latency = latency_summary(&connect);
        RunRecord {
            summary,
            latency,
            connect_latency: connect,
            intervals,
            start_epoch_s: 1_718_006_400.5,
        }
    }

    #[test]
    fn run_dir_round_trips() {
        let tmp = TempDir::new("roundtrip");
        let dir = tmp.0.join("nested").join("run");
        let rec = synthetic_record("uring", 1, 50_000, 5, 2, 2000);
        write_run_dir(&dir, &rec).expect("write");
        for f in [
            SUMMARY_FILE,
            LATENCY_HGRM_FILE,
            CONNECT_HGRM_FILE,
            LATENCY_HLOG_FILE,
            CONNECT_HLOG_FILE,
        ] {
            assert!(dir.join(f).is_file(), "{f} missing");
        }
        let back = read_run_dir(&dir).expect("read");
        assert_eq!(back.latency, rec.latency);
        assert_eq!(back.connect_latency, rec.connect_latency);
        assert_eq!(back.intervals.len(), rec.intervals.len());
        for (a, b) in back.intervals.iter().zip(&rec.intervals) {
            assert_eq!(a.hist, b.hist);
            assert!((a.start_s - b.start_s).abs() < 1e-6);
            assert!((a.length_s - b.length_s).abs() < 1e-6);
        }
        assert!((back.start_epoch_s - rec.start_epoch_s).abs() < 1e-6);
        assert_eq!(back.summary.label, "uring");
        assert_eq!(back.summary.latency, rec.summary.latency);
        assert_eq!(back.summary.connect_errors, rec.summary.connect_errors);

        let hgrm = fs::read_to_string(dir.join(LATENCY_HGRM_FILE)).expect("hgrm");
        assert!(hgrm.contains(&format!("Total count    = {:12}]", rec.latency.len())));
        let hlog = fs::read_to_string(dir.join(LATENCY_HLOG_FILE)).expect("hlog");
        assert!(hlog.contains("values are nanoseconds"));
        assert!(hlog.contains("\nTag=measured,2.000,3.000,"), "{hlog}");
    }

    #[test]
    fn measured_falls_back_to_intervals_after_warmup() {
        let tmp = TempDir::new("fallback");
        let rec = synthetic_record("x", 3, 10_000, 4, 1, 100);
        write_run_dir(&tmp.0, &rec).expect("write");
        // Drop the Tag=measured line, as a log from another tool would lack it.
        let path = tmp.0.join(LATENCY_HLOG_FILE);
        let text = fs::read_to_string(&path).expect("read");
        let kept: String = text
            .lines()
            .filter(|l| !l.starts_with("Tag="))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&path, kept).expect("write");
        let back = read_run_dir(&tmp.0).expect("read");
        assert_eq!(back.latency, rec.latency);
    }

    #[test]
    fn clear_errors_for_what_is_not_a_run_folder() {
        let tmp = TempDir::new("errors");
        let missing = tmp.0.join("nope");
        let e = format!("{:#}", read_run_dir(&missing).expect_err("missing"));
        assert!(e.contains("does not exist"), "{e}");

        let e = format!("{:#}", read_run_dir(&tmp.0).expect_err("empty"));
        assert!(e.contains("is not a run folder: no summary.json"), "{e}");

        fs::write(tmp.0.join(SUMMARY_FILE), "{ not json").expect("write");
        let e = format!("{:#}", read_run_dir(&tmp.0).expect_err("bad json"));
        assert!(e.contains("is not a valid summary.json"), "{e}");

        fs::write(tmp.0.join(SUMMARY_FILE), "{}").expect("write");
        let e = format!("{:#}", read_run_dir(&tmp.0).expect_err("no hlog"));
        assert!(e.contains("latency.hlog is missing"), "{e}");

        fs::write(tmp.0.join(LATENCY_HLOG_FILE), "garbage\n").expect("write");
        let e = format!("{:#}", read_run_dir(&tmp.0).expect_err("bad hlog"));
        assert!(e.contains("not a valid HdrHistogram interval log"), "{e}");

        // A minimal folder: {} summary (every field defaulted) and an empty log.
        fs::write(tmp.0.join(LATENCY_HLOG_FILE), "#empty\n").expect("write");
        let rec = read_run_dir(&tmp.0).expect("minimal folder reads");
        assert!(rec.latency.is_empty());
    }

    #[test]
    fn latency_summary_is_in_microseconds() {
        let mut h = new_histogram();
        for us in 1..=100_u64 {
            h.record(us * 1000).expect("record");
        }
        let s = latency_summary(&h);
        assert_eq!(s.count, 100);
        assert_eq!(s.min_us, 1.0);
        assert!((s.p50_us - 50.0).abs() < 0.1, "{}", s.p50_us);
        assert!((s.p99_us - 99.0).abs() < 0.1, "{}", s.p99_us);
        assert!((s.max_us - 100.0).abs() < 0.1, "{}", s.max_us);
        assert!((s.mean_us - 50.5).abs() < 0.1, "{}", s.mean_us);
        assert_eq!(latency_summary(&new_histogram()), LatencySummary::default());
    }
}
