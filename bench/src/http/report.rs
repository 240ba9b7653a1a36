//! The http scenario's tables: every server under both clients side by side (requests/s,
//! server CPU µs per request, latency), each number the median (min-max) over rounds, and
//! the ratio wrk / c1m-loadgen as the median of per-round paired ratios, so a reader
//! sees where the two clients agree; then the open-loop point (c1m-loadgen only).

use super::{Client, Server};
use crate::report::folder::{read_all, run_dirs, RunFolder};
use c1m_loadgen::report::fmt::{fixed, plain_table, us_or_dash};
use c1m_loadgen::report::stats::{ratio_cell, Rounded};
use c1m_loadgen::report::LatencySummary;
use std::fmt::Write as _;
use std::path::Path;

/// One run folder of the http scenario.
#[derive(Debug, Clone)]
pub struct HttpRun {
    pub server: Server,
    pub client: Client,
    /// `c1000`, `c1000-r50`.
    pub point: String,
    pub round: Option<u64>,
    pub failed: bool,
    /// Achieved requests/s.
    pub rps: Option<f64>,
    /// Open loop: the asked rate.
    pub rate: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    /// Server CPU µs per request (server_cpu.json).
    pub cpu: Option<f64>,
    pub errors: Option<f64>,
}

impl HttpRun {
    /// An http run folder read by [`RunFolder::read`]; None when its case record names no
    /// server and client (a folder recorded without case.json).
    pub fn of(run: &RunFolder) -> Option<HttpRun> {
        let server = Server::from_name(run.case.server.as_deref()?)?;
        let client = Client::from_name(run.case.client.as_deref()?)?;
        let lat = |f: fn(&LatencySummary) -> f64| run.get(|s| f(&s.latency));
        Some(HttpRun {
            server,
            client,
            point: run.case.point.clone(),
            round: run.case.round,
            failed: run.failed,
            rps: run.get(|s| s.throughput_msgs_per_s),
            rate: run.case.rate_req_per_s,
            p50: lat(|l| l.p50_us),
            p99: lat(|l| l.p99_us),
            p999: lat(|l| l.p999_us),
            cpu: if run.failed {
                None
            } else {
                run.window_cpu_us_per_req
            },
            errors: run.errors(),
        })
    }
}

/// Every http run of a scenario folder, in run order, and a note for each folder that
/// could not be read.
pub fn load_runs_noted(sdir: &Path) -> (Vec<HttpRun>, Vec<String>) {
    let (runs, notes) = read_all(&run_dirs(sdir));
    (runs.iter().filter_map(HttpRun::of).collect(), notes)
}

/// Every http run of a scenario folder, in run order.
pub fn load_runs(sdir: &Path) -> Vec<HttpRun> {
    load_runs_noted(sdir).0
}

impl Rounded for HttpRun {
    fn round(&self) -> Option<u64> {
        self.round
    }
}

/// The rounds of one (server, client, point).
type Group<'a> = c1m_loadgen::report::stats::Group<'a, HttpRun>;

fn group<'a>(runs: &'a [HttpRun], server: Server, client: Client, point: &str) -> Group<'a> {
    Group {
        name: "",
        runs: runs
            .iter()
            .filter(|r| r.server == server && r.client == client && r.point == point)
            .collect(),
    }
}

/// "median (min-max)" of `f` over the rounds, "-" without a value.
fn cell(g: &Group<'_>, f: fn(&HttpRun) -> Option<f64>, show: fn(f64) -> String) -> String {
    g.spread(f).map_or_else(|| "-".into(), |s| s.format(show))
}

/// Errors summed over the rounds, FAILED when a round failed.
fn errors(g: &Group<'_>) -> String {
    if g.runs.is_empty() {
        return "-".into();
    }
    let e: f64 = g.runs.iter().filter_map(|r| r.errors).sum();
    let failed = g.runs.iter().filter(|r| r.failed).count();
    fixed(Some(e), 0) + if failed > 0 { " FAILED" } else { "" }
}

/// `this / base` of `f`: the median (min-max) of per-round paired ratios, "~" when the
/// rounds fall on both sides of 1.0.
fn ratio(base: &Group<'_>, this: &Group<'_>, f: fn(&HttpRun) -> Option<f64>) -> String {
    ratio_cell(&this.ratios_to(base, f)).unwrap_or_else(|| "-".into())
}

fn rps(r: &HttpRun) -> Option<f64> {
    r.rps
}
fn cpu(r: &HttpRun) -> Option<f64> {
    r.cpu
}
fn p50(r: &HttpRun) -> Option<f64> {
    r.p50
}
fn p99(r: &HttpRun) -> Option<f64> {
    r.p99
}
fn p999(r: &HttpRun) -> Option<f64> {
    r.p999
}
fn rate(r: &HttpRun) -> Option<f64> {
    r.rate
}
fn whole(v: f64) -> String {
    fixed(Some(v), 0)
}
fn two(v: f64) -> String {
    format!("{v:.2}")
}
fn us(v: f64) -> String {
    us_or_dash(Some(v))
}

/// The servers of `runs` in table order, and the points (closed loop first).
fn servers_and_points(runs: &[HttpRun]) -> (Vec<Server>, Vec<String>, Vec<String>) {
    let mut servers: Vec<Server> = runs.iter().map(|r| r.server).collect();
    servers.sort_by_key(|s| s.rank());
    servers.dedup();
    let mut points: Vec<String> = runs.iter().map(|r| r.point.clone()).collect();
    points.sort();
    points.dedup();
    let (open, closed) = points.into_iter().partition(|p| p.contains("-r"));
    (servers, closed, open)
}

/// The closed-loop tables of `point`: requests/s, server CPU, latency.
fn closed_tables(runs: &[HttpRun], servers: &[Server], point: &str) -> String {
    let (lg, wk) = (Client::Loadgen, Client::Wrk);
    let first = servers.first().copied();
    let mut tput = Vec::new();
    let mut cost = Vec::new();
    let mut lat = Vec::new();
    for &s in servers {
        let (a, b) = (group(runs, s, lg, point), group(runs, s, wk, point));
        let vs = |c: Client| match first {
            Some(f) if f != s => ratio(&group(runs, f, c, point), &group(runs, s, c, point), cpu),
            _ => "1".into(),
        };
        tput.push(vec![
            s.name().into(),
            format!("{} / {}", a.runs.len(), b.runs.len()),
            cell(&a, rps, whole),
            cell(&b, rps, whole),
            ratio(&a, &b, rps),
            format!("{} / {}", errors(&a), errors(&b)),
        ]);
        cost.push(vec![
            s.name().into(),
            cell(&a, cpu, two),
            cell(&b, cpu, two),
            ratio(&a, &b, cpu),
            vs(lg),
            vs(wk),
        ]);
        lat.push(vec![
            s.name().into(),
            cell(&a, p50, us),
            cell(&b, p50, us),
            ratio(&a, &b, p50),
            cell(&a, p99, us),
            cell(&b, p99, us),
            ratio(&a, &b, p99),
            cell(&a, p999, us),
            "n/a".into(),
        ]);
    }
    let base = first.map_or("the first server", |f| f.name());
    let mut md = String::from("### Requests/s\n\n");
    md.push_str(&plain_table(
        &[
            "server",
            "rounds (c1m-loadgen / wrk)",
            "c1m-loadgen",
            "wrk",
            "wrk / c1m-loadgen",
            "errors (c1m-loadgen / wrk)",
        ],
        &tput,
    ));
    md.push_str("\n\n### Server CPU µs per request\n\n");
    let (h4, h5) = (
        format!("vs {base} (c1m-loadgen)"),
        format!("vs {base} (wrk)"),
    );
    md.push_str(&plain_table(
        &[
            "server",
            "c1m-loadgen",
            "wrk",
            "wrk / c1m-loadgen",
            &h4,
            &h5,
        ],
        &cost,
    ));
    md.push_str("\n\n### Latency µs\n\n");
    md.push_str(&plain_table(
        &[
            "server",
            "p50 c1m-loadgen",
            "p50 wrk",
            "wrk / c1m-loadgen",
            "p99 c1m-loadgen",
            "p99 wrk",
            "wrk / c1m-loadgen",
            "p99.9 c1m-loadgen",
            "p99.9 wrk",
        ],
        &lat,
    ));
    md.push_str("\n\n");
    md
}

/// The open-loop table of `point` (c1m-loadgen only).
fn open_table(runs: &[HttpRun], servers: &[Server], point: &str) -> String {
    let lg = Client::Loadgen;
    let first = servers.first().copied();
    let rows: Vec<Vec<String>> = servers
        .iter()
        .map(|&s| {
            let g = group(runs, s, lg, point);
            let vs = match first {
                Some(f) if f != s => ratio(&group(runs, f, lg, point), &g, cpu),
                _ => "1".into(),
            };
            vec![
                s.name().into(),
                g.runs.len().to_string(),
                cell(&g, rate, whole),
                cell(&g, rps, whole),
                cell(&g, cpu, two),
                vs,
                cell(&g, p50, us),
                cell(&g, p99, us),
                cell(&g, p999, us),
                errors(&g),
            ]
        })
        .collect();
    let base = first.map_or("the first server", |f| f.name());
    let h = format!("CPU vs {base}");
    let mut md = plain_table(
        &[
            "server",
            "rounds",
            "rate req/s",
            "req/s",
            "srv CPU µs/req",
            &h,
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "errors",
        ],
        &rows,
    );
    md.push_str("\n\n");
    md
}

/// What the http tables mean, printed under them.
pub const NOTE: &str = "Each number is the median over rounds with (min-max). Ratios are medians of per-round paired ratios (both clients of a server, or two servers under one client, ran in the same round); \"~\" marks a ratio whose rounds fall on both sides of 1.0. Server CPU µs per request: user+sys CPU of the server's whole process group (nginx: master and workers) from /proc over the client's measured window, divided by the requests answered in it, the same for every server under every client. wrk is closed loop only: it cannot hold a constant rate, so the open-loop point is c1m-loadgen's alone; wrk's --latency stops at p99 (no p99.9) and is not corrected for coordinated omission.";

/// The body of the scenario's compare.md after its heading.
pub fn compare_md(sdir: &Path, open_how: &str) -> String {
    let (runs, notes) = load_runs_noted(sdir);
    if runs.is_empty() {
        return "No run produced results.\n".into();
    }
    let (servers, closed, open) = servers_and_points(&runs);
    let mut md = String::new();
    for p in &closed {
        let conns = p.trim_start_matches('c');
        let _ = write!(
            md,
            "## {conns} connections, closed loop: c1m-loadgen and wrk side by side\n\n"
        );
        md.push_str(&closed_tables(&runs, &servers, p));
    }
    for p in &open {
        let rate = runs
            .iter()
            .find(|r| &r.point == p)
            .and_then(|r| r.rate)
            .map_or_else(|| "-".into(), whole);
        let conns = p
            .split('-')
            .next()
            .unwrap_or_default()
            .trim_start_matches('c');
        let _ = write!(md, "## {conns} connections, open loop at {rate} requests/s: c1m-loadgen only\n\nwrk cannot hold a constant rate (it is closed loop only), so this point has no wrk column. Rate: {open_how}. Latency from the intended send time (coordinated omission corrected).\n\n");
        md.push_str(&open_table(&runs, &servers, p));
    }
    for n in notes {
        let _ = writeln!(md, "{n}");
    }
    md.push_str(NOTE);
    md.push('\n');
    md
}

/// The http section of the headline: the closed loop side by side (requests/s, server
/// CPU and p99 per client), then the open-loop point.
pub fn headline_section(sdir: &Path) -> String {
    let runs = load_runs(sdir);
    let (servers, closed, open) = servers_and_points(&runs);
    let (lg, wk) = (Client::Loadgen, Client::Wrk);
    let mut rows = Vec::new();
    for p in &closed {
        for &s in &servers {
            let (a, b) = (group(&runs, s, lg, p), group(&runs, s, wk, p));
            rows.push(vec![
                p.clone(),
                s.name().into(),
                cell(&a, rps, whole),
                cell(&b, rps, whole),
                cell(&a, cpu, two),
                cell(&b, cpu, two),
                ratio(&a, &b, cpu),
                cell(&a, p99, us),
                cell(&b, p99, us),
                format!("{} / {}", errors(&a), errors(&b)),
            ]);
        }
    }
    for p in &open {
        for &s in &servers {
            let a = group(&runs, s, lg, p);
            let rate = cell(&a, rate, whole);
            rows.push(vec![
                format!("{p} (open loop at {rate} req/s)"),
                s.name().into(),
                cell(&a, rps, whole),
                "n/a".into(),
                cell(&a, cpu, two),
                "n/a".into(),
                "-".into(),
                cell(&a, p99, us),
                "n/a".into(),
                errors(&a),
            ]);
        }
    }
    let header = [
        "point",
        "server",
        "req/s c1m-loadgen",
        "req/s wrk",
        "srv CPU µs/req c1m-loadgen",
        "srv CPU µs/req wrk",
        "CPU wrk / c1m-loadgen",
        "p99 µs c1m-loadgen",
        "p99 µs wrk",
        "errors (c1m-loadgen / wrk)",
    ];
    let mut out = plain_table(&header, &rows);
    out.push_str("\n\n");
    out.push_str(NOTE);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Backend;
    use c1m_machine::tempdir::TempDir;
    use std::fs;

    /// A run folder as run.rs leaves it.
    /// A run folder of (server, client, point) in `round` with (req/s, CPU µs/req).
    fn run(sdir: &Path, folder: &str, what: (&str, &str, &str), round: u64, nums: (f64, f64)) {
        let ((server, client, point), (rps, cpu)) = (what, nums);
        let d = sdir.join(folder);
        fs::create_dir_all(&d).unwrap();
        let rate = if point.contains("-r") {
            "25000"
        } else {
            "null"
        };
        fs::write(
            d.join("case.json"),
            format!(r#"{{"server": "{server}", "client": "{client}", "point": "{point}", "round": {round}, "rate_req_per_s": {rate}}}"#),
        )
        .unwrap();
        let p999 = if client == "wrk" {
            String::new()
        } else {
            r#", "p999_us": 900"#.into()
        };
        fs::write(
            d.join("summary.json"),
            format!(r#"{{"throughput_msgs_per_s": {rps}, "verify_errors": 0, "latency": {{"p50_us": {}, "p99_us": 400{p999}}}}}"#, rps / 1000.0),
        )
        .unwrap();
        fs::write(
            d.join("server_cpu.json"),
            format!(r#"{{"cpu_us_per_request": {cpu}}}"#),
        )
        .unwrap();
        let mut list = fs::read_to_string(sdir.join("runs.txt")).unwrap_or_default();
        list.push_str(&format!("{folder}\n"));
        fs::write(sdir.join("runs.txt"), list).unwrap();
    }

    #[test]
    fn both_clients_side_by_side() {
        let t = TempDir::new();
        let s = &t.0;
        for r in 1..=3u64 {
            let f = r as f64;
            run(
                s,
                &format!("round-{r}/uring-loadgen-c1000"),
                ("uring", "c1m-loadgen", "c1000"),
                r,
                (100_000.0 * f, 5.0),
            );
            run(
                s,
                &format!("round-{r}/uring-wrk-c1000"),
                ("uring", "wrk", "c1000"),
                r,
                (80_000.0 * f, 6.0),
            );
            run(
                s,
                &format!("round-{r}/nginx-loadgen-c1000"),
                ("nginx", "c1m-loadgen", "c1000"),
                r,
                (90_000.0, 7.0 + f),
            );
            run(
                s,
                &format!("round-{r}/nginx-wrk-c1000"),
                ("nginx", "wrk", "c1000"),
                r,
                (70_000.0, 9.0),
            );
            run(
                s,
                &format!("round-{r}/uring-loadgen-c1000-r50"),
                ("uring", "c1m-loadgen", "c1000-r50"),
                r,
                (25_000.0, 10.0),
            );
            run(
                s,
                &format!("round-{r}/nginx-loadgen-c1000-r50"),
                ("nginx", "c1m-loadgen", "c1000-r50"),
                r,
                (25_000.0, 12.0),
            );
        }
        let runs = load_runs(s);
        assert_eq!(runs.len(), 18);
        assert_eq!(runs[0].server, Server::C1m(Backend::Uring));
        let md = compare_md(s, "50% of nginx's");
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "## 1000 connections, closed loop: c1m-loadgen and wrk side by side"
        );
        // wrk / c1m-loadgen per round: 0.8 every round.
        assert!(md.contains("| uring | 3 / 3 | 200,000 (100,000-300,000) | 160,000 (80,000-240,000) | 0.80 | 0 / 0 |"), "{md}");
        // nginx CPU: c1m-loadgen 8 (7.. no: 8, 9, 10), wrk 9; vs uring paired.
        assert!(md.contains("| nginx | 9.00 (8.00-10.00) | 9.00 | 1.00 (0.90-1.12) ~ | 1.80 (1.60-2.00) | 1.50 |"), "{md}");
        assert!(
            md.contains(
                "| uring | 200 (100-300) | 160 (80-240) | 0.80 | 400 | 400 | 1.00 | 900 | n/a |"
            ),
            "{md}"
        );
        assert!(
            md.contains("## 1000 connections, open loop at 25,000 requests/s: c1m-loadgen only"),
            "{md}"
        );
        assert!(md.contains("wrk cannot hold a constant rate"));
        assert!(
            md.contains("| nginx | 3 | 25,000 | 25,000 | 12.00 | 1.20 |"),
            "{md}"
        );
        assert!(md.ends_with(&format!("{NOTE}\n")));
        let h = headline_section(s);
        assert!(h.contains("| c1000 | uring | 200,000 (100,000-300,000) | 160,000 (80,000-240,000) | 5.00 | 6.00 | 1.20 | 400 | 400 | 0 / 0 |"), "{h}");
        assert!(
            h.contains(
                "| c1000-r50 (open loop at 25,000 req/s) | nginx | 25,000 | n/a | 12.00 | n/a |"
            ),
            "{h}"
        );
    }

    #[test]
    fn failed_runs_show_as_failed() {
        let t = TempDir::new();
        let s = &t.0;
        run(
            s,
            "nginx-wrk-c1000",
            ("nginx", "wrk", "c1000"),
            1,
            (70_000.0, 9.0),
        );
        let d = s.join("nginx-loadgen-c1000");
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("case.json"),
            r#"{"server": "nginx", "client": "c1m-loadgen", "point": "c1000"}"#,
        )
        .unwrap();
        fs::write(d.join("FAILED"), "loadgen exit status 2\n").unwrap();
        fs::write(s.join("runs.txt"), "nginx-wrk-c1000\nnginx-loadgen-c1000\n").unwrap();
        let md = compare_md(s, "-");
        assert!(
            md.contains("| nginx | 1 / 1 | - | 70,000 | - | 0 FAILED / 0 |"),
            "{md}"
        );
        assert_eq!(
            compare_md(&s.join("none"), "-"),
            "No run produced results.\n"
        );
    }

    #[test]
    fn the_headline_has_an_http_section() {
        let t = TempDir::new();
        let s = t.0.join("2026-11-30-1800-vm-http");
        run(
            &s,
            "nginx-wrk-c1000",
            ("nginx", "wrk", "c1000"),
            1,
            (70_000.0, 9.0),
        );
        let h = crate::report::headline(&[s]);
        assert!(h.starts_with("### http (2026-11-30-1800-vm-http)\n\n| point | server | req/s c1m-loadgen | req/s wrk |"), "{h}");
        assert!(
            h.contains("| c1000 | nginx | - | 70,000 | - | 9.00 | - |"),
            "{h}"
        );
    }
}
