//! The experiment table of a scenario's compare.md: one row per variant and point,
//! each column the median and range over rounds (`c1m_loadgen::report::stats`), and for
//! ablations a verdict: does putting the key back make a clear difference (the paired
//! rounds all on one side), none, or can it not be told (fewer than [`MIN_PAIRS`] paired
//! rounds).

use super::kernel::{KERNEL_FILE, SHOWN};
use super::Study;
use crate::report::folder::{read_all, run_dirs, RunFolder};
use c1m_loadgen::report::fmt::{bytes_or_dash, g3, plain_table, us_or_dash};
use c1m_loadgen::report::stats::{group_by, pair_rounds, Group, Rounded, Spread};
use serde_json::Value;
use std::path::Path;

/// A run folder and its kernel.json.
pub struct Row {
    pub run: RunFolder,
    pub kernel: Value,
}

impl Rounded for Row {
    fn round(&self) -> Option<u64> {
        self.run.round()
    }
}

/// How a column reads its value from a row.
type Getter = Box<dyn Fn(&Row) -> Option<f64>>;

/// One column: its header, how to read it from a row, how to print a value.
struct Column {
    name: &'static str,
    get: Getter,
    show: fn(f64) -> String,
}

fn count(v: f64) -> String {
    format!("{}", v.round() as i64)
}

fn us(v: f64) -> String {
    us_or_dash(Some(v))
}

fn bytes(v: f64) -> String {
    bytes_or_dash(Some(v))
}

fn columns() -> Vec<Column> {
    let s = |name, f: fn(&c1m_loadgen::report::Summary) -> Option<f64>, show| Column {
        name,
        get: Box::new(move |r: &Row| r.run.summary.as_ref().and_then(f)),
        show,
    };
    let mut c = vec![
        s("ramp s", |s| Some(s.ramp_s), |v| format!("{v:.2}")),
        s("connects/s", |s| s.connects_per_s, g3),
        s(
            "failed connects",
            |s| Some(s.connections_failed as f64),
            count,
        ),
        s("msgs/s", |s| Some(s.throughput_msgs_per_s), g3),
        s("p50 µs", |s| Some(s.latency.p50_us), us),
        s("p99 µs", |s| Some(s.latency.p99_us), us),
        s("p99.9 µs", |s| Some(s.latency.p999_us), us),
        Column {
            name: "server CPU µs/msg",
            get: Box::new(|r: &Row| r.run.cpu_us_per_msg()),
            show: |v| format!("{v:.2}"),
        },
        Column {
            name: "server RSS/conn",
            get: Box::new(|r: &Row| r.run.server.as_ref()?.rss_per_conn_bytes),
            show: bytes,
        },
        Column {
            name: "slab/conn",
            get: Box::new(|r: &Row| {
                // The one slab/conn of the kit: /proc/slabinfo at the peak (hold.json).
                crate::report::folder::num(&r.run.hold, "slab_per_connection_bytes")
            }),
            show: bytes,
        },
    ];
    for k in SHOWN.iter().chain(&["softnet.dropped"]) {
        c.push(Column {
            name: k
                .rsplit('.')
                .next()
                .filter(|_| !k.starts_with("softnet"))
                .unwrap_or("softnet drops"),
            get: Box::new(move |r: &Row| r.kernel.get("totals")?.get(*k)?.as_f64()),
            show: count,
        });
    }
    c
}

/// Failed connects by errno over the rounds (`ECONNREFUSED 3, ETIMEDOUT 1`), `-` if none.
fn errnos(g: &Group<'_, Row>) -> String {
    let mut all: std::collections::BTreeMap<&str, u64> = Default::default();
    for r in &g.runs {
        if let Some(s) = &r.run.summary {
            for (k, v) in &s.connect_errors {
                *all.entry(k.as_str()).or_default() += v;
            }
        }
    }
    match all.is_empty() {
        true => "-".into(),
        false => all
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Paired rounds a verdict needs: with two, a column moves one way by chance half the
/// time; with three a quarter, with five one in sixteen.
pub const MIN_PAIRS: usize = 3;

/// A verdict and what it weighed: how many columns had enough paired rounds to test,
/// how many moved all one way, and how many of those chance alone would give.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub text: String,
    pub tested: usize,
    pub clear: usize,
    /// Expected 'clear' columns if nothing changed: each tested column with n paired
    /// rounds moves all one way with probability 2 / 2^n.
    pub chance: f64,
}

/// The verdict of group `g` against `base`, with its counts for the chance line under
/// the table: per column, the paired rounds' differences all of one sign is a clear
/// difference (shown with the median paired ratio, or the median difference where the
/// base is 0).
pub fn weigh(base: &Group<'_, Row>, g: &Group<'_, Row>) -> Verdict {
    let pairing = pair_rounds(&base.rounds(), &g.rounds());
    let mut clear = Vec::new();
    let (mut most_pairs, mut tested, mut chance) = (0, 0, 0.0);
    for c in columns() {
        let (b, t) = (base.values(&c.get), g.values(&c.get));
        let pairs: Vec<(f64, f64)> = pairing
            .pairs
            .iter()
            .filter_map(|&(i, j)| Some(((*b.get(i)?)?, (*t.get(j)?)?)))
            .collect();
        most_pairs = most_pairs.max(pairs.len());
        if pairs.len() < MIN_PAIRS {
            continue;
        }
        // A tied pair (often 0 = 0 for a kernel counter) can never be all one way:
        // such a column is not a test chance could pass.
        if pairs.iter().any(|(b, t)| b == t) {
            continue;
        }
        tested += 1;
        chance += 2.0 * 0.5f64.powi(pairs.len() as i32);
        let up = pairs.iter().all(|(b, t)| t > b);
        let down = pairs.iter().all(|(b, t)| t < b);
        if !(up || down) {
            continue;
        }
        let ratios: Vec<f64> = pairs
            .iter()
            .filter(|(b, _)| *b != 0.0)
            .map(|(b, t)| t / b)
            .collect();
        let size = match (Spread::of(&ratios), ratios.len() == pairs.len()) {
            (Some(r), true) => format!("×{:.3}", r.median),
            _ => {
                let d: Vec<f64> = pairs.iter().map(|(b, t)| t - b).collect();
                Spread::of(&d)
                    .map_or_else(String::new, |d| format!("{:+}", d.median.round() as i64))
            }
        };
        clear.push(format!("{} {}{size}", c.name, if up { "↑" } else { "↓" }));
    }
    let text = match (most_pairs, clear.is_empty()) {
        (n, _) if n < MIN_PAIRS => {
            format!("cannot tell ({n} paired rounds, fewer than {MIN_PAIRS})")
        }
        (_, true) => "none".into(),
        (_, false) => format!("clear: {}", clear.join(", ")),
    };
    Verdict {
        text,
        tested,
        clear: clear.len(),
        chance,
    }
}

/// The line under an ablation's table: how many 'clear' columns it shows against how
/// many chance alone would give, so a reader can tell a finding from noise.
pub fn chance_line(verdicts: &[Verdict]) -> String {
    let tested: usize = verdicts.iter().map(|v| v.tested).sum();
    let clear: usize = verdicts.iter().map(|v| v.clear).sum();
    let chance: f64 = verdicts.iter().map(|v| v.chance).sum();
    format!(
        "- 'clear' columns: {clear} of {tested} tested; chance alone would give about {chance:.0} \
         (a column with n paired rounds moves all one way with probability 2/2^n even when \
         nothing changed): {}\n",
        if tested == 0 {
            "nothing to weigh"
        } else if (clear as f64) <= 2.0 * chance.max(0.5) {
            "no more than chance, so no single mark is a finding on its own"
        } else {
            "more than chance: the marks that repeat over a key's points are the findings"
        }
    )
}

/// The rows of `runs` (not failed ones) as a markdown table, with a verdict column when
/// `study` pairs variants, and those verdicts.
pub fn table_and_verdicts(study: &Study, rows: &[Row]) -> (String, Vec<Verdict>) {
    let groups = group_by(rows, |r| r.run.key.as_str());
    let cols = columns();
    let ablation = !study.baseline.is_empty();
    let mut header: Vec<&str> = vec!["variant", "point", "rounds"];
    header.extend(cols.iter().map(|c| c.name));
    header.push("failed by errno");
    if ablation {
        header.push("verdict vs the full profile");
    }
    let mut out = Vec::new();
    let mut verdicts = Vec::new();
    for g in &groups {
        let first = &g.runs[0].run;
        let mut row = vec![
            first.case.variant().to_owned(),
            first.case.point.clone(),
            g.runs.len().to_string(),
        ];
        for c in &cols {
            row.push(
                g.spread(&c.get)
                    .map_or_else(|| "-".into(), |s| s.format(c.show)),
            );
        }
        row.push(errnos(g));
        if ablation {
            let base = study.baseline.get(first.case.variant()).and_then(|b| {
                groups.iter().find(|o| {
                    let r = &o.runs[0].run;
                    r.case.variant() == b && r.case.point == first.case.point
                })
            });
            row.push(match base {
                Some(b) => {
                    let v = weigh(b, g);
                    let text = v.text.clone();
                    verdicts.push(v);
                    text
                }
                None if study.baseline.values().any(|b| b == first.case.variant()) => {
                    "(the baseline)".into()
                }
                None => "-".into(),
            });
        }
        out.push(row);
    }
    (plain_table(&header, &out), verdicts)
}

/// The experiment section of a scenario folder's compare.md.
pub fn study_table(study: &Study, sdir: &Path) -> String {
    let (runs, notes) = read_all(&run_dirs(sdir));
    let rows: Vec<Row> = runs
        .into_iter()
        .filter(|r| !r.failed)
        .map(|run| {
            let kernel = std::fs::read_to_string(run.dir.join(KERNEL_FILE))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null);
            Row { run, kernel }
        })
        .collect();
    let mut md = format!("\n## Experiment: {}\n\n", study.title);
    for n in &study.notes {
        md.push_str(&format!("- {n}\n"));
    }
    md.push_str("- each cell: median (min-max) over the rounds; kernel counters are deltas over the loadgen's run, summed over the namespaces (kernel.json in each run folder)\n");
    if !study.baseline.is_empty() {
        md.push_str("- verdict: a column whose paired rounds all move one way against the full profile (×median paired ratio, or the median difference where the profile's value is 0); with many columns and few rounds some 'clear' moves are chance: trust those that repeat over more rounds\n");
    }
    md.push('\n');
    if rows.is_empty() {
        md.push_str("No run succeeded: no table.\n");
    } else {
        let (table, verdicts) = table_and_verdicts(study, &rows);
        md.push_str(&table);
        if !study.baseline.is_empty() {
            md.push('\n');
            md.push_str(&chance_line(&verdicts));
        }
    }
    for n in notes {
        md.push_str(&format!("{n}\n"));
    }
    md
}
