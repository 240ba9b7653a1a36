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

impl c1m_loadgen::report::stats::Rounded for Run {
    fn round(&self) -> Option<u64> {
        self.get(&["round"]).map(|x| x as u64)
    }
}
