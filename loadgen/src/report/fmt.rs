//! The one place numbers become text in reports, and the two markdown table writers.
//!
//! Two styles, kept byte for byte because committed reports are made of them:
//! - `c1m-loadgen compare` (padded tables, "–" for a missing cell): [`number`], [`us`],
//!   [`bytes`], [`padded_table`];
//! - the orchestrator's compare.md sections and headline (plain tables, "-" for a
//!   missing value): [`grouped`], [`fixed`], [`g3`], [`us_or_dash`], [`bytes_or_dash`],
//!   [`plain_table`].

use std::fmt::Write as _;

/// Commas between groups of three digits of an unsigned digit string.
fn group_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    // A comma before every digit that has a multiple of three digits after it.
    let lead = digits.len() % 3;
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && i % 3 == lead {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "-12,345" for an integer.
pub fn group_thousands(v: i64) -> String {
    let out = group_digits(&v.unsigned_abs().to_string());
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// "12,345" for integers, up to 3 decimals (trailing zeros dropped) otherwise; "–" when
/// not finite.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_owned();
    }
    let rounded = (v * 1000.0).round() / 1000.0;
    if rounded.fract() == 0.0 {
        return group_thousands(rounded as i64);
    }
    let s = format!("{rounded:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match s.split_once('.') {
        Some((int, frac)) => match int.parse::<i64>() {
            Ok(i) if int != "-0" => format!("{}.{frac}", group_thousands(i)),
            _ => s.to_owned(),
        },
        None => s.to_owned(),
    }
}

/// A latency in µs with about three significant digits: 1.23, 12.3, 123, 1,234.
pub fn us(v: f64) -> String {
    if !v.is_finite() {
        "–".to_owned()
    } else if v >= 100.0 {
        number(v.round())
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Bytes in B, KiB or MiB with one decimal (compare's RSS/conn).
pub fn bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// `{v:,.Nf}`: fixed decimals with thousands separators.
pub fn grouped(v: f64, digits: usize) -> String {
    let s = format!("{:.*}", digits, v.abs());
    let out = match s.split_once('.') {
        Some((int, frac)) => format!("{}.{frac}", group_digits(int)),
        None => group_digits(&s),
    };
    let negative = v < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0');
    if negative {
        format!("-{out}")
    } else {
        out
    }
}

/// A number with `digits` decimals and thousands separators, "-" when missing.
pub fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| grouped(v, digits))
}

/// `%.3g`: three significant digits, trailing zeros dropped.
pub fn g3(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let sci = format!("{v:.2e}");
    let exp: i32 = sci
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if !(-4..3).contains(&exp) {
        let (m, _) = sci.split_once('e').unwrap_or((&sci, ""));
        let m = m.trim_end_matches('0').trim_end_matches('.');
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let s = format!("{:.*}", (2 - exp) as usize, v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A latency in µs: whole with separators from 100 up, else three significant digits;
/// "-" when missing.
pub fn us_or_dash(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 100.0 => grouped(v, 0),
        Some(v) => g3(v),
    }
}

/// Bytes in B, KiB, MiB or GiB; "-" when missing.
pub fn bytes_or_dash(v: Option<f64>) -> String {
    let Some(v) = v else {
        return "-".into();
    };
    let a = v.abs();
    if a >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", v / (1u64 << 30) as f64)
    } else if a >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", v / (1u64 << 20) as f64)
    } else if a >= 1024.0 {
        format!("{:.2} KiB", v / 1024.0)
    } else {
        format!("{v:.0} B")
    }
}

/// A markdown table without padding: first column left-aligned, the others
/// right-aligned. No newline at the end.
pub fn plain_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = vec![
        format!("| {} |", header.join(" | ")),
        format!(
            "| {} |",
            (0..header.len())
                .map(|i| if i == 0 { "---" } else { "---:" })
                .collect::<Vec<_>>()
                .join(" | ")
        ),
    ];
    out.extend(rows.iter().map(|r| format!("| {} |", r.join(" | "))));
    out.join("\n")
}

/// A markdown table with padded columns: text columns (run, backend) left-aligned,
/// numbers right-aligned. Every row has one cell per header.
pub fn padded_table(header: &[&str], rows: &[Vec<String>]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_style() {
        assert_eq!(number(1234567.0), "1,234,567");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(1234.125), "1,234.125");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-0.5), "-0.5");
        assert_eq!(number(f64::NAN), "–");
        assert_eq!(group_thousands(-1234), "-1,234");
        assert_eq!(us(1.234), "1.23");
        assert_eq!(us(12.34), "12.3");
        assert_eq!(us(1234.4), "1,234");
        assert_eq!(bytes(3.5 * 1024.0 * 1024.0), "3.5 MiB");
        assert_eq!(bytes(100.0), "100 B");
        let t = padded_table(&["run", "n"], &[vec!["ab".into(), "1".into()]]);
        assert_eq!(t, "| run |   n |\n| --- | --: |\n| ab  |   1 |\n");
    }

    #[test]
    fn orchestrator_style_matches_the_python_reports() {
        assert_eq!(grouped(1234567.0, 0), "1,234,567");
        assert_eq!(grouped(999.96, 1), "1,000.0");
        assert_eq!(grouped(-12345.678, 2), "-12,345.68");
        assert_eq!(grouped(-0.4, 0), "0");
        assert_eq!(fixed(None, 0), "-");
        assert_eq!(us_or_dash(Some(12.34)), "12.3");
        assert_eq!(us_or_dash(Some(1.234)), "1.23");
        assert_eq!(us_or_dash(Some(0.5)), "0.5");
        assert_eq!(us_or_dash(Some(99.96)), "100");
        assert_eq!(us_or_dash(Some(63.999)), "64");
        assert_eq!(us_or_dash(Some(2412.543)), "2,413");
        assert_eq!(g3(0.00001234), "1.23e-05");
        assert_eq!(bytes_or_dash(Some(83.6)), "84 B");
        assert_eq!(bytes_or_dash(Some(9293.2)), "9.08 KiB");
        assert_eq!(bytes_or_dash(Some(3.5 * 1048576.0)), "3.5 MiB");
        assert_eq!(bytes_or_dash(Some(9.0 * 1073741824.0)), "9.00 GiB");
        assert_eq!(
            plain_table(&["run", "a"], &[vec!["x".into(), "1".into()]]),
            "| run | a |\n| --- | ---: |\n| x | 1 |"
        );
    }
}
