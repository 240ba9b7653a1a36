//! The reports a run writes beside `c1m-loadgen compare`'s tables: several server
//! processes' `server.json` summed into one ([`merge_server`]), the hold scenario's
//! `hold.json` ([`hold_json`]), the tables compare has no columns for
//! ([`section_hold`], [`section_churn`]), the latency rate from pingpong ([`rate`]) and
//! the headline of a whole run ([`headline`]).
//!
//! Run folders are loadgen `--out` folders (summary.json) with the server's server.json
//! beside it. Nothing here invents a number: a missing value prints as "-".

pub mod json;
mod server;
mod spread;
mod tables;

pub use json::Json;
pub use server::{hold_json, merge_server, HoldFacts};
pub use spread::{backend_and_point, backend_rank};
pub use tables::{headline, section_churn, section_hold};

use std::path::{Path, PathBuf};

/// `{v:,.Nf}`: fixed decimals with thousands separators.
pub fn group(v: f64, digits: usize) -> String {
    let s = format!("{:.*}", digits, v.abs());
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s.as_str(), None),
    };
    let mut out = String::new();
    let lead = int.len() % 3;
    for (i, c) in int.chars().enumerate() {
        if i > 0 && i % 3 == lead {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    let negative = v < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0');
    if negative {
        format!("-{out}")
    } else {
        out
    }
}

/// A number with `digits` decimals and thousands separators, "-" when missing.
pub fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| group(v, digits))
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

/// A latency in µs: whole with separators from 100 up, else three significant digits.
pub fn fmt_us(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 100.0 => group(v, 0),
        Some(v) => g3(v),
    }
}

/// Bytes in B, KiB, MiB or GiB.
pub fn fmt_bytes(v: Option<f64>) -> String {
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

/// A markdown table: first column left-aligned, the others right-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
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

/// One run folder and what it holds.
pub struct Run {
    pub name: String,
    pub summary: Json,
    pub server: Json,
    pub hold: Json,
    pub failed: bool,
}

impl Run {
    pub fn load(path: &Path) -> Run {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Run {
            name,
            summary: Json::load_obj(&path.join("summary.json")),
            server: Json::load_obj(&path.join("server.json")),
            hold: Json::load_obj(&path.join("hold.json")),
            failed: path.join("FAILED").exists(),
        }
    }

    /// A number of summary.json under a path of keys.
    pub fn get(&self, keys: &[&str]) -> Option<f64> {
        self.summary.num_at(keys)
    }

    /// The run's bound mark (`c1m_loadgen::report::bound`), when it has one.
    pub fn bound_mark(&self) -> Option<&str> {
        match self.summary.at(&["bound", "mark"]) {
            Some(Json::Str(s)) => Some(s.as_str()),
            _ => None,
        }
    }

    /// Errors of every kind: failed verifications, failed connects, connections lost.
    pub fn errors(&self) -> Option<f64> {
        if self.summary.is_empty_obj() {
            return None;
        }
        let lost: f64 = match self.summary.get("connection_errors") {
            Some(Json::Obj(m)) => m.iter().filter_map(|(_, v)| v.num()).sum(),
            _ => 0.0,
        };
        Some(
            self.get(&["verify_errors"]).unwrap_or(0.0)
                + self.get(&["connections_failed"]).unwrap_or(0.0)
                + lost,
        )
    }

    /// Server user+sys CPU over its life / messages it echoed or answered over its life
    /// (frame, http: the `requests` it counted; echo: bytes in / message size): warm-up
    /// and connection set-up included on both sides.
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        let cpu = self.server.num_at(&["cpu_user_s"]).unwrap_or(0.0)
            + self.server.num_at(&["cpu_sys_s"]).unwrap_or(0.0);
        let size = self.get(&["workload", "size"]).unwrap_or(0.0);
        let requests = self.server.num_at(&["requests"]).unwrap_or(0.0);
        let msgs = if requests > 0.0 {
            requests
        } else if size != 0.0 {
            self.server.num_at(&["bytes_in"]).unwrap_or(0.0) / size
        } else {
            0.0
        };
        (cpu != 0.0 && msgs != 0.0).then(|| cpu * 1e6 / msgs)
    }
}

/// The run folders of a scenario folder (those with summary.json or FAILED), in the
/// order of its runs.txt (round folders included), then any others by name.
pub fn run_dirs(scenario_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(scenario_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.sort();
    found.retain(|p| p.is_dir() && (p.join("summary.json").exists() || p.join("FAILED").exists()));
    let Ok(order) = std::fs::read_to_string(scenario_dir.join("runs.txt")) else {
        return found;
    };
    let listed: Vec<PathBuf> = order
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| scenario_dir.join(l))
        .collect();
    // Listed runs may sit in round folders (round-2/uring-c100).
    let is_run = |p: &PathBuf| p.join("summary.json").exists() || p.join("FAILED").exists();
    let mut out: Vec<PathBuf> = listed.iter().filter(|p| is_run(p)).cloned().collect();
    out.extend(found.into_iter().filter(|p| !listed.contains(p)));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn number_formats_match_the_python_reports() {
        assert_eq!(group(1234567.0, 0), "1,234,567");
        assert_eq!(group(999.96, 1), "1,000.0");
        assert_eq!(group(-12345.678, 2), "-12,345.68");
        assert_eq!(group(-0.4, 0), "0");
        assert_eq!(fmt(None, 0), "-");
        assert_eq!(fmt_us(Some(12.34)), "12.3");
        assert_eq!(fmt_us(Some(1.234)), "1.23");
        assert_eq!(fmt_us(Some(0.5)), "0.5");
        assert_eq!(fmt_us(Some(99.96)), "100");
        assert_eq!(fmt_us(Some(63.999)), "64");
        assert_eq!(fmt_us(Some(2412.543)), "2,413");
        assert_eq!(g3(0.00001234), "1.23e-05");
        assert_eq!(fmt_bytes(Some(83.6)), "84 B");
        assert_eq!(fmt_bytes(Some(9293.2)), "9.08 KiB");
        assert_eq!(fmt_bytes(Some(3.5 * 1048576.0)), "3.5 MiB");
        assert_eq!(fmt_bytes(Some(9.0 * 1073741824.0)), "9.00 GiB");
        assert_eq!(
            table(&["run", "a"], &[vec!["x".into(), "1".into()]]),
            "| run | a |\n| --- | ---: |\n| x | 1 |"
        );
    }
}
