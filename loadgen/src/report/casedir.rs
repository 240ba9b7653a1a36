//! The one reader of an orchestrator's run folder (`c1m-bench` reports and
//! `c1m-loadgen compare` alike): which case it was ([`CaseRecord`], from `case.json`,
//! else parsed from the folder's name for folders recorded before case.json), the
//! loadgen's typed summary.json (`c1m_loadgen::report::read_summary`, the reader
//! `read_run_dir` starts with: wrk folders have no interval log), the server's
//! server.json (`ServerStats`, with the one definition of server CPU per message), and
//! hold.json / server_cpu.json where the scenario writes them.

use super::model::ServerStats;
use super::{read_summary, Summary};
use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

pub const CASE_FILE: &str = "case.json";

/// Larger than any record the kit writes: a bigger file is not one of ours.
const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Which case a run folder is: written by the runner beside every run, read by every
/// report. All fields but `point` may be missing (folders recorded before a field was).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// The variant the case belongs to (the axis rounds interleave and ratios pair);
    /// with `--backends`, one per backend, named as the backend.
    #[serde(default)]
    pub variant: Option<String>,
    /// The server: a c1m backend, `go`, `nginx`.
    #[serde(default)]
    pub server: Option<String>,
    /// `c1m-loadgen` or `wrk`.
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub scenario: Option<String>,
    /// `c1000`, `c1000-r50`; empty where a scenario has one point (hold, churn).
    pub point: String,
    #[serde(default)]
    pub connections: Option<u64>,
    #[serde(default)]
    pub rate_req_per_s: Option<f64>,
    #[serde(default)]
    pub round: Option<u64>,
    #[serde(default)]
    pub body_size: Option<u64>,
    /// The variant's own server flags (after the backend's).
    #[serde(default)]
    pub server_flags: Vec<String>,
    /// What the echo scenarios spoke (`echo`, `frame`, `http`).
    #[serde(default)]
    pub protocol: Option<String>,
    /// The sysctls the variant set for this case, as read back: where -> key -> value.
    #[serde(default)]
    pub sysctls: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// netns: the variant's link (`--link` text) and the qdiscs read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Value>,
}

impl CaseRecord {
    /// The record of a folder named `<backend>-<point>` (`uring-c1000-r25`, `uring`):
    /// only for folders recorded without case.json.
    pub fn from_label(label: &str) -> CaseRecord {
        let (backend, point) = backend_and_point(label);
        CaseRecord {
            variant: Some(backend.to_owned()),
            server: Some(backend.to_owned()),
            point: point.to_owned(),
            ..CaseRecord::default()
        }
    }

    /// The variant; the server where the record names none.
    pub fn variant(&self) -> &str {
        self.variant
            .as_deref()
            .or(self.server.as_deref())
            .unwrap_or("")
    }
}

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

/// A small JSON file of the kit: None when missing, an error that names the file when
/// it is too large or not JSON.
fn read_json(path: &Path) -> anyhow::Result<Option<Value>> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(None);
    };
    if meta.len() > MAX_RECORD_BYTES {
        bail!(
            "{} is {} bytes, more than any record the kit writes: move it out of the run folder",
            path.display(),
            meta.len()
        );
    }
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).map(Some).with_context(|| {
        format!(
            "{} is not valid JSON: fix it or delete it and rerun the report",
            path.display()
        )
    })
}

/// The number under `key` of a JSON object (not a bool).
pub fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// One run folder and what it holds.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub dir: PathBuf,
    /// The folder's name.
    pub name: String,
    pub case: CaseRecord,
    /// `<variant>-<point>` (the variant alone without a point): what rounds of one
    /// case share.
    pub key: String,
    /// summary.json; None for a run that failed before writing it.
    pub summary: Option<Summary>,
    pub server: Option<ServerStats>,
    /// hold.json (Null when absent).
    pub hold: Value,
    /// Server CPU µs per request over the client's measured window (server_cpu.json,
    /// http).
    pub window_cpu_us_per_req: Option<f64>,
    pub failed: bool,
}

impl RunFolder {
    /// Reads `dir`. A case.json, summary.json or server.json that is there but cannot be
    /// read is an error naming the file; missing files leave their part empty.
    pub fn read(dir: &Path) -> anyhow::Result<RunFolder> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let case = match read_json(&dir.join(CASE_FILE))? {
            Some(v) => serde_json::from_value::<CaseRecord>(v).with_context(|| {
                format!(
                    "{} is not a case record (it needs at least \"point\"): fix it or delete it to fall back on the folder name",
                    dir.join(CASE_FILE).display()
                )
            })?,
            None => CaseRecord::from_label(&name),
        };
        let summary = if dir.join("summary.json").is_file() {
            Some(read_summary(dir)?)
        } else {
            None
        };
        let server_path = dir.join("server.json");
        let server = read_json(&server_path)?.map(|v| ServerStats::from_json(server_path, &v));
        let hold = read_json(&dir.join("hold.json"))?.unwrap_or(Value::Null);
        let window = read_json(&dir.join("server_cpu.json"))?;
        let key = match case.point.as_str() {
            "" => case.variant().to_owned(),
            p => format!("{}-{p}", case.variant()),
        };
        Ok(RunFolder {
            dir: dir.to_path_buf(),
            name,
            key,
            case,
            summary,
            server,
            hold,
            window_cpu_us_per_req: window.as_ref().and_then(|v| num(v, "cpu_us_per_request")),
            failed: dir.join("FAILED").exists(),
        })
    }

    /// Server CPU µs per message it counted ([`ServerStats::cpu_us_per_msg`]).
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        let size = self
            .summary
            .as_ref()
            .map_or(0.0, |s| s.workload.size as f64);
        self.server.as_ref()?.cpu_us_per_msg(size)
    }

    /// Errors of every kind: failed verifications, failed connects, connections lost;
    /// None without a summary.
    pub fn errors(&self) -> Option<f64> {
        let s = self.summary.as_ref()?;
        let lost: u64 = s.connection_errors.values().sum();
        Some((s.verify_errors + s.connections_failed + lost) as f64)
    }

    /// The run's bound mark (`c1m_loadgen::report::bound`), when it has one.
    pub fn bound_mark(&self) -> Option<&str> {
        Some(self.summary.as_ref()?.bound.as_ref()?.mark.as_str())
    }

    /// A number of the summary, None without one.
    pub fn get(&self, f: impl Fn(&Summary) -> f64) -> Option<f64> {
        self.summary.as_ref().map(f)
    }
}

impl super::stats::Rounded for RunFolder {
    fn round(&self) -> Option<u64> {
        self.case
            .round
            .or_else(|| self.summary.as_ref().and_then(|s| s.round))
    }
}

/// The folders of `dirs` that read, and a note for each that did not (it is left out of
/// the tables, the note says why).
pub fn read_all(dirs: &[PathBuf]) -> (Vec<RunFolder>, Vec<String>) {
    let mut runs = Vec::new();
    let mut notes = Vec::new();
    for d in dirs {
        match RunFolder::read(d) {
            Ok(r) => runs.push(r),
            Err(e) => notes.push(format!("- left out {}: {e:#}", d.display())),
        }
    }
    (runs, notes)
}

/// The run folders of a scenario folder (those with summary.json or FAILED), in the
/// order of its runs.txt (round folders included), then any others by name.
pub fn run_dirs(scenario_dir: &Path) -> Vec<PathBuf> {
    let is_run = |p: &PathBuf| p.join("summary.json").exists() || p.join("FAILED").exists();
    let mut found: Vec<PathBuf> = fs::read_dir(scenario_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.sort();
    found.retain(|p| p.is_dir() && is_run(p));
    let Ok(order) = fs::read_to_string(scenario_dir.join("runs.txt")) else {
        return found;
    };
    let listed: Vec<PathBuf> = order
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| scenario_dir.join(l))
        .collect();
    // Listed runs may sit in round folders (round-2/uring-c100).
    let mut out: Vec<PathBuf> = listed.iter().filter(|p| is_run(p)).cloned().collect();
    out.extend(found.into_iter().filter(|p| !listed.contains(p)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rundir::tests::TempDir;

    const SUMMARY: &str = r#"{"round": 2, "throughput_msgs_per_s": 1000.5,
        "workload": {"size": 64, "connections": 10}, "verify_errors": 1,
        "connections_failed": 2, "connection_errors": {"ECONNRESET": 3},
        "latency": {"p50_us": 50, "p99_us": 90}}"#;
    const SERVER: &str =
        r#"{"backend": "uring", "cpu_user_s": 1, "cpu_sys_s": 3, "bytes_in": 64000000}"#;

    fn folder(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = root.join(name);
        fs::create_dir_all(&d).expect("mkdir");
        for (f, text) in files {
            fs::write(d.join(f), text).expect("write");
        }
        d
    }

    #[test]
    fn a_folder_with_case_json() {
        let t = TempDir::new("casedir");
        let case = r#"{"variant": "uring-sqpoll", "server": "uring", "client": "c1m-loadgen",
            "scenario": "latency", "point": "c1000-r50", "connections": 1000,
            "rate_req_per_s": 25000, "round": 3, "body_size": null}"#;
        let d = folder(
            &t.0,
            "whatever-name",
            &[
                ("case.json", case),
                ("summary.json", SUMMARY),
                ("server.json", SERVER),
            ],
        );
        let r = RunFolder::read(&d).expect("reads");
        assert_eq!(r.case.variant(), "uring-sqpoll");
        assert_eq!(r.case.client.as_deref(), Some("c1m-loadgen"));
        assert_eq!(r.case.rate_req_per_s, Some(25000.0));
        assert_eq!(r.key, "uring-sqpoll-c1000-r50");
        // case.json's round wins over summary.json's.
        use crate::report::stats::Rounded as _;
        assert_eq!(r.round(), Some(3));
        // 4 s of CPU for 1M messages (64 MB read / 64 B).
        assert_eq!(r.cpu_us_per_msg(), Some(4.0));
        assert_eq!(r.errors(), Some(6.0));
        assert_eq!(r.get(|s| s.throughput_msgs_per_s), Some(1000.5));
        assert!(!r.failed);
        // The runner writes the same struct.
        let back: CaseRecord =
            serde_json::from_str(&serde_json::to_string(&r.case).expect("json")).expect("back");
        assert_eq!(back, r.case);
    }

    #[test]
    fn a_folder_without_case_json_falls_back_on_its_name() {
        let t = TempDir::new("casedir");
        let d = folder(&t.0, "tokio-uring-c100", &[("summary.json", SUMMARY)]);
        let r = RunFolder::read(&d).expect("reads");
        assert_eq!(r.case.variant(), "tokio-uring");
        assert_eq!(r.case.point, "c100");
        assert_eq!(r.key, "tokio-uring-c100");
        use crate::report::stats::Rounded as _;
        assert_eq!(r.round(), Some(2));
        assert_eq!(r.cpu_us_per_msg(), None);
        let hold = folder(&t.0, "epoll", &[("FAILED", "server did not start\n")]);
        let r = RunFolder::read(&hold).expect("reads");
        assert_eq!((r.key.as_str(), r.case.point.as_str()), ("epoll", ""));
        assert!(r.failed && r.summary.is_none() && r.errors().is_none());
        assert_eq!(backend_and_point("uring-c1000-r25"), ("uring", "c1000-r25"));
    }

    #[test]
    fn a_garbled_case_json_is_a_clear_error_and_left_out_with_a_note() {
        let t = TempDir::new("casedir");
        let bad = folder(
            &t.0,
            "uring-c100",
            &[("case.json", "{\"point\": "), ("summary.json", SUMMARY)],
        );
        let e = format!("{:#}", RunFolder::read(&bad).expect_err("garbled"));
        assert!(
            e.contains("case.json is not valid JSON: fix it or delete it"),
            "{e}"
        );
        let wrong = folder(&t.0, "epoll-c100", &[("case.json", r#"{"point": 7}"#)]);
        let e = format!("{:#}", RunFolder::read(&wrong).expect_err("not a record"));
        assert!(e.contains("is not a case record"), "{e}");
        let huge = folder(&t.0, "go-c100", &[]);
        fs::write(
            huge.join("case.json"),
            vec![b' '; (MAX_RECORD_BYTES + 1) as usize],
        )
        .expect("write");
        let e = format!("{:#}", RunFolder::read(&huge).expect_err("too large"));
        assert!(e.contains("more than any record the kit writes"), "{e}");
        let good = folder(&t.0, "tokio-c100", &[("summary.json", SUMMARY)]);
        let (runs, notes) = read_all(&[bad, good, wrong]);
        assert_eq!(runs.len(), 1);
        assert_eq!(notes.len(), 2);
        assert!(notes[0].starts_with("- left out ") && notes[0].contains("uring-c100"));
    }
}
