//! A hand-written SVG of several runs' percentile distributions, the way the HdrHistogram
//! plotter draws `.hgrm` files: x is 1/(1-percentile) on a log scale, labelled 0%, 90%,
//! 99%, ...; y is latency in µs (log scale when the curves span more than two decades).

use super::fmt::{number, us as fmt_us};
use super::hgrm::{percentile_rows, TICKS_PER_HALF_DISTANCE};
use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// One curve.
pub struct Series<'a> {
    pub name: &'a str,
    /// Nanoseconds.
    pub hist: &'a Histogram<u64>,
}

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 96.0;
/// Room for the last x label ("99.99999%") to the right of the plot area.
const RIGHT: f64 = 52.0;
const TOP: f64 = 64.0;
const PLOT_HEIGHT: f64 = 440.0;
/// From the plot area's bottom edge to the first legend row: tick labels, axis title.
const BELOW_PLOT: f64 = 86.0;
const LEGEND_ROW: f64 = 24.0;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";
/// Tableau 10: distinguishable, and readable for the common colour-vision deficiencies.
const COLORS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// "99.99%" for 10^decade on the 1/(1-p) axis.
fn percent_label(decade: i32) -> String {
    match decade {
        d if d <= 0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        2 => "99%".to_owned(),
        d => format!("99.{}%", "9".repeat((d - 2) as usize)),
    }
}

/// A 1, 2, 2.5 or 5 times a power of ten step giving about `target` ticks over `range`.
fn nice_step(range: f64, target: f64) -> f64 {
    let raw = (range / target).max(f64::MIN_POSITIVE);
    let mag = 10_f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    step * mag
}

#[derive(Clone, Copy)]
enum YScale {
    Linear {
        max: f64,
    },
    /// From `lo` to `hi`, both 1, 2 or 5 times a power of ten.
    Log {
        lo: f64,
        hi: f64,
    },
}

impl YScale {
    /// 0 at the bottom of the plot area, 1 at the top.
    fn frac(&self, v: f64) -> f64 {
        match *self {
            YScale::Linear { max } => v / max,
            YScale::Log { lo, hi } => {
                (v.max(1e-12).log10() - lo.log10()) / (hi.log10() - lo.log10())
            }
        }
    }
}

/// The largest 1, 2 or 5 times a power of ten at or below `v` (`up`: smallest at or above).
fn nice_125(v: f64, up: bool) -> f64 {
    let mag = 10_f64.powf(v.log10().floor());
    let steps = [1.0, 2.0, 5.0, 10.0];
    if up {
        steps
            .iter()
            .map(|m| m * mag)
            .find(|c| *c >= v * (1.0 - 1e-12))
            .unwrap_or(10.0 * mag)
    } else {
        steps
            .iter()
            .rev()
            .map(|m| m * mag)
            .find(|c| *c <= v * (1.0 + 1e-12))
            .unwrap_or(mag)
    }
}

/// The SVG text: one polyline per series (empty series are listed in the legend only).
pub fn percentile_plot_svg(title: &str, series: &[Series<'_>]) -> String {
    let curves = curves_of(series);
    let x_hi = curves.iter().flatten().map(|p| p.0).fold(0.0_f64, f64::max);
    let x_decades = (x_hi.ceil() as i32).clamp(2, 8);
    let yscale = y_scale(&curves);

    let pw = WIDTH - LEFT - RIGHT;
    let ph = PLOT_HEIGHT;
    let legend_top = TOP + ph + BELOW_PLOT;
    let height = legend_top + LEGEND_ROW * series.len() as f64 + 16.0;
    let px = |x: f64| LEFT + pw * (x / f64::from(x_decades)).clamp(0.0, 1.0);
    let py = |v: f64| TOP + ph * (1.0 - yscale.frac(v).clamp(0.0, 1.0));

    let mut svg = String::new();
    // Writing to a String cannot fail; results are ignored on purpose.
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{FONT}">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="34" font-size="20" font-weight="bold" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        xml_escape(title)
    );

    // Grid and x ticks.
    for d in 0..=x_decades {
        let x = px(f64::from(d));
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#dddddd"/>"##,
            TOP + ph
        );
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" font-size="14" text-anchor="middle">{}</text>"#,
            TOP + ph + 22.0,
            percent_label(d)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="15" text-anchor="middle">Percentile (log scale of 1/(1−p))</text>"#,
        LEFT + pw / 2.0,
        TOP + ph + 52.0
    );

    // y ticks.
    for v in y_ticks(yscale) {
        let y = py(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#dddddd"/>"##,
            LEFT + pw
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="14" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y + 5.0,
            number(v)
        );
    }
    let scale_note = match yscale {
        YScale::Linear { .. } => "",
        YScale::Log { .. } => ", log scale",
    };
    let _ = writeln!(
        svg,
        r#"<text transform="translate(24 {:.1}) rotate(-90)" font-size="15" text-anchor="middle">Latency (µs{scale_note})</text>"#,
        TOP + ph / 2.0
    );
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );

    draw_curves(&mut svg, &curves, &px, &py);

    legend(&mut svg, series, legend_top);
    svg.push_str("</svg>\n");
    svg
}

/// Points (log10 of 1/(1-p), µs) per series; the 100% row has no finite x and is left
/// out, as the HdrHistogram plotter leaves it out.
fn curves_of(series: &[Series<'_>]) -> Vec<Vec<(f64, f64)>> {
    series
        .iter()
        .map(|s| {
            percentile_rows(s.hist, TICKS_PER_HALF_DISTANCE)
                .into_iter()
                .filter(|r| r.percentile < 100.0)
                .map(|r| {
                    let x = (1.0 / (1.0 - r.percentile / 100.0)).log10();
                    (x, r.value as f64 / 1000.0)
                })
                .collect()
        })
        .collect()
}

/// Linear from 0, or logarithmic when the values span more than two decades.
fn y_scale(curves: &[Vec<(f64, f64)>]) -> YScale {
    let all = curves.iter().flatten();
    let y_max = all.clone().map(|p| p.1).fold(0.0_f64, f64::max);
    let y_min_pos = all
        .clone()
        .map(|p| p.1)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);

    if y_min_pos.is_finite() && y_max / y_min_pos > 100.0 {
        YScale::Log {
            lo: nice_125(y_min_pos, false),
            hi: nice_125(y_max, true),
        }
    } else {
        let top = if y_max > 0.0 { y_max * 1.08 } else { 1.0 };
        let step = nice_step(top, 6.0);
        YScale::Linear {
            max: (top / step).ceil() * step,
        }
    }
}

/// The values of the y axis' ticks.
fn y_ticks(yscale: YScale) -> Vec<f64> {
    let mut y_ticks: Vec<f64> = Vec::new();
    match yscale {
        YScale::Linear { max } => {
            let step = nice_step(max, 6.0);
            let mut v = 0.0;
            while v <= max * (1.0 + 1e-9) {
                y_ticks.push(v);
                v += step;
            }
        }
        YScale::Log { lo, hi } => {
            // 1-2-5 ticks over up to three decades, decades only beyond.
            let few = hi / lo <= 1000.0 * (1.0 + 1e-9);
            let mut d = lo.log10().floor() as i32;
            while 10_f64.powi(d) <= hi * (1.0 + 1e-9) {
                for m in [1.0, 2.0, 5.0] {
                    let v = m * 10_f64.powi(d);
                    if (m == 1.0 || few) && v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                        y_ticks.push(v);
                    }
                }
                d += 1;
            }
        }
    }
    y_ticks
}

/// One polyline per curve.
fn draw_curves(
    svg: &mut String,
    curves: &[Vec<(f64, f64)>],
    px: &dyn Fn(f64) -> f64,
    py: &dyn Fn(f64) -> f64,
) {
    for (i, pts) in curves.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let color = COLORS[i % COLORS.len()];
        let mut points = String::new();
        for &(x, v) in pts {
            let _ = write!(points, "{:.1},{:.1} ", px(x), py(v));
        }
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2.5" stroke-linejoin="round" points="{}"/>"#,
            points.trim_end()
        );
    }
}

/// The legend under the plot, one row per run, so it never hides a curve.
fn legend(svg: &mut String, series: &[Series<'_>], legend_top: f64) {
    for (i, s) in series.iter().enumerate() {
        let text = if s.hist.is_empty() {
            format!("{} (no samples)", s.name)
        } else {
            let us = |ns: u64| fmt_us(ns as f64 / 1000.0);
            format!(
                "{}: p50 {} · p99 {} · p99.9 {} · max {} µs",
                s.name,
                us(s.hist.value_at_quantile(0.5)),
                us(s.hist.value_at_quantile(0.99)),
                us(s.hist.value_at_quantile(0.999)),
                us(s.hist.max())
            )
        };
        let y = legend_top + LEGEND_ROW * i as f64;
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="3"/>"#,
            LEFT + 28.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="14">{}</text>"#,
            LEFT + 36.0,
            y + 5.0,
            xml_escape(&text)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::hlog::new_histogram;
    use crate::report::rundir::tests::lcg;

    #[test]
    fn labels_and_numbers() {
        assert_eq!(percent_label(0), "0%");
        assert_eq!(percent_label(1), "90%");
        assert_eq!(percent_label(3), "99.9%");
        assert_eq!(percent_label(5), "99.999%");
        assert_eq!(nice_step(100.0, 6.0), 20.0);
        assert_eq!(xml_escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }

    #[test]
    fn svg_has_one_polyline_per_run_and_a_legend() {
        let mut seed = 5;
        let mut a = new_histogram();
        let mut b = new_histogram();
        for _ in 0..20_000 {
            a.record(20_000 + lcg(&mut seed) % 30_000).expect("record");
            b.record(40_000 + (lcg(&mut seed) % 3000).pow(2))
                .expect("record");
        }
        let empty = new_histogram();
        let svg = percentile_plot_svg(
            "t <1>",
            &[
                Series {
                    name: "uring",
                    hist: &a,
                },
                Series {
                    name: "epoll",
                    hist: &b,
                },
                Series {
                    name: "none",
                    hist: &empty,
                },
            ],
        );
        assert!(svg.starts_with("<svg "));
        assert!(svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("uring: p50"));
        assert!(svg.contains("none (no samples)"));
        assert!(svg.contains("t &lt;1&gt;"));
        assert!(svg.contains(">99.99%<"));
        // b spans 40 µs .. 9 ms: more than two decades, so the y axis is logarithmic.
        assert!(svg.contains("log scale)"));
        let only_a = percentile_plot_svg(
            "a",
            &[Series {
                name: "a",
                hist: &a,
            }],
        );
        assert!(!only_a.contains("log scale)"));
    }
}
