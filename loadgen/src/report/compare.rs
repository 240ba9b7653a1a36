//! `c1m-loadgen compare DIR...`: a side-by-side markdown table of run folders, ratios
//! against the first, and optionally one SVG of all their percentile distributions.
//! Folders with the same label are rounds of it; then [`markdown`] gives the rounds
//! table of [`super::rounds`] instead (one row per label, median and range).
//!
//! Server columns appear when a `server.json` (written by `c1m-server --stats-json`) sits
//! in the run folder or in its parent folder. Its fields are read leniently (missing or
//! odd fields leave a cell empty): `backend`, `cpu_user_s`, `cpu_sys_s`, `syscalls`,
//! `rss_per_peak_conn_bytes`.

use super::plot::{format_number, format_us as fmt_us, percentile_plot_svg, Series};
use super::rounds::{group_runs, has_rounds, rounds_markdown};
use super::rundir::{read_run_dir, RunRecord};
use super::summary::Workload;
use crate::cli::CompareArgs;
use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde_json::Value;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

pub const SERVER_FILE: &str = "server.json";

/// What compare takes from a server.json.
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub path: PathBuf,
    pub backend: Option<String>,
    /// User + system CPU seconds over the server's life.
    pub cpu_s: Option<f64>,
    pub syscalls: Option<f64>,
    pub recvs: Option<f64>,
    pub rss_per_conn_bytes: Option<f64>,
}

impl ServerStats {
    pub fn from_json(path: PathBuf, v: &Value) -> ServerStats {
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let cpu_s = match (num("cpu_user_s"), num("cpu_sys_s")) {
            (None, None) => None,
            (u, s) => Some(u.unwrap_or(0.0) + s.unwrap_or(0.0)),
        };
        ServerStats {
            path,
            backend: v.get("backend").and_then(|b| match b {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            }),
            cpu_s,
            syscalls: num("syscalls"),
            recvs: num("recvs"),
            rss_per_conn_bytes: num("rss_per_peak_conn_bytes"),
        }
    }
}

/// The server.json for a run folder: in it, else in its parent. Unreadable or invalid
/// files are reported on stderr and skipped (the table is still useful without them).
pub fn find_server_stats(dir: &Path) -> Option<ServerStats> {
    let mut candidates = vec![dir.join(SERVER_FILE)];
    if let Some(parent) = dir.parent() {
        candidates.push(parent.join(SERVER_FILE));
    }
    for path in candidates {
        if !path.is_file() {
            continue;
        }
        match fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(anyhow::Error::from))
        {
            Ok(v) => return Some(ServerStats::from_json(path, &v)),
            Err(e) => {
                eprintln!(
                    "c1m-loadgen compare: ignoring {}: {e} (rewrite it with c1m-server --stats-json)",
                    path.display()
                );
            }
        }
    }
    None
}

/// How the server columns are made (a note under the table).
pub(super) const SERVER_COLUMNS_NOTE: &str =
    "- srv CPU µs/msg, syscalls/msg: the server's user+sys CPU time and syscalls over its whole life (server.json) \
     divided by the messages echoed over the whole run, warm-up included (from latency.hlog); \
     connection set-up is counted in.\n\
     - RSS/conn: (peak RSS − RSS before the first connection) / peak connections.\n";

/// One column of the comparison.
pub struct Run {
    pub name: String,
    pub record: RunRecord,
    pub server: Option<ServerStats>,
}

impl Run {
    /// Errors of every kind: failed echo verification, failed connects, connections lost.
    pub fn errors(&self) -> u64 {
        let s = &self.record.summary;
        s.verify_errors + s.connections_failed + s.connection_errors.values().sum::<u64>()
    }

    /// Messages echoed over the whole run, warm-up included: what the server worked for
    /// during its life. Taken from the interval log (one sample per echo); the measured
    /// count when the log has fewer.
    pub fn messages_whole_run(&self) -> u64 {
        let from_intervals: u64 = self.record.intervals.iter().map(|i| i.hist.len()).sum();
        from_intervals.max(self.record.summary.messages_received)
    }

    fn per_message(&self, total: Option<f64>) -> Option<f64> {
        let msgs = self.messages_whole_run();
        match total {
            Some(t) if msgs > 0 => Some(t / msgs as f64),
            _ => None,
        }
    }

    /// Server CPU µs per message.
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        self.per_message(self.server.as_ref()?.cpu_s.map(|s| s * 1e6))
    }

    pub fn syscalls_per_msg(&self) -> Option<f64> {
        self.per_message(self.server.as_ref()?.syscalls)
    }
}

fn run_name(dir: &Path, rec: &RunRecord) -> String {
    if !rec.summary.label.trim().is_empty() {
        return rec.summary.label.trim().to_owned();
    }
    let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Reads the folders in order; the first is the baseline of the ratio columns.
pub fn load_runs(dirs: &[PathBuf]) -> anyhow::Result<Vec<Run>> {
    dirs.iter()
        .map(|dir| {
            let record =
                read_run_dir(dir).with_context(|| format!("cannot compare {}", dir.display()))?;
            Ok(Run {
                name: run_name(dir, &record),
                server: find_server_stats(dir),
                record,
            })
        })
        .collect()
}

fn fmt_ratio(this: f64, first: f64) -> String {
    if first > 0.0 && this.is_finite() && first.is_finite() {
        format!("{:.2}", this / first)
    } else {
        "–".to_owned()
    }
}

pub(super) fn fmt_bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "–".to_owned())
}

/// A markdown table with padded columns: text columns (run, backend) left-aligned,
/// numbers right-aligned. Every row has one cell per header.
pub(super) fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |v| v.chars().count()))
                .chain([header[c].chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let pad = |s: &str, w: usize, right: bool| {
        let n = w.saturating_sub(s.chars().count());
        if right {
            format!("{}{s}", " ".repeat(n))
        } else {
            format!("{s}{}", " ".repeat(n))
        }
    };
    let is_text = |c: usize| header[c] == "run" || header[c] == "backend";

    let mut md = String::new();
    // Writing to a String cannot fail; results are ignored on purpose.
    let cells: Vec<String> = (0..header.len())
        .map(|c| pad(header[c], widths[c], !is_text(c)))
        .collect();
    let _ = writeln!(md, "| {} |", cells.join(" | "));
    let rules: Vec<String> = (0..header.len())
        .map(|c| {
            if is_text(c) {
                "-".repeat(widths[c])
            } else {
                format!("{}:", "-".repeat(widths[c] - 1))
            }
        })
        .collect();
    let _ = writeln!(md, "| {} |", rules.join(" | "));
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| pad(v, widths[c], !is_text(c)))
            .collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    md
}

/// A note naming the protocol of each run (`- protocol: http (body 16 B): a, b.`), or
/// nothing when every run is echo (the default).
pub(super) fn protocol_note<'a>(runs: impl Iterator<Item = (&'a str, &'a Workload)>) -> String {
    let mut by_protocol: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, w) in runs {
        let desc = w.protocol_desc();
        match by_protocol.iter_mut().find(|(d, _)| *d == desc) {
            Some((_, names)) => {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            None => by_protocol.push((desc, vec![name])),
        }
    }
    if by_protocol.iter().all(|(d, _)| d == "echo") {
        return String::new();
    }
    let parts: Vec<String> = by_protocol
        .iter()
        .map(|(d, names)| format!("{d}: {}", names.join(", ")))
        .collect();
    let mut note = format!("- protocol: {}.\n", parts.join("; "));
    if by_protocol.len() > 1 {
        note.push_str(
            "- these runs speak different protocols: their numbers measure different work.\n",
        );
    }
    note
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

    let f = &first.record.summary;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for r in runs {
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
        rows.push(row);
    }

    let mut md = String::new();
    // Writing to a String cannot fail; results are ignored on purpose.
    let _ = writeln!(
        md,
        "Ratios (×) are against the first run, {}. Latency in µs, measured phase only.\n",
        first.name
    );
    md.push_str(&markdown_table(&header, &rows));
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
                let (hist, added) = g.merged_latency();
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

/// `c1m-loadgen compare DIR... [--out FILE.md] [--plot FILE.svg]`. Folders sharing a
/// label are rounds of it: then one row per label.
pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let runs = load_runs(&args.dirs)?;
    let md = markdown(&runs);
    print!("{md}");
    if let Some(out) = &args.out {
        write_creating_parent(out, md.as_bytes())?;
        eprintln!("wrote {}", out.display());
    }
    if let Some(plot) = &args.plot {
        write_creating_parent(plot, plot_svg(&runs).as_bytes())?;
        eprintln!("wrote {}", plot.display());
    }
    Ok(())
}

fn write_creating_parent(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
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
        // uring: server.json inside its folder; epoll: in the parent (scenario) folder.
        fs::write(
            uring.join(SERVER_FILE),
            r#"{"backend":"uring","cpu_user_s":1.0,"cpu_sys_s":2.0,"syscalls":6000,"recvs":9000,"rss_per_peak_conn_bytes":2048.0}"#,
        )
        .expect("write");
        fs::write(
            scenario.join(SERVER_FILE),
            r#"{"backend":"epoll","cpu_user_s":2.5,"cpu_sys_s":3.5,"syscalls":24000,"rss_per_peak_conn_bytes":null,"extra":[1,2]}"#,
        )
        .expect("write");

        let out = tmp.0.join("out").join("compare.md");
        let plot = tmp.0.join("out").join("latency.svg");
        run(CompareArgs {
            dirs: vec![uring.clone(), epoll.clone()],
            out: Some(out.clone()),
            plot: Some(plot.clone()),
        })
        .expect("compare");
        let md = fs::read_to_string(&out).expect("md written");
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
        // CPU per message over the whole run (4 intervals of 3000 and 1500 samples).
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

        let e = run(CompareArgs {
            dirs: vec![a, tmp.0.join("missing")],
            out: None,
            plot: None,
        })
        .expect_err("must fail");
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
