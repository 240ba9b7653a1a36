//! `--export FORMAT FILE`: every case's metrics (the median over rounds, with the range
//! where the format has one) in the JSON that benchmark trackers read:
//! - `bencher`: Bencher Metric Format, `{benchmark: {measure: {value, lower_value,
//!   upper_value}}}` (bencher.dev/docs/reference/bencher-metric-format);
//! - `github-benchmark`: github-action-benchmark's `customSmallerIsBetter` list,
//!   `[{name, unit, value, range, extra}]`, with the metrics where lower is better;
//! - `github-benchmark-bigger`: its `customBiggerIsBetter` list, with the others
//!   (one file holds one direction: that tool's list has no per-entry direction).

use super::baseline::side;
use super::cases::Case;
use super::metric::{Better, METRICS};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// A tracker's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Bencher,
    GithubSmaller,
    GithubBigger,
}

const FORMATS: [(&str, Format); 3] = [
    ("bencher", Format::Bencher),
    ("github-benchmark", Format::GithubSmaller),
    ("github-benchmark-bigger", Format::GithubBigger),
];

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        FORMATS
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                format!(
                    "--export {s}: unknown format; give one of bencher, github-benchmark (customSmallerIsBetter), github-benchmark-bigger (customBiggerIsBetter), then the file"
                )
            })
    }
}

/// One `--export FORMAT FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub format: Format,
    pub path: PathBuf,
}

/// `--export` values as clap gives them (FORMAT, FILE, FORMAT, FILE, ...).
pub fn parse_pairs(values: &[String]) -> Result<Vec<Export>, String> {
    values
        .chunks(2)
        .map(|p| match p {
            [f, file] if !file.is_empty() => Ok(Export {
                format: Format::parse(f)?,
                path: PathBuf::from(file),
            }),
            _ => Err("--export wants a format and a file: --export bencher results.json".into()),
        })
        .collect()
}

fn number(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// The benchmark name of a case: `latency/uring-c1000-r50`.
fn bench_name(c: &Case) -> String {
    format!("{}/{}", c.scenario, c.name)
}

/// Every (case, metric) with a value: the name, the metric, its median/sum and range.
fn points(
    cases: &[Case],
) -> Vec<(
    &Case,
    &'static super::metric::Metric,
    crate::report::stats::Spread,
)> {
    cases
        .iter()
        .flat_map(|c| {
            METRICS
                .iter()
                .filter(|m| c.has(m))
                .filter_map(move |m| Some((c, m, side(c, m)?)))
        })
        .collect()
}

/// The file's text in `format`.
pub fn render(format: Format, cases: &[Case]) -> String {
    let value = match format {
        Format::Bencher => {
            let mut benches = Map::new();
            for (c, m, s) in points(cases) {
                let mut metric = Map::new();
                metric.insert("value".into(), number(s.median));
                if s.n > 1 && s.min != s.max {
                    metric.insert("lower_value".into(), number(s.min));
                    metric.insert("upper_value".into(), number(s.max));
                }
                let entry = benches
                    .entry(bench_name(c))
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(o) = entry {
                    o.insert(m.name.into(), Value::Object(metric));
                }
            }
            Value::Object(benches)
        }
        Format::GithubSmaller | Format::GithubBigger => {
            let want = if format == Format::GithubSmaller {
                Better::Lower
            } else {
                Better::Higher
            };
            let list: Vec<Value> = points(cases)
                .into_iter()
                .filter(|(_, m, _)| m.better == want)
                .map(|(c, m, s)| {
                    let mut e = json!({
                        "name": format!("{} {}", bench_name(c), m.name),
                        "unit": if m.unit.is_empty() { "count" } else { m.unit },
                        "value": number(s.median),
                        "extra": "1 round",
                    });
                    if s.n > 1 {
                        let half = (s.max - s.median).max(s.median - s.min);
                        e["range"] = json!(format!("± {}", (m.show)(half)));
                        e["extra"] = json!(format!(
                            "median of {} rounds, range {}-{}",
                            s.n,
                            (m.show)(s.min),
                            (m.show)(s.max)
                        ));
                    }
                    e
                })
                .collect();
            Value::Array(list)
        }
    };
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::gate::cases::{collect, tests::run_folder};
    use crate::report::rundir::tests::TempDir;

    fn cases(t: &TempDir) -> Vec<Case> {
        for (r, cpu) in [(1, 4.0), (2, 4.4), (3, 4.2)] {
            run_folder(
                &t.0,
                "s-h-pingpong",
                r,
                "uring-c100",
                "closed",
                (cpu, 90.0, 1000.0),
            );
        }
        collect(std::slice::from_ref(&t.0)).expect("cases")
    }

    #[test]
    fn bencher_metric_format() {
        let t = TempDir::new("export-bencher");
        let v: Value = serde_json::from_str(&render(Format::Bencher, &cases(&t))).expect("json");
        let bench = v["pingpong/uring-c100"].as_object().expect("a benchmark");
        let cpu = &bench["cpu_us_per_msg"];
        assert_eq!(cpu["value"], json!(4.2));
        assert_eq!(
            (cpu["lower_value"].clone(), cpu["upper_value"].clone()),
            (json!(4.0), json!(4.4))
        );
        // The published schema: every measure an object whose `value` is a number and
        // whose other keys are lower_value/upper_value numbers.
        for b in v.as_object().expect("object").values() {
            for m in b.as_object().expect("measures").values() {
                let m = m.as_object().expect("metric");
                assert!(m["value"].is_number());
                assert!(m
                    .iter()
                    .all(
                        |(k, x)| ["value", "lower_value", "upper_value"].contains(&k.as_str())
                            && x.is_number()
                    ));
            }
        }
        // Identical rounds: no range.
        assert!(bench["p99_us"].get("lower_value").is_none());
    }

    #[test]
    fn github_action_benchmark_lists() {
        let t = TempDir::new("export-github");
        let cs = cases(&t);
        let small: Value = serde_json::from_str(&render(Format::GithubSmaller, &cs)).expect("json");
        let list = small.as_array().expect("a list");
        let cpu = list
            .iter()
            .find(|e| e["name"] == "pingpong/uring-c100 cpu_us_per_msg")
            .expect("cpu entry");
        assert_eq!(
            (cpu["unit"].clone(), cpu["value"].clone()),
            (json!("µs"), json!(4.2))
        );
        assert_eq!(cpu["range"], json!("± 0.20"));
        assert_eq!(cpu["extra"], json!("median of 3 rounds, range 4.00-4.40"));
        for e in list {
            let o = e.as_object().expect("entry");
            assert!(o["name"].is_string() && o["unit"].is_string() && o["value"].is_number());
            assert!(!e["name"].as_str().unwrap_or("").contains("msgs_per_s"));
        }
        let big: Value = serde_json::from_str(&render(Format::GithubBigger, &cs)).expect("json");
        let names: Vec<&str> = big
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert_eq!(
            names,
            vec!["pingpong/uring-c100 msgs_per_s", "pingpong/uring-c100 held"]
        );
    }

    #[test]
    fn export_arguments() {
        let e = parse_pairs(&[
            "bencher".into(),
            "b.json".into(),
            "github-benchmark".into(),
            "g.json".into(),
        ])
        .expect("pairs");
        assert_eq!(
            e[1],
            Export {
                format: Format::GithubSmaller,
                path: "g.json".into()
            }
        );
        let err = parse_pairs(&["csv".into(), "x".into()]).expect_err("unknown");
        assert!(err.contains("unknown format; give one of bencher"), "{err}");
    }
}
