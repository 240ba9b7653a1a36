//! `c1m-loadgen compare DIR...`: a side-by-side markdown table of run folders, ratios
//! against the first, and optionally one SVG of all their percentile distributions.
//! Folders with the same label are rounds of it; then [`markdown`] gives the rounds
//! table of [`super::rounds`] instead (one row per label, median and range).
//!
//! Server columns appear when a `server.json` sits in the run folder or in its parent
//! folder ([`super::model`]). [`compare`] takes plain inputs; the CLI is a thin wrapper.

use super::fmt::{bytes as fmt_bytes, number as format_number, padded_table, us as fmt_us};
use super::model::{load_runs, protocol_note, Run, SERVER_COLUMNS_NOTE};
use super::plot::{percentile_plot_svg, Series};
use super::rounds::{group_runs, has_rounds, merged_latency, rounds_markdown};
use anyhow::Context as _;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn fmt_ratio(this: f64, first: f64) -> String {
    if first > 0.0 && this.is_finite() && first.is_finite() {
        format!("{:.2}", this / first)
    } else {
        "–".to_owned()
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "–".to_owned())
}

/// One run's row of the plain table, ratios against `first`.
fn plain_row(r: &Run, first: &Run, with_server: bool) -> Vec<String> {
    let f = &first.record.summary;
    let s = &r.record.summary;
    let l = &s.latency;
    let mut row = vec![
        r.name.replace('|', "\\|"),
        format_number(s.connections_established as f64),
        format_number(s.throughput_msgs_per_s.round()),
        fmt_us(l.p50_us),
        fmt_us(l.p90_us),
        fmt_us(l.p99_us),
        fmt_us(l.p999_us),
        fmt_us(l.p9999_us),
        fmt_us(l.max_us),
        format_number(r.errors() as f64),
        super::bound::marks_cell([s.bound.as_ref().map(|b| b.mark.as_str())]),
    ];
    if with_server {
        let srv = r.server.as_ref();
        row.push(
            srv.and_then(|s| s.backend.clone())
                .unwrap_or_else(|| "–".to_owned()),
        );
        row.push(opt(r.cpu_us_per_msg(), |v| format!("{v:.2}")));
        row.push(opt(r.syscalls_per_msg(), |v| format!("{v:.3}")));
        row.push(opt(srv.and_then(|s| s.rss_per_conn_bytes), fmt_bytes));
    }
    row.push(fmt_ratio(s.throughput_msgs_per_s, f.throughput_msgs_per_s));
    row.push(fmt_ratio(l.p99_us, f.latency.p99_us));
    row.push(fmt_ratio(l.p999_us, f.latency.p999_us));
    if with_server {
        row.push(match (r.cpu_us_per_msg(), first.cpu_us_per_msg()) {
            (Some(a), Some(b)) => fmt_ratio(a, b),
            _ => "–".to_owned(),
        });
    }
    row
}

/// The markdown: a one-line preamble, the table, and notes on how the columns are made.
pub fn compare_markdown(runs: &[Run]) -> String {
    let Some(first) = runs.first() else {
        return String::new();
    };
    let with_server = runs.iter().any(|r| r.server.is_some());
    let mut header: Vec<&str> = vec![
        "run",
        "conns",
        "msgs/s",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "p99.9 µs",
        "p99.99 µs",
        "max µs",
        "errors",
        "bound",
    ];
    if with_server {
        header.extend(["backend", "srv CPU µs/msg", "syscalls/msg", "RSS/conn"]);
    }
    header.extend(["msgs/s ×", "p99 ×", "p99.9 ×"]);
    if with_server {
        header.push("CPU/msg ×");
    }

    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| plain_row(r, first, with_server))
        .collect();

    let mut md = String::new();
    // Writing to a String cannot fail; results are ignored on purpose.
    let _ = writeln!(
        md,
        "Ratios (×) are against the first run, {}. Latency in µs, measured phase only.\n",
        first.name
    );
    md.push_str(&padded_table(&header, &rows));
    md.push('\n');
    md.push_str(
        "- errors: failed verifications + failed connects + established connections lost.\n",
    );
    let _ = writeln!(md, "- {}", super::bound::NOTE);
    md.push_str(&super::bound::saturation_notes(runs.iter().map(|r| {
        let s = &r.record.summary;
        (r.name.as_str(), s.round, s.bound.as_ref())
    })));
    md.push_str(&protocol_note(
        runs.iter()
            .map(|r| (r.name.as_str(), &r.record.summary.workload)),
    ));
    if runs
        .iter()
        .any(|r| r.record.summary.coordinated_omission_corrected)
    {
        let corrected: Vec<&str> = runs
            .iter()
            .filter(|r| r.record.summary.coordinated_omission_corrected)
            .map(|r| r.name.as_str())
            .collect();
        let _ = writeln!(
            md,
            "- latency measured from the intended send time (coordinated omission corrected): {}.",
            corrected.join(", ")
        );
    }
    if with_server {
        md.push_str(SERVER_COLUMNS_NOTE);
        for r in runs {
            if let Some(s) = &r.server {
                let _ = writeln!(md, "- {}: {}", r.name, s.path.display());
            }
        }
    }
    md
}

/// What `c1m-loadgen compare` prints: the rounds table ([`super::rounds`]) when some
/// label has several folders, else the plain table ([`compare_markdown`]).
pub fn markdown(runs: &[Run]) -> String {
    let groups = group_runs(runs);
    if has_rounds(&groups) {
        rounds_markdown(&groups)
    } else {
        compare_markdown(runs)
    }
}

/// What `--plot` draws: one curve per run, or, when some label has several folders, one
/// per label with all its rounds' histograms added (said in the legend).
pub fn plot_svg(runs: &[Run]) -> String {
    let groups = group_runs(runs);
    if has_rounds(&groups) {
        let merged: Vec<(String, Histogram<u64>)> = groups
            .iter()
            .map(|g| {
                let (hist, added) = merged_latency(g);
                let name = if added == g.runs.len() {
                    format!("{} (all {added} rounds merged)", g.name)
                } else {
                    format!("{} ({added} of {} rounds merged)", g.name, g.runs.len())
                };
                (name, hist)
            })
            .collect();
        let series: Vec<Series<'_>> = merged
            .iter()
            .map(|(name, hist)| Series { name, hist })
            .collect();
        percentile_plot_svg("Latency by percentile, rounds merged", &series)
    } else {
        let series: Vec<Series<'_>> = runs
            .iter()
            .map(|r| Series {
                name: &r.name,
                hist: &r.record.latency,
            })
            .collect();
        percentile_plot_svg("Latency by percentile", &series)
    }
}

/// The comparison of the run folders `dirs` (in order; the first is the baseline): its
/// markdown, also written to `out`, and the plot written to `plot`, when given. Folders
/// sharing a label are rounds of it: then one row per label.
pub fn compare(
    dirs: &[PathBuf],
    out: Option<&Path>,
    plot: Option<&Path>,
) -> anyhow::Result<String> {
    let runs = load_runs(dirs)?;
    let md = markdown(&runs);
    if let Some(out) = out {
        write_creating_parent(out, md.as_bytes())?;
        eprintln!("wrote {}", out.display());
    }
    if let Some(plot) = plot {
        write_creating_parent(plot, plot_svg(&runs).as_bytes())?;
        eprintln!("wrote {}", plot.display());
    }
    Ok(md)
}

pub(crate) fn write_creating_parent(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{load_runs, SERVER_FILE};
    use crate::report::rundir::tests::{synthetic_record, TempDir};
    use crate::report::rundir::write_run_dir;

    #[test]
    fn compare_two_synthetic_folders() {
        let tmp = TempDir::new("compare");
        let scenario = tmp.0.join("scenario");
        let uring = scenario.join("uring");
        let epoll = scenario.join("epoll");
        let a = synthetic_record("uring", 11, 20_000, 4, 1, 3000);
        let mut b = synthetic_record("", 12, 40_000, 4, 1, 1500);
        b.summary.verify_errors = 3;
        write_run_dir(&uring, &a).expect("write");
        write_run_dir(&epoll, &b).expect("write");
        // uring: server.json inside its folder, 12,000 requests counted; epoll: in the
        // parent (scenario) folder, 6,000 messages' bytes read.
        fs::write(
            uring.join(SERVER_FILE),
            r#"{"backend":"uring","cpu_user_s":1.0,"cpu_sys_s":2.0,"syscalls":6000,"recvs":9000,"requests":12000,"rss_per_peak_conn_bytes":2048.0}"#,
        )
        .expect("write");
        let bytes_in = 6000 * b.summary.workload.size;
        fs::write(
            scenario.join(SERVER_FILE),
            format!(r#"{{"backend":"epoll","cpu_user_s":2.5,"cpu_sys_s":3.5,"syscalls":24000,"bytes_in":{bytes_in},"rss_per_peak_conn_bytes":null,"extra":[1,2]}}"#),
        )
        .expect("write");

        let out = tmp.0.join("out").join("compare.md");
        let plot = tmp.0.join("out").join("latency.svg");
        let printed =
            compare(&[uring.clone(), epoll.clone()], Some(&out), Some(&plot)).expect("compare");
        let md = fs::read_to_string(&out).expect("md written");
        assert_eq!(md, printed);
        let svg = fs::read_to_string(&plot).expect("svg written");
        assert!(svg.contains("<polyline"));

        let lines: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(lines.len(), 4, "{md}");
        assert!(lines[0].contains("srv CPU µs/msg") && lines[0].contains("p99 ×"));
        let cells = |l: &str| -> Vec<String> {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        };
        let head = cells(lines[0]);
        let col = |name: &str| head.iter().position(|h| h == name).expect(name);
        let r1 = cells(lines[2]);
        let r2 = cells(lines[3]);
        assert_eq!(r1[col("run")], "uring");
        // No label: the folder name.
        assert_eq!(r2[col("run")], "epoll");
        assert_eq!(r1[col("backend")], "uring");
        assert_eq!(r2[col("backend")], "epoll");
        // errors = verify + failed connects + lost connections = 0 + 2 + 1, and 3 + 2 + 1.
        assert_eq!(r1[col("errors")], "3");
        assert_eq!(r2[col("errors")], "6");
        // CPU per message the server counted.
        assert_eq!(r1[col("srv CPU µs/msg")], format!("{:.2}", 3e6 / 12_000.0));
        assert_eq!(r2[col("srv CPU µs/msg")], format!("{:.2}", 6e6 / 6_000.0));
        assert_eq!(r1[col("syscalls/msg")], "0.500");
        assert_eq!(r2[col("syscalls/msg")], "4.000");
        assert_eq!(r1[col("RSS/conn")], "2.0 KiB");
        assert_eq!(r2[col("RSS/conn")], "–");
        assert_eq!(r1[col("p99 ×")], "1.00");
        assert_eq!(
            r2[col("p99 ×")],
            format!("{:.2}", b.summary.latency.p99_us / a.summary.latency.p99_us)
        );
        assert_eq!(
            r2[col("msgs/s ×")],
            format!(
                "{:.2}",
                b.summary.throughput_msgs_per_s / a.summary.throughput_msgs_per_s
            )
        );
        assert_eq!(r2[col("CPU/msg ×")], "4.00");
        assert_eq!(r1[col("p50 µs")], fmt_us(a.summary.latency.p50_us));
        assert!(md.contains("errors: failed verifications"));
    }

    #[test]
    fn compare_without_server_json_and_with_a_bad_folder() {
        let tmp = TempDir::new("compare-plain");
        let a = tmp.0.join("a");
        write_run_dir(&a, &synthetic_record("a", 1, 10_000, 2, 0, 100)).expect("write");
        let runs = load_runs(std::slice::from_ref(&a)).expect("load");
        let md = compare_markdown(&runs);
        assert!(!md.contains("srv CPU"), "{md}");
        assert!(!md.contains("protocol"), "{md}");
        assert!(md.contains("| a "), "{md}");

        let e = compare(&[a, tmp.0.join("missing")], None, None).expect_err("must fail");
        let e = format!("{e:#}");
        assert!(e.contains("missing does not exist"), "{e}");
    }

    #[test]
    fn protocols_are_named_when_not_echo() {
        let tmp = TempDir::new("compare-protocol");
        let (a, b) = (tmp.0.join("a"), tmp.0.join("b"));
        let mut ra = synthetic_record("a", 1, 10_000, 2, 0, 100);
        ra.summary.workload.protocol = "http".into();
        ra.summary.workload.body_size = Some(16);
        let rb = synthetic_record("b", 2, 10_000, 2, 0, 100);
        write_run_dir(&a, &ra).expect("write");
        write_run_dir(&b, &rb).expect("write");
        let runs = load_runs(&[a, b]).expect("load");
        let md = compare_markdown(&runs);
        assert!(
            md.contains("- protocol: http (body 16 B): a; echo: b."),
            "{md}"
        );
        assert!(md.contains("different protocols"), "{md}");
    }

    #[test]
    fn number_formats() {
        assert_eq!(fmt_us(1234.4), "1,234");
        assert_eq!(fmt_us(12.34), "12.3");
        assert_eq!(fmt_us(1.234), "1.23");
        assert_eq!(fmt_ratio(2.0, 0.0), "–");
        assert_eq!(fmt_bytes(3.5 * 1024.0 * 1024.0), "3.5 MiB");
        assert_eq!(fmt_bytes(100.0), "100 B");
    }
}
