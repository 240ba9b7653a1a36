//! Headline rows over interleaved rounds: per variant and point the median and range of
//! every number, and each variant's server CPU per message against the first variant as
//! the median of per-round paired ratios ("~": the rounds straddle 1.0, no clear
//! difference).

use super::folder::RunFolder as Run;
use c1m_loadgen::report::bound::{self, marks_cell};
use c1m_loadgen::report::fmt::{fixed, plain_table, us_or_dash};
use c1m_loadgen::report::stats::{group_by, ratio_cell, Spread};

type Group<'a> = c1m_loadgen::report::stats::Group<'a, Run>;

/// The numbers of a point name, for ordering: `c1000-r25` -> [1000, 25].
fn point_key(point: &str) -> Vec<u64> {
    point
        .split('-')
        .map(|p| p.trim_start_matches(|c: char| c.is_ascii_alphabetic()))
        .map(|n| n.parse().unwrap_or(u64::MAX))
        .collect()
}

/// Position of a variant named as a backend in the canonical order (other variants
/// after them, in the order they came).
pub fn backend_rank(name: &str) -> usize {
    crate::plan::Backend::ALL
        .iter()
        .position(|b| b.name() == name)
        .unwrap_or(usize::MAX)
}

/// The runs grouped by label, ordered by point, then by backend in canonical order
/// (rounds ran in shuffled order; the table should not).
fn groups(runs: &[Run]) -> Vec<Group<'_>> {
    let mut out = group_by(runs, |r| r.key.as_str());
    out.sort_by_key(|g| {
        let case = &g.runs[0].case;
        (point_key(&case.point), backend_rank(case.variant()))
    });
    out
}

fn us(v: f64) -> String {
    us_or_dash(Some(v))
}

fn show(s: Option<Spread>, f: impl Fn(f64) -> String) -> String {
    s.map_or_else(|| "-".into(), |s| s.format(f))
}

/// Server CPU µs/msg of `g` over that of `base`, paired by round: "0.78 (0.72-0.82)",
/// with " ~" when the rounds fall on both sides of 1.0.
fn cpu_ratio(base: &Group<'_>, g: &Group<'_>) -> String {
    ratio_cell(&g.ratios_to(base, Run::cpu_us_per_msg)).unwrap_or_else(|| "-".into())
}

/// The headline table of a pingpong or latency folder over its rounds. `open_loop`:
/// the rate column is the offered rate, not the achieved one.
pub fn rows_rounds(runs: &[Run], open_loop: bool) -> String {
    let gs = groups(runs);
    let mut rows = Vec::new();
    for g in &gs {
        let (variant, point) = (g.runs[0].case.variant(), g.runs[0].case.point.as_str());
        let base = gs
            .iter()
            .find(|b| b.runs[0].case.point == point)
            .filter(|b| b.name != g.name);
        let failed = g.runs.iter().filter(|r| r.failed).count();
        let errors: f64 = g.runs.iter().filter_map(|r| r.errors()).sum();
        rows.push(vec![
            point.to_owned(),
            variant.to_owned(),
            g.runs.len().to_string(),
            show(
                g.spread(|r| {
                    let s = r.summary.as_ref()?;
                    if open_loop {
                        s.workload.rate_msgs_per_s
                    } else {
                        Some(s.throughput_msgs_per_s)
                    }
                }),
                |v| fixed(Some(v), 0),
            ),
            marks_cell(g.runs.iter().map(|r| r.bound_mark())),
            show(g.spread(Run::cpu_us_per_msg), |v| format!("{v:.2}")),
            base.map_or_else(|| "1".into(), |b| cpu_ratio(b, g)),
            show(g.spread(|r| r.get(|s| s.latency.p50_us)), us),
            show(g.spread(|r| r.get(|s| s.latency.p99_us)), us),
            show(g.spread(|r| r.get(|s| s.latency.p999_us)), us),
            fixed(Some(errors), 0) + if failed > 0 { " FAILED" } else { "" },
        ]);
    }
    let rate = if open_loop { "rate msgs/s" } else { "msgs/s" };
    let header = [
        "point",
        "backend",
        "rounds",
        rate,
        "bound",
        "srv CPU µs/msg",
        "CPU ratio",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "errors",
    ];
    plain_table(&header, &rows)
}

/// What a closed-loop msgs/s column is, by the marks of its runs: the server's maximum
/// throughput only where every run was server-bound.
pub fn throughput_note(runs: &[Run]) -> String {
    let marks: Vec<&str> = runs.iter().filter_map(Run::bound_mark).collect();
    let all =
        |m: &str| !marks.is_empty() && marks.len() == runs.len() && marks.iter().all(|x| *x == m);
    if all(bound::SERVER_BOUND) {
        "msgs/s is the maximum throughput: every run was server-bound.".into()
    } else if all(bound::CLIENT_BOUND) {
        "msgs/s is the loadgen's ceiling, not the server's maximum: every run was client-bound."
            .into()
    } else if marks.is_empty() {
        "msgs/s is the closed-loop throughput; whether the server or the client bound it was not recorded.".into()
    } else {
        "msgs/s is the closed-loop throughput: the server's maximum only in rows marked server; client marks the loadgen's ceiling, neither a pace set by the round trip.".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::folder::CaseRecord;
    use c1m_loadgen::report::model::ServerStats;

    fn run(name: &str, round: u64, cpu_s: f64, tput: f64) -> Run {
        let summary = format!(
            r#"{{"round": {round}, "throughput_msgs_per_s": {tput}, "workload": {{"size": 64}},
               "latency": {{"p50_us": 50, "p99_us": 90, "p999_us": 200}}}}"#
        );
        let server = format!(r#"{{"cpu_user_s": 0, "cpu_sys_s": {cpu_s}, "bytes_in": 64000000}}"#);
        let server: serde_json::Value = serde_json::from_str(&server).expect("json");
        Run {
            dir: name.into(),
            name: name.into(),
            case: CaseRecord::from_label(name),
            key: name.into(),
            summary: Some(serde_json::from_str(&summary).expect("summary")),
            server: Some(ServerStats::from_json("server.json".into(), &server)),
            hold: serde_json::Value::Null,
            window_cpu_us_per_req: None,
            failed: false,
        }
    }

    fn marked(mut r: Run, mark: &str) -> Run {
        let bound = serde_json::from_str(&format!(r#"{{"mark": "{mark}"}}"#)).expect("json");
        if let Some(s) = r.summary.as_mut() {
            s.bound = Some(bound);
        }
        r
    }

    #[test]
    fn the_throughput_wording_follows_the_marks() {
        let server = |n| marked(run("uring-c100", n, 4.0, 100.0), bound::SERVER_BOUND);
        let client = |n| marked(run("uring-c100", n, 4.0, 100.0), bound::CLIENT_BOUND);
        let t = rows_rounds(&[server(1), client(2), server(3)], false);
        assert!(
            t.lines()
                .nth(2)
                .expect("row")
                .contains("| server 2, client 1 |"),
            "{t}"
        );
        assert!(throughput_note(&[server(1), server(2)])
            .starts_with("msgs/s is the maximum throughput"));
        assert!(
            throughput_note(&[client(1)]).contains("loadgen's ceiling, not the server's maximum")
        );
        let mixed = throughput_note(&[server(1), client(2)]);
        assert!(mixed.contains("only in rows marked server"), "{mixed}");
        // A run without a mark: nothing is claimed.
        let unmarked = throughput_note(&[server(1), run("epoll-c100", 1, 5.0, 90.0)]);
        assert!(
            unmarked.contains("only in rows marked server"),
            "{unmarked}"
        );
        assert!(throughput_note(&[run("epoll-c100", 1, 5.0, 90.0)]).contains("not recorded"));
    }

    #[test]
    fn medians_ranges_and_paired_ratios() {
        // 1M messages per run: CPU seconds = µs per message.
        let runs = vec![
            run("uring-c100", 1, 4.0, 100.0),
            run("epoll-c100", 1, 5.0, 90.0),
            run("uring-c100", 2, 6.0, 110.0),
            run("epoll-c100", 2, 6.0, 80.0),
            run("uring-c100", 3, 5.0, 120.0),
            run("epoll-c100", 3, 5.5, 85.0),
        ];
        let t = rows_rounds(&runs, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[2],
            "| c100 | uring | 3 | 110 (100-120) | – | 5.00 (4.00-6.00) | 1 | 50 | 90 | 200 | 0 |"
        );
        // epoll/uring per round: 1.25, 1.00, 1.10 -> median 1.10, no round below 1.
        assert_eq!(
            lines[3],
            "| c100 | epoll | 3 | 85 (80-90) | – | 5.50 (5.00-6.00) | 1.10 (1.00-1.25) | 50 | 90 | 200 | 0 |"
        );
        let mixed = vec![
            run("uring-c100", 1, 4.0, 1.0),
            run("epoll-c100", 1, 5.0, 1.0),
            run("uring-c100", 2, 6.0, 1.0),
            run("epoll-c100", 2, 5.0, 1.0),
        ];
        assert!(rows_rounds(&mixed, false).contains("| 1.04 (0.83-1.25) ~ |"));
    }
}
