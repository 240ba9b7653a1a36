//! Thresholds evaluated on cases: one ✓/✗ line per threshold with the measured value
//! and its spread, and one indented line per case when it selects several.

use super::baseline::{partner, ratio, separation, side};
use super::cases::Case;
use super::expr::{Subject, Threshold};
use crate::report::stats::{pair_rounds, paired_ratios, ratio_cell, Spread};

/// The outcome of one threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub pass: bool,
    /// The ✓/✗ line, then one indented line per case when there are several.
    pub lines: Vec<String>,
}

/// One case's (or point's) check.
struct Row {
    title: String,
    pass: bool,
    text: String,
}

fn mark(pass: bool) -> &'static str {
    if pass {
        "✓"
    } else {
        "✗"
    }
}

/// Whether `s` satisfies `t`: its median, or with `all:` its whole range.
fn holds(t: &Threshold, s: &Spread) -> bool {
    if t.range {
        t.op.holds_for_range(s.min, s.max, t.bound)
    } else {
        t.op.holds(s.median, t.bound)
    }
}

/// "1 round", "3 rounds".
fn rounds(n: usize) -> String {
    if n == 1 {
        "1 round".into()
    } else {
        format!("{n} rounds")
    }
}

fn failed_note(c: &Case) -> String {
    match c.failed() {
        0 => String::new(),
        f => format!("; {f} of {} rounds FAILED", c.runs.len()),
    }
}

/// The selected cases: selector, then (for a single variant) the variant.
fn selected<'a>(t: &Threshold, cases: &'a [Case]) -> Vec<&'a Case> {
    cases
        .iter()
        .filter(|c| t.select.matches(&c.scenario, &c.point))
        .filter(|c| match &t.subject {
            Subject::Variant(v) => &c.variant == v,
            _ => true,
        })
        .collect()
}

/// Why nothing could be checked: no case selected, or none with the metric (naming
/// the metrics the selected scenarios have).
fn nothing_to_check(t: &Threshold, all: &[Case], chosen: &[&Case]) -> String {
    if chosen.is_empty() {
        let mut have: Vec<String> = all
            .iter()
            .map(|c| format!("{} ({})", c.title(), c.variant))
            .collect();
        have.dedup();
        return format!(
            "no case matches; the cases are: {}",
            if have.is_empty() {
                "none".into()
            } else {
                have.join(", ")
            }
        );
    }
    let mut per: Vec<(String, Vec<&str>)> = Vec::new();
    for c in chosen {
        if !per.iter().any(|(s, _)| *s == c.scenario) {
            per.push((c.scenario.clone(), c.metric_names()));
        }
    }
    let listed: Vec<String> = per
        .iter()
        .map(|(s, m)| format!("{s} has {}", m.join(", ")))
        .collect();
    format!(
        "no selected case has {}; {}",
        t.metric.name,
        listed.join("; ")
    )
}

fn plain_row(t: &Threshold, c: &Case) -> Row {
    let m = t.metric;
    let title = c.title();
    let Some(s) = side(c, m) else {
        return Row {
            title,
            pass: false,
            text: format!("no value in any round{}", failed_note(c)),
        };
    };
    let text = match m.fold {
        super::metric::Fold::Sum => {
            let per = Spread::of(&c.values(m).into_iter().flatten().collect::<Vec<_>>())
                .filter(|p| p.n > 1)
                .map_or(String::new(), |p| {
                    format!(", per round {}", p.format(m.show))
                });
            format!(
                "{} over {}{per}",
                m.with_unit((m.show)(s.median)),
                rounds(s.n)
            )
        }
        super::metric::Fold::Median => {
            format!("{} over {}", m.with_unit(s.format(m.show)), rounds(s.n))
        }
    };
    Row {
        title,
        pass: c.failed() == 0 && holds(t, &s),
        text: text + &failed_note(c),
    }
}

fn ratio_rows(t: &Threshold, a: &str, b: &str, chosen: &[&Case]) -> Vec<Row> {
    let m = t.metric;
    let mut rows = Vec::new();
    for ca in chosen.iter().filter(|c| c.variant == a) {
        let Some(cb) = chosen.iter().find(|c| {
            c.variant == b
                && c.scenario == ca.scenario
                && c.client == ca.client
                && c.point == ca.point
        }) else {
            continue;
        };
        let pairing = pair_rounds(&cb.rounds(), &ca.rounds());
        let r = paired_ratios(&pairing, &cb.values(m), &ca.values(m));
        let title = format!("{} {a}/{b} {}", ca.scenario, ca.point);
        let failed = failed_note(ca) + &failed_note(cb);
        rows.push(match (Spread::of(&r), ratio_cell(&r)) {
            (Some(s), Some(cell)) => Row {
                title,
                pass: failed.is_empty() && holds(t, &s),
                text: format!("{cell} over {} (paired){failed}", rounds(s.n)),
            },
            _ => Row {
                title,
                pass: false,
                text: format!("no paired round has {} on both sides{failed}", m.name),
            },
        });
    }
    rows
}

fn baseline_row(t: &Threshold, c: &Case, old: &[Case]) -> Row {
    let m = t.metric;
    let title = c.title();
    let Some(o) = partner(c, old) else {
        return Row {
            title,
            pass: false,
            text: "not in the baseline (OLD has no such case)".into(),
        };
    };
    match (side(c, m), side(o, m)) {
        (Some(n), Some(os)) => match ratio(&n, &os) {
            Some(r) => Row {
                title,
                pass: c.failed() == 0 && holds(t, &r),
                text: format!(
                    "NEW/OLD {}; NEW {}, OLD {}; rounds separate: {}{}",
                    r.format(|v| format!("{v:.2}")),
                    m.with_unit(n.format(m.show)),
                    m.with_unit(os.format(m.show)),
                    separation(&r),
                    failed_note(c)
                ),
            },
            None => Row {
                title,
                pass: false,
                text: format!("the baseline's {} is 0: no ratio", m.name),
            },
        },
        _ => Row {
            title,
            pass: false,
            text: format!("no value on one side{}", failed_note(c)),
        },
    }
}

/// Checks `t` on `cases` (NEW), against `old` for a baseline threshold.
pub fn evaluate(t: &Threshold, cases: &[Case], old: Option<&[Case]>) -> Verdict {
    let fail = |why: String| Verdict {
        pass: false,
        lines: vec![format!("✗ {}: cannot be checked: {why}", t.text)],
    };
    let chosen = selected(t, cases);
    let with_metric: Vec<&Case> = chosen
        .iter()
        .copied()
        .filter(|c| t.metric.defined_for(&c.kind) || c.kind.is_empty())
        .collect();
    if with_metric.is_empty()
        || !with_metric
            .iter()
            .any(|c| c.has(t.metric) || c.failed() > 0)
    {
        return fail(nothing_to_check(t, cases, &chosen));
    }
    let rows: Vec<Row> = match (&t.subject, t.baseline) {
        (_, true) => match old {
            Some(old) => with_metric
                .iter()
                .map(|c| baseline_row(t, c, old))
                .collect(),
            None => return fail(
                "`x baseline` needs the baseline's folders: c1m-loadgen compare --baseline OLD NEW"
                    .into(),
            ),
        },
        (Subject::Ratio(a, b), false) => {
            let rows = ratio_rows(t, a, b, &with_metric);
            if rows.is_empty() {
                let mut vs: Vec<&str> = with_metric.iter().map(|c| c.variant.as_str()).collect();
                vs.sort_unstable();
                vs.dedup();
                return fail(format!(
                    "{a} and {b} are not both at any selected point; the variants there are {}",
                    vs.join(", ")
                ));
            }
            rows
        }
        _ => with_metric.iter().map(|c| plain_row(t, c)).collect(),
    };
    let pass = rows.iter().all(|r| r.pass);
    let head = match rows.as_slice() {
        [one] => format!("{} {}: {}: {}", mark(one.pass), t.text, one.title, one.text),
        _ => {
            let failing = rows.iter().filter(|r| !r.pass).count();
            let summary = if failing == 0 {
                format!("all {} cases pass", rows.len())
            } else {
                format!("{failing} of {} cases fail", rows.len())
            };
            format!("{} {}: {summary}", mark(pass), t.text)
        }
    };
    let mut lines = vec![head];
    if rows.len() > 1 {
        lines.extend(
            rows.iter()
                .map(|r| format!("  {} {}: {}", mark(r.pass), r.title, r.text)),
        );
    }
    Verdict { pass, lines }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::gate::cases::{collect, tests::run_folder};
    use crate::report::gate::expr::parse;
    use crate::report::rundir::tests::TempDir;
    use std::path::Path;

    /// latency at c1000-r50: uring CPU 4.0, 4.4, 4.2 and epoll 5.0, 5.0, 5.0 over three
    /// rounds; p99 100, 300, 200 µs for both; hold: one uring run.
    fn fixture(root: &Path) -> Vec<Case> {
        let sf = "2026-01-01-1200-h-latency";
        for (i, (cpu, p99)) in [(4.0, 100.0), (4.4, 300.0), (4.2, 200.0)]
            .into_iter()
            .enumerate()
        {
            let r = i as u64 + 1;
            run_folder(root, sf, r, "uring-c1000-r50", "rate", (cpu, p99, 1000.0));
            run_folder(root, sf, r, "epoll-c1000-r50", "rate", (5.0, p99, 1000.0));
        }
        run_folder(
            root,
            "2026-01-01-1200-h-hold",
            1,
            "uring",
            "heartbeat",
            (9.0, 50.0, 10.0),
        );
        collect(&[root.to_path_buf()]).expect("cases")
    }

    fn check(cases: &[Case], expr: &str) -> Verdict {
        evaluate(&parse(expr).expect(expr), cases, None)
    }

    #[test]
    fn medians_ranges_and_ratios() {
        let t = TempDir::new("eval");
        let cases = fixture(&t.0);
        let v = check(
            &cases,
            "uring/epoll cpu_us_per_msg <= 0.95 @latency-c1000-r50",
        );
        assert!(v.pass, "{v:?}");
        assert_eq!(
            v.lines,
            vec!["✓ uring/epoll cpu_us_per_msg <= 0.95 @latency-c1000-r50: latency uring/epoll c1000-r50: 0.84 (0.80-0.88) over 3 rounds (paired)"]
        );
        assert!(!check(&cases, "uring/epoll cpu_us_per_msg <= 0.8 @latency").pass);
        assert!(check(&cases, "all: uring/epoll cpu_us_per_msg <= 0.9").pass);
        // p99 median 200, range 100-300.
        let v = check(&cases, "uring p99_us < 250 @latency");
        assert!(v.pass, "{v:?}");
        assert!(
            v.lines[0].ends_with("latency uring-c1000-r50: 200 µs (100-300) over 3 rounds")
                || v.lines[0].contains("200 (100-300) µs"),
            "{v:?}"
        );
        assert!(!check(&cases, "all: uring p99_us < 250 @latency").pass);
        // Every case: three of them, one line each.
        let v = check(&cases, "p99_us < 150");
        assert!(!v.pass);
        assert_eq!(v.lines.len(), 4, "{v:?}");
        assert!(
            v.lines[0].starts_with("✗ p99_us < 150: 2 of 3 cases fail"),
            "{v:?}"
        );
        assert!(
            v.lines
                .iter()
                .any(|l| l.starts_with("  ✓ hold uring: 50.0 µs")),
            "{v:?}"
        );
        assert!(check(&cases, "held >= 100 @hold").pass);
        assert!(!check(&cases, "held > 100").pass);
    }

    #[test]
    fn errors_are_summed_and_failed_rounds_fail() {
        let t = TempDir::new("eval-errors");
        let cases = fixture(&t.0);
        assert!(check(&cases, "errors == 0").pass);
        let failed =
            t.0.join("2026-01-01-1200-h-latency/round-2/epoll-c1000-r50/FAILED");
        std::fs::write(failed, "server exit 1\n").expect("FAILED");
        let cases = collect(std::slice::from_ref(&t.0)).expect("cases");
        let v = check(&cases, "epoll cpu_us_per_msg < 100");
        assert!(!v.pass);
        assert!(v.lines[0].contains("1 of 3 rounds FAILED"), "{v:?}");
    }

    #[test]
    fn what_cannot_be_checked_says_what_there_is() {
        let t = TempDir::new("eval-missing");
        let cases = fixture(&t.0);
        let v = check(&cases, "msgs_per_s > 1 @hold");
        assert!(!v.pass);
        assert!(
            v.lines[0]
                .contains("cannot be checked: no selected case has msgs_per_s; hold has p50_us"),
            "{v:?}"
        );
        let v = check(&cases, "p99_us < 1 @churn");
        assert!(v.lines[0].contains("no case matches; the cases are: hold uring (uring), latency uring-c1000-r50 (uring)"), "{v:?}");
        let v = check(&cases, "uring/tokio p99_us < 1 @latency");
        assert!(v.lines[0].contains("uring and tokio are not both at any selected point; the variants there are epoll, uring"), "{v:?}");
        let v = check(&cases, "p99_us <= 1.05x baseline");
        assert!(v.lines[0].contains("needs the baseline's folders"), "{v:?}");
    }

    #[test]
    fn baseline_thresholds() {
        let t = TempDir::new("eval-baseline");
        let old = collect(&[{
            let d = t.0.join("old");
            fixture(&d);
            d
        }])
        .expect("old");
        let new = fixture(&t.0.join("new"));
        let v = evaluate(
            &parse("cpu_us_per_msg <= 1.05x baseline @latency").expect("p"),
            &new,
            Some(&old),
        );
        assert!(v.pass, "{v:?}");
        assert!(
            v.lines[1].contains(
                "NEW/OLD 1.00 (0.91-1.10); NEW 4.20 (4.00-4.40) µs, OLD 4.20 (4.00-4.40) µs"
            ) && v.lines[1].contains("rounds separate: no"),
            "{v:?}"
        );
        let v = evaluate(
            &parse("cpu_us_per_msg < 1x baseline").expect("p"),
            &new,
            Some(&old),
        );
        assert!(!v.pass);
    }
}
