//! The threshold grammar, parsed without touching a folder:
//!
//! ```text
//! [all:] [VARIANT | A/B] METRIC OP VALUE[x baseline] [@SCENARIO[-POINT] | @POINT]
//! OP: < <= > >= ==
//! ```
//!
//! `uring/epoll cpu_us_per_msg <= 0.95 @latency-c1000-r50`, `p99_us < 2000`,
//! `held >= 1000000`, `errors == 0`, `cpu_us_per_msg <= 1.05x baseline`. The median
//! over rounds is checked; with `all:` every round's value (the whole min-max range).

use super::metric::{self, Metric};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    pub fn text(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    /// Whether `v OP bound`.
    pub fn holds(self, v: f64, bound: f64) -> bool {
        match self {
            Op::Lt => v < bound,
            Op::Le => v <= bound,
            Op::Gt => v > bound,
            Op::Ge => v >= bound,
            Op::Eq => v == bound,
        }
    }

    /// Whether every value in `min..=max` satisfies it.
    pub fn holds_for_range(self, min: f64, max: f64, bound: f64) -> bool {
        match self {
            Op::Lt | Op::Le => self.holds(max, bound),
            Op::Gt | Op::Ge => self.holds(min, bound),
            Op::Eq => min == bound && max == bound,
        }
    }
}

/// Whose value is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Every selected case.
    Every,
    /// The cases of one variant.
    Variant(String),
    /// The paired per-round ratios of variant A over variant B at each selected point.
    Ratio(String, String),
}

/// Which cases: a scenario (`latency`, `pingpong-frame`) and/or a point (`c1000-r50`;
/// `c1000` also selects `c1000-r25` and `c1000-r50`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    pub scenario: Option<String>,
    pub point: Option<String>,
}

impl Selector {
    pub fn matches(&self, scenario: &str, point: &str) -> bool {
        self.scenario.as_deref().is_none_or(|s| s == scenario)
            && self.point.as_deref().is_none_or(|p| {
                point == p || point.strip_prefix(p).is_some_and(|r| r.starts_with('-'))
            })
    }

    fn parse(s: &str) -> Result<Selector, String> {
        let starts_point = |t: &str| {
            t.strip_prefix('c')
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        };
        if s.is_empty() {
            return Err("`@` needs a case after it: @SCENARIO, @SCENARIO-POINT or @POINT, e.g. @latency-c1000-r50 or @c1000".into());
        }
        if starts_point(s) {
            return Ok(Selector {
                scenario: None,
                point: Some(s.into()),
            });
        }
        let at = s
            .match_indices("-c")
            .map(|(i, _)| i)
            .find(|&i| starts_point(&s[i + 1..]));
        Ok(match at {
            Some(i) => Selector {
                scenario: Some(s[..i].into()),
                point: Some(s[i + 1..].into()),
            },
            None => Selector {
                scenario: Some(s.into()),
                point: None,
            },
        })
    }
}

/// One parsed `--threshold`.
#[derive(Debug, Clone)]
pub struct Threshold {
    /// As given.
    pub text: String,
    /// `all:`: every round must satisfy it, not only the median.
    pub range: bool,
    pub subject: Subject,
    pub metric: &'static Metric,
    pub op: Op,
    pub bound: f64,
    /// `VALUEx baseline`: the bound is on NEW/OLD (`compare --baseline`).
    pub baseline: bool,
    pub select: Selector,
}

const OPS: [(&str, Op); 5] = [
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("==", Op::Eq),
    ("<", Op::Lt),
    (">", Op::Gt),
];

const SHAPE: &str = "write [all:] [VARIANT or A/B] METRIC OP VALUE [@CASE], e.g. `p99_us < 2000`, `uring/epoll cpu_us_per_msg <= 0.95 @latency-c1000-r50`, `all: errors == 0`, `cpu_us_per_msg <= 1.05x baseline`";

/// The first comparison operator in `s`: (its start, its length, the op).
fn find_op(s: &str) -> Option<(usize, usize, Op)> {
    s.char_indices().find_map(|(i, _)| {
        OPS.iter()
            .find(|(t, _)| s[i..].starts_with(t))
            .map(|(t, op)| (i, t.len(), *op))
    })
}

fn unknown_metric(name: &str) -> String {
    let close: Vec<&str> = metric::METRICS
        .iter()
        .map(|m| m.name)
        .filter(|n| n.starts_with(name) || name.starts_with(n) || n.contains(name))
        .collect();
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", close.join(" or "))
    };
    format!(
        "unknown metric `{name}`{hint}; the metrics are: {}",
        metric::names()
    )
}

fn parse_number(s: &str) -> Option<f64> {
    let clean: String = s.chars().filter(|c| *c != '_' && *c != ',').collect();
    clean.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses one expression; the error says what to write instead.
pub fn parse(text: &str) -> Result<Threshold, String> {
    let err = |why: String| format!("--threshold '{text}': {why}");
    let mut s = text.trim();
    let range = match s.strip_prefix("all:") {
        Some(rest) => {
            s = rest.trim_start();
            true
        }
        None => false,
    };
    let Some((at, len, op)) = find_op(s) else {
        return Err(err(format!("no comparison (one of < <= > >= ==): {SHAPE}")));
    };
    let left: Vec<&str> = s[..at].split_whitespace().collect();
    let right: Vec<&str> = s[at + len..].split_whitespace().collect();
    let (subject, name) = match left.as_slice() {
        [m] => (Subject::Every, *m),
        [who, m] => match who.split_once('/') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains('/') => {
                (Subject::Ratio(a.into(), b.into()), *m)
            }
            Some(_) => {
                return Err(err(format!(
                    "`{who}` is not a ratio of two variants: write A/B, e.g. uring/epoll"
                )))
            }
            None => (Subject::Variant((*who).into()), *m),
        },
        [] => return Err(err(format!("no metric before `{}`: {SHAPE}", op.text()))),
        _ => {
            return Err(err(format!(
                "too many words before `{}`: {SHAPE}",
                op.text()
            )))
        }
    };
    let metric = metric::find(name).ok_or_else(|| err(unknown_metric(name)))?;
    let (value_words, select) = match right.iter().position(|w| w.starts_with('@')) {
        Some(i) if i + 1 == right.len() => {
            (&right[..i], Selector::parse(&right[i][1..]).map_err(err)?)
        }
        Some(_) => {
            return Err(err(format!(
                "the case (@...) goes last, after the value: {SHAPE}"
            )))
        }
        None => (&right[..], Selector::default()),
    };
    let value = value_words.join(" ");
    let (number, baseline) = match value.strip_suffix("baseline") {
        Some(v) => match v.trim_end().strip_suffix('x') {
            Some(n) => (n.trim(), true),
            None => {
                return Err(err(format!(
                    "a baseline bound is a factor: write `{} {} 1.05x baseline`",
                    metric.name,
                    op.text()
                )))
            }
        },
        None => (value.as_str(), false),
    };
    let bound = parse_number(number).ok_or_else(|| {
        err(if number.is_empty() {
            format!("no value after `{}`: {SHAPE}", op.text())
        } else {
            format!(
                "`{number}` is not a number: write a plain number (1000000, 1e6, 0.95) or a factor `1.05x baseline`"
            )
        })
    })?;
    if baseline && matches!(subject, Subject::Ratio(..)) {
        return Err(err(
            "a baseline threshold compares one run with its baseline, not two variants: drop the A/B or the `x baseline`".into(),
        ));
    }
    Ok(Threshold {
        text: text.trim().to_owned(),
        range,
        subject,
        metric,
        op,
        bound,
        baseline,
        select,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_examples_parse() {
        let t = parse("uring/epoll cpu_us_per_msg <= 0.95 @latency-c1000-r50").expect("parses");
        assert_eq!(t.subject, Subject::Ratio("uring".into(), "epoll".into()));
        assert_eq!(
            (t.metric.name, t.op, t.bound),
            ("cpu_us_per_msg", Op::Le, 0.95)
        );
        assert_eq!(t.select.scenario.as_deref(), Some("latency"));
        assert_eq!(t.select.point.as_deref(), Some("c1000-r50"));
        assert!(!t.range && !t.baseline);
        let t = parse("p99_us < 2000").expect("parses");
        assert_eq!((t.subject, t.op, t.bound), (Subject::Every, Op::Lt, 2000.0));
        assert_eq!(t.select, Selector::default());
        let t = parse("held >= 1_000_000 @hold").expect("parses");
        assert_eq!((t.op, t.bound), (Op::Ge, 1e6));
        assert_eq!(
            (t.select.scenario.as_deref(), t.select.point),
            (Some("hold"), None)
        );
        let t = parse("all: errors == 0").expect("parses");
        assert!(t.range);
        assert_eq!((t.metric.name, t.op, t.bound), ("errors", Op::Eq, 0.0));
        let t = parse("cpu_us_per_msg <= 1.05x baseline").expect("parses");
        assert!(t.baseline);
        assert_eq!(t.bound, 1.05);
        let t = parse("uring p99_us<=500 @c1000").expect("no blanks needed");
        assert_eq!(t.subject, Subject::Variant("uring".into()));
        assert_eq!(t.select.point.as_deref(), Some("c1000"));
        let t = parse("msgs_per_s > 1 @pingpong-frame-c100").expect("parses");
        assert_eq!(t.select.scenario.as_deref(), Some("pingpong-frame"));
        assert_eq!(t.select.point.as_deref(), Some("c100"));
    }

    #[test]
    fn selectors_match_points_by_whole_parts() {
        let s = Selector::parse("latency-c1000").expect("sel");
        assert!(s.matches("latency", "c1000-r50"));
        assert!(s.matches("latency", "c1000"));
        assert!(!s.matches("latency", "c10000-r50"));
        assert!(!s.matches("pingpong", "c1000"));
        assert!(Selector::default().matches("hold", ""));
    }

    #[test]
    fn errors_say_how_to_fix_the_expression() {
        for (bad, says) in [
            ("p99_us 2000", "no comparison (one of < <= > >= ==)"),
            ("p99 < 2000", "unknown metric `p99` (did you mean p99_us"),
            ("latency < 2000", "the metrics are: msgs_per_s"),
            ("p99_us < fast", "`fast` is not a number"),
            ("p99_us <", "no value after `<`"),
            ("< 5", "no metric before `<`"),
            ("a b p99_us < 5", "too many words"),
            ("uring/ p99_us < 5", "not a ratio of two variants"),
            ("p99_us < 5 @", "`@` needs a case"),
            ("p99_us < @hold 5", "the case (@...) goes last"),
            (
                "p99_us <= 1.05 baseline",
                "write `p99_us <= 1.05x baseline`",
            ),
            ("uring/epoll p99_us <= 1.05x baseline", "drop the A/B"),
            ("p99_us = 5", "no comparison"),
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
            assert!(e.starts_with(&format!("--threshold '{bad}': ")), "{e}");
        }
    }

    #[test]
    fn ranges_and_comparisons() {
        assert!(Op::Le.holds_for_range(1.0, 2.0, 2.0));
        assert!(!Op::Lt.holds_for_range(1.0, 2.0, 2.0));
        assert!(Op::Ge.holds_for_range(3.0, 9.0, 3.0));
        assert!(!Op::Eq.holds_for_range(0.0, 1.0, 0.0));
        assert!(Op::Eq.holds_for_range(0.0, 0.0, 0.0));
        assert!(Op::Gt.holds(2.0, 1.0) && !Op::Gt.holds(1.0, 1.0));
    }
}
