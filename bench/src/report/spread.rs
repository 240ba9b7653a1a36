//! Headline rows over interleaved rounds: per backend and point the median and range of
//! every number, and each backend's server CPU per message against the first backend as
//! the median of per-round paired ratios ("~": the rounds straddle 1.0, no clear
//! difference).

use super::Run;
use c1m_loadgen::report::bound::{self, marks_cell};
use c1m_loadgen::report::fmt::{fixed, plain_table, us_or_dash};
use c1m_loadgen::report::stats::{group_by, ratio_cell, Spread};

type Group<'a> = c1m_loadgen::report::stats::Group<'a, Run>;

/// Splits a run label into (backend, point): `tokio-uring-c100` -> (`tokio-uring`,
/// `c100`), `uring-c1000-r25` -> (`uring`, `c1000-r25`), `epoll` -> (`epoll`, ``).
pub fn backend_and_point(label: &str) -> (&str, &str) {
    let at = label
        .match_indices("-c")
        .map(|(i, _)| i)
        .filter(|&i| label[i + 2..].starts_with(|c: char| c.is_ascii_digit()))
        .last();
    match at {
        Some(i) => (&label[..i], &label[i + 1..]),
        None => (label, ""),
    }
}

/// The numbers of a point name, for ordering: `c1000-r25` -> [1000, 25].
fn point_key(point: &str) -> Vec<u64> {
    point
        .split('-')
        .map(|p| p.trim_start_matches(|c: char| c.is_ascii_alphabetic()))
        .map(|n| n.parse().unwrap_or(u64::MAX))
        .collect()
}

/// Position of a backend in the canonical order (unknown ones last).
pub fn backend_rank(name: &str) -> usize {
    crate::plan::Backend::ALL
        .iter()
        .position(|b| b.name() == name)
        .unwrap_or(usize::MAX)
}

/// The runs grouped by label, ordered by point, then by backend in canonical order
/// (rounds ran in shuffled order; the table should not).
fn groups(runs: &[Run]) -> Vec<Group<'_>> {
    let mut out = group_by(runs, |r| r.name.as_str());
    out.sort_by_key(|g| {
        let (backend, point) = backend_and_point(g.name);
        (point_key(point), backend_rank(backend))
    });
    out
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
        let (backend, point) = backend_and_point(g.name);
        let base = gs
            .iter()
            .find(|b| backend_and_point(b.name).1 == point)
            .filter(|b| b.name != g.name);
        let lat = |k: &'static str| move |r: &Run| r.get(&["latency", k]);
        let failed = g.runs.iter().filter(|r| r.failed).count();
        let errors: f64 = g.runs.iter().filter_map(|r| r.errors()).sum();
        rows.push(vec![
            point.to_owned(),
            backend.to_owned(),
            g.runs.len().to_string(),
            show(
                g.spread(|r| {
                    if open_loop {
                        r.get(&["workload", "rate_msgs_per_s"])
                    } else {
                        r.get(&["throughput_msgs_per_s"])
                    }
                }),
                |v| fixed(Some(v), 0),
            ),
            marks_cell(g.runs.iter().map(|r| r.bound_mark())),
            show(g.spread(Run::cpu_us_per_msg), |v| format!("{v:.2}")),
            base.map_or_else(|| "1".into(), |b| cpu_ratio(b, g)),
            show(g.spread(lat("p50_us")), |v| us_or_dash(Some(v))),
            show(g.spread(lat("p99_us")), |v| us_or_dash(Some(v))),
            show(g.spread(lat("p999_us")), |v| us_or_dash(Some(v))),
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
    use crate::report::Json;

    fn run(name: &str, round: u64, cpu_s: f64, tput: f64) -> Run {
        let summary = format!(
            r#"{{"round": {round}, "throughput_msgs_per_s": {tput}, "workload": {{"size": 64}},
               "latency": {{"p50_us": 50, "p99_us": 90, "p999_us": 200}}}}"#
        );
        let server = format!(r#"{{"cpu_user_s": 0, "cpu_sys_s": {cpu_s}, "bytes_in": 64000000}}"#);
        Run {
            name: name.into(),
            summary: serde_json::from_str::<Json>(&summary).expect("json"),
            server: serde_json::from_str::<Json>(&server).expect("json"),
            hold: serde_json::from_str::<Json>("{}").expect("json"),
            failed: false,
        }
    }

    fn marked(mut r: Run, mark: &str) -> Run {
        let bound =
            serde_json::from_str::<Json>(&format!(r#"{{"mark": "{mark}"}}"#)).expect("json");
        r.summary.set("bound", bound);
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
    fn labels_split_into_backend_and_point() {
        assert_eq!(
            backend_and_point("tokio-uring-c100"),
            ("tokio-uring", "c100")
        );
        assert_eq!(backend_and_point("uring-c1000-r25"), ("uring", "c1000-r25"));
        assert_eq!(backend_and_point("epoll"), ("epoll", ""));
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
