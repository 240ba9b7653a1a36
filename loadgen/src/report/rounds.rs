//! `c1m-loadgen compare` over interleaved rounds: run folders with the same label are
//! rounds of that label. One row per label, each cell the median (min-max) over its
//! rounds; ratio columns are the median (min-max) of per-round paired ratios against the
//! first label, marked `~` when the paired ratios fall on both sides of 1.0 (no clear
//! difference). Rounds pair by the `round` of summary.json, else by the order given.

use super::fmt::{bytes as fmt_bytes, number as format_number, padded_table, us as fmt_us};
use super::hlog::{add_into, new_histogram};
use super::model::{protocol_note, Run, SERVER_COLUMNS_NOTE};
use super::stats::{disagreement_warning, pair_rounds, paired_ratios, ratio_cell, Pairing};
use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// The runs of one label over its rounds.
pub type Group<'a> = super::stats::Group<'a, Run>;

/// Every round's latency histogram added into one (what `--plot` draws), and how many
/// rounds it holds (all of them: both sides grow to hold any value).
pub fn merged_latency(g: &Group<'_>) -> (Histogram<u64>, usize) {
    let mut h = new_histogram();
    let added = g
        .runs
        .iter()
        .filter(|r| add_into(&mut h, &r.record.latency))
        .count();
    (h, added)
}

/// Groups runs by label, labels in the order of their first folder.
pub fn group_runs(runs: &[Run]) -> Vec<Group<'_>> {
    super::stats::group_by(runs, |r| r.name.as_str())
}

/// True when some label has more than one folder: compare shows the rounds table.
pub fn has_rounds(groups: &[Group<'_>]) -> bool {
    groups.iter().any(|g| g.runs.len() > 1)
}

type Metric = fn(&Run) -> Option<f64>;

fn msgs_per_s(r: &Run) -> Option<f64> {
    Some(r.record.summary.throughput_msgs_per_s)
}
fn p50(r: &Run) -> Option<f64> {
    Some(r.record.summary.latency.p50_us)
}
fn p99(r: &Run) -> Option<f64> {
    Some(r.record.summary.latency.p99_us)
}
fn p999(r: &Run) -> Option<f64> {
    Some(r.record.summary.latency.p999_us)
}
fn cpu_per_msg(r: &Run) -> Option<f64> {
    r.cpu_us_per_msg()
}

type Column = (&'static str, Metric, fn(f64) -> String);

/// The client's columns: header, metric, format of one number.
fn client_columns() -> Vec<Column> {
    vec![
        (
            "conns",
            |r| Some(r.record.summary.connections_established as f64),
            |v| format_number(v.round()),
        ),
        ("msgs/s", msgs_per_s, |v| format_number(v.round())),
        ("p50 µs", p50, fmt_us),
        ("p90 µs", |r| Some(r.record.summary.latency.p90_us), fmt_us),
        ("p99 µs", p99, fmt_us),
        ("p99.9 µs", p999, fmt_us),
        (
            "p99.99 µs",
            |r| Some(r.record.summary.latency.p9999_us),
            fmt_us,
        ),
        ("max µs", |r| Some(r.record.summary.latency.max_us), fmt_us),
    ]
}

/// The server's columns (after `backend`), from server.json.
fn server_columns() -> Vec<Column> {
    vec![
        ("srv CPU µs/msg", cpu_per_msg, |v| format!("{v:.2}")),
        (
            "syscalls/msg",
            |r| r.syscalls_per_msg(),
            |v| format!("{v:.3}"),
        ),
        (
            "RSS/conn",
            |r| r.server.as_ref()?.rss_per_conn_bytes,
            fmt_bytes,
        ),
    ]
}

/// The ratio columns: header and metric.
fn ratio_columns(with_server: bool) -> Vec<(&'static str, Metric)> {
    let mut cols: Vec<(&'static str, Metric)> = vec![
        ("msgs/s ×", msgs_per_s),
        ("p50 ×", p50),
        ("p99 ×", p99),
        ("p99.9 ×", p999),
    ];
    if with_server {
        cols.push(("CPU/msg ×", cpu_per_msg));
    }
    cols
}

/// The backends named by a label's server.json files ("uring", or "uring/epoll" when
/// they differ).
fn backends(g: &Group<'_>) -> String {
    let mut names: Vec<String> = Vec::new();
    for r in &g.runs {
        if let Some(b) = r.server.as_ref().and_then(|s| s.backend.clone()) {
            if !names.contains(&b) {
                names.push(b);
            }
        }
    }
    if names.is_empty() {
        "–".to_owned()
    } else {
        names.join("/")
    }
}

fn row(g: &Group<'_>, base: &Group<'_>, pairing: &Pairing, with_server: bool) -> Vec<String> {
    let spread_cell = |(_, metric, fmt): Column| {
        g.spread(metric)
            .map_or_else(|| "–".to_owned(), |s| s.format(fmt))
    };
    let mut row = vec![g.name.replace('|', "\\|"), g.runs.len().to_string()];
    row.extend(client_columns().into_iter().map(spread_cell));
    let errors: u64 = g.runs.iter().map(|r| r.errors()).sum();
    row.push(format_number(errors as f64));
    row.push(super::bound::marks_cell(g.runs.iter().map(|r| {
        r.record.summary.bound.as_ref().map(|b| b.mark.as_str())
    })));
    if with_server {
        row.push(backends(g));
        row.extend(server_columns().into_iter().map(spread_cell));
    }
    for (_, metric) in ratio_columns(with_server) {
        row.push(
            ratio_cell(&paired_ratios(
                pairing,
                &base.values(metric),
                &g.values(metric),
            ))
            .unwrap_or_else(|| "–".to_owned()),
        );
    }
    row
}

/// The header, in the order [`row`] fills it.
fn header(with_server: bool) -> Vec<&'static str> {
    let mut h = vec!["run", "rounds"];
    h.extend(client_columns().iter().map(|c| c.0));
    h.push("errors");
    h.push("bound");
    if with_server {
        h.push("backend");
        h.extend(server_columns().iter().map(|c| c.0));
    }
    h.extend(ratio_columns(with_server).iter().map(|c| c.0));
    h
}

/// Warnings for labels whose rounds disagree on server CPU per message.
fn disagreement_warnings(groups: &[Group<'_>]) -> Vec<String> {
    groups
        .iter()
        .filter_map(|g| disagreement_warning(g.name, &g.spread(cpu_per_msg)?))
        .collect()
}

/// The markdown for runs where some label has several rounds.
pub fn rounds_markdown(groups: &[Group<'_>]) -> String {
    let Some(base) = groups.first() else {
        return String::new();
    };
    let with_server = groups
        .iter()
        .any(|g| g.runs.iter().any(|r| r.server.is_some()));
    let pairings: Vec<Pairing> = groups
        .iter()
        .map(|g| pair_rounds(&base.rounds(), &g.rounds()))
        .collect();
    let rows: Vec<Vec<String>> = groups
        .iter()
        .zip(&pairings)
        .map(|(g, p)| row(g, base, p, with_server))
        .collect();

    let mut md = String::new();
    // Writing to a String cannot fail; results are ignored on purpose.
    let _ = writeln!(
        md,
        "Each cell: median (min-max) over the label's rounds. Ratios (×) are against the first label, {}: \
         the median (min-max) of per-round paired ratios; ~ marks no clear difference (paired ratios on both \
         sides of 1.0). Latency in µs, measured phase only.\n",
        base.name
    );
    md.push_str(&padded_table(&header(with_server), &rows));
    let warnings = disagreement_warnings(groups);
    if !warnings.is_empty() {
        md.push('\n');
        for w in warnings {
            let _ = writeln!(md, "{w}");
        }
    }
    md.push('\n');
    md.push_str(&notes(groups, &pairings, with_server));
    md
}

/// The notes under the table: pairing, errors, coordinated omission, server columns.
fn notes(groups: &[Group<'_>], pairings: &[Pairing], with_server: bool) -> String {
    let mut md = String::new();
    let base = groups.first().map_or(0, |g| g.runs.len());
    for (g, p) in groups.iter().zip(pairings).skip(1) {
        let how = if p.by_round {
            "by the round number in summary.json"
        } else {
            "by the order given on the command line"
        };
        let _ = writeln!(
            md,
            "- {}: {} rounds paired with {}'s (of {} and {}), {how}.",
            g.name,
            p.pairs.len(),
            groups[0].name,
            g.runs.len(),
            base
        );
    }
    md.push_str(
        "- errors: failed verifications + failed connects + established connections lost, summed over the rounds.\n",
    );
    let _ = writeln!(md, "- {}", super::bound::NOTE);
    md.push_str(&super::bound::saturation_notes(groups.iter().flat_map(
        |g| {
            g.runs.iter().map(move |r| {
                let s = &r.record.summary;
                (g.name, s.round, s.bound.as_ref())
            })
        },
    )));
    md.push_str(&protocol_note(groups.iter().flat_map(|g| {
        g.runs
            .iter()
            .map(move |r| (g.name, &r.record.summary.workload))
    })));
    let corrected: Vec<&str> = groups
        .iter()
        .filter(|g| {
            g.runs
                .iter()
                .any(|r| r.record.summary.coordinated_omission_corrected)
        })
        .map(|g| g.name)
        .collect();
    if !corrected.is_empty() {
        let _ = writeln!(
            md,
            "- latency measured from the intended send time (coordinated omission corrected): {}.",
            corrected.join(", ")
        );
    }
    if with_server {
        md.push_str(SERVER_COLUMNS_NOTE);
        for g in groups {
            let paths: Vec<String> = g
                .runs
                .iter()
                .filter_map(|r| r.server.as_ref())
                .map(|s| s.path.display().to_string())
                .collect();
            if !paths.is_empty() {
                let _ = writeln!(md, "- {}: {}", g.name, paths.join(", "));
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::{compare, compare_markdown};
    use crate::report::model::load_runs;
    use crate::report::rundir::tests::{synthetic_record, TempDir};
    use crate::report::rundir::write_run_dir;
    use std::fs;
    use std::path::{Path, PathBuf};

    /// Samples per synthetic run over its whole life (4 intervals of 1000).
    const MSGS: f64 = 4000.0;

    /// A run folder `<root>/round-<round>/<label>` with its own server.json; `(cpu,
    /// rate, p50)` are µs of server CPU per message, msgs/s and p50 µs. `round` is
    /// written to summary.json when `numbered`.
    fn round_folder(
        root: &Path,
        label: &str,
        round: u64,
        numbered: bool,
        (cpu, rate, p50): (f64, f64, f64),
    ) -> PathBuf {
        let dir = root.join(format!("round-{round}")).join(label);
        let mut rec = synthetic_record(label, round * 7 + label.len() as u64, 20_000, 4, 1, 1000);
        rec.summary.throughput_msgs_per_s = rate;
        rec.summary.latency.p50_us = p50;
        rec.summary.round = numbered.then_some(round);
        write_run_dir(&dir, &rec).expect("write");
        fs::write(
            dir.join("server.json"),
            format!(
                r#"{{"backend":"{}","cpu_user_s":0.0,"cpu_sys_s":{},"syscalls":2000,"bytes_in":{}}}"#,
                label.split('-').next().unwrap_or(label),
                cpu * MSGS / 1e6,
                MSGS * rec.summary.workload.size as f64
            ),
        )
        .expect("write server.json");
        dir
    }

    /// uring rounds 1-3: CPU 4.0, 5.0, 4.5 (max/min 1.25: rounds disagree);
    /// epoll rounds 1-3: CPU 4.4, 4.8, 4.6. The epoll folders are given as rounds 3, 1, 2.
    fn fixture(root: &Path, numbered: bool) -> Vec<PathBuf> {
        let uring = [
            (4.0, 100_000.0, 50.0),
            (5.0, 110_000.0, 60.0),
            (4.5, 90_000.0, 55.0),
        ];
        let epoll = [
            (4.4, 80_000.0, 70.0),
            (4.8, 85_000.0, 75.0),
            (4.6, 75_000.0, 65.0),
        ];
        let mut dirs = Vec::new();
        for (i, v) in uring.into_iter().enumerate() {
            dirs.push(round_folder(root, "uring-c100", i as u64 + 1, numbered, v));
        }
        for i in [2, 0, 1] {
            dirs.push(round_folder(
                root,
                "epoll-c100",
                i as u64 + 1,
                numbered,
                epoll[i],
            ));
        }
        dirs
    }

    fn table(md: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let cells = |l: &str| -> Vec<String> {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        };
        let lines: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        let rows = lines.iter().skip(2).map(|l| cells(l)).collect();
        (cells(lines[0]), rows)
    }

    fn cell<'a>(head: &[String], row: &'a [String], name: &str) -> &'a str {
        let c = head.iter().position(|h| h == name).expect(name);
        &row[c]
    }

    #[test]
    fn rounds_pair_by_round_number() {
        let tmp = TempDir::new("rounds");
        let dirs = fixture(&tmp.0, true);
        let out = tmp.0.join("compare.md");
        let plot = tmp.0.join("latency.svg");
        compare(&dirs, Some(&out), Some(&plot)).expect("compare");
        let md = fs::read_to_string(&out).expect("md");
        let (head, rows) = table(&md);
        assert_eq!(rows.len(), 2, "{md}");
        let (u, e) = (&rows[0], &rows[1]);
        assert_eq!(cell(&head, u, "run"), "uring-c100");
        assert_eq!(cell(&head, e, "run"), "epoll-c100");
        assert_eq!(cell(&head, u, "rounds"), "3");
        assert_eq!(cell(&head, u, "srv CPU µs/msg"), "4.50 (4.00-5.00)");
        assert_eq!(cell(&head, e, "srv CPU µs/msg"), "4.60 (4.40-4.80)");
        assert_eq!(cell(&head, u, "msgs/s"), "100,000 (90,000-110,000)");
        assert_eq!(cell(&head, u, "p50 µs"), "55.0 (50.0-60.0)");
        assert_eq!(cell(&head, u, "backend"), "uring");
        assert_eq!(cell(&head, u, "syscalls/msg"), "0.500");
        // 3 rounds of (0 verify + 2 failed connects + 1 lost).
        assert_eq!(cell(&head, u, "errors"), "9");
        assert_eq!(cell(&head, u, "CPU/msg ×"), "1.00");
        // By round: 4.4/4.0, 4.8/5.0, 4.6/4.5 = 1.10, 0.96, 1.02: both sides of 1.
        assert_eq!(cell(&head, e, "CPU/msg ×"), "1.02 (0.96-1.10) ~");
        // 80/100, 85/110, 75/90 = 0.80, 0.77, 0.83: a clear difference.
        assert_eq!(cell(&head, e, "msgs/s ×"), "0.80 (0.77-0.83)");
        // 70/50, 75/60, 65/55 = 1.40, 1.25, 1.18.
        assert_eq!(cell(&head, e, "p50 ×"), "1.25 (1.18-1.40)");
        assert!(md.contains("by the round number in summary.json"), "{md}");
        let warnings: Vec<&str> = md.lines().filter(|l| l.starts_with("Warning:")).collect();
        assert_eq!(warnings.len(), 1, "{md}");
        assert!(warnings[0].contains("uring-c100: rounds disagree"), "{md}");
        assert!(warnings[0].contains("max/min = 1.25"), "{md}");
        let svg = fs::read_to_string(&plot).expect("svg");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("uring-c100 (all 3 rounds merged)"), "{svg}");
    }

    #[test]
    fn rounds_without_numbers_pair_by_order() {
        let tmp = TempDir::new("rounds-order");
        let dirs = fixture(&tmp.0, false);
        let runs = load_runs(&dirs).expect("load");
        let groups = group_runs(&runs);
        assert!(has_rounds(&groups));
        let md = rounds_markdown(&groups);
        let (head, rows) = table(&md);
        // In the order given: 4.6/4.0, 4.4/5.0, 4.8/4.5 = 1.15, 0.88, 1.07.
        assert_eq!(cell(&head, &rows[1], "CPU/msg ×"), "1.07 (0.88-1.15) ~");
        assert!(
            md.contains("by the order given on the command line"),
            "{md}"
        );
        assert!(
            md.contains("3 rounds paired with uring-c100's (of 3 and 3)"),
            "{md}"
        );
    }

    #[test]
    fn one_folder_per_label_keeps_the_plain_table() {
        let tmp = TempDir::new("rounds-single");
        let dirs = fixture(&tmp.0, true);
        let single = vec![dirs[0].clone(), dirs[3].clone()];
        let runs = load_runs(&single).expect("load");
        assert!(!has_rounds(&group_runs(&runs)));
        let out = tmp.0.join("single.md");
        compare(&single, Some(&out), None).expect("compare");
        assert_eq!(
            fs::read_to_string(&out).expect("md"),
            compare_markdown(&runs)
        );
    }
}
