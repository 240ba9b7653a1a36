//! What the report tables are made of: a run folder read for comparing ([`Run`]: its
//! [`RunRecord`] and the server's `server.json` as [`ServerStats`]), the one definition
//! of server CPU per message ([`ServerStats::cpu_us_per_msg`]), and the notes every
//! table shares.
//!
//! server.json (written by `c1m-server --stats-json`) sits in the run folder or in its
//! parent folder. Its fields are read leniently (missing or odd fields leave a cell
//! empty): `backend`, `cpu_user_s`, `cpu_sys_s`, `syscalls`, `requests`, `bytes_in`,
//! `rss_per_peak_conn_bytes`, `rss_peak_bytes`.

use super::rundir::{read_run_dir, RunRecord};
use super::stats::Rounded;
use super::summary::Workload;
use anyhow::Context as _;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

pub const SERVER_FILE: &str = "server.json";

/// What compare takes from a server.json.
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub path: PathBuf,
    pub backend: Option<String>,
    /// User + system CPU seconds over the server's life.
    pub cpu_s: Option<f64>,
    pub syscalls: Option<f64>,
    pub recvs: Option<f64>,
    /// Requests the server answered (frame, http), bytes it read (echo).
    pub requests: Option<f64>,
    pub bytes_in: Option<f64>,
    pub rss_per_conn_bytes: Option<f64>,
    pub rss_peak_bytes: Option<f64>,
}

impl ServerStats {
    pub fn from_json(path: PathBuf, v: &Value) -> ServerStats {
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let cpu_s = match (num("cpu_user_s"), num("cpu_sys_s")) {
            (None, None) => None,
            (u, s) => Some(u.unwrap_or(0.0) + s.unwrap_or(0.0)),
        };
        ServerStats {
            path,
            backend: v.get("backend").and_then(|b| match b {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            }),
            cpu_s,
            syscalls: num("syscalls"),
            recvs: num("recvs"),
            requests: num("requests"),
            bytes_in: num("bytes_in"),
            rss_per_conn_bytes: num("rss_per_peak_conn_bytes"),
            rss_peak_bytes: num("rss_peak_bytes"),
        }
    }

    /// Messages the server itself counted over its life: the `requests` it answered
    /// (frame, http), else the bytes it read / the message size (echo).
    pub fn messages(&self, msg_size: f64) -> Option<f64> {
        let requests = self.requests.unwrap_or(0.0);
        let msgs = if requests > 0.0 {
            requests
        } else if msg_size != 0.0 {
            self.bytes_in.unwrap_or(0.0) / msg_size
        } else {
            0.0
        };
        (msgs != 0.0).then_some(msgs)
    }

    /// The one definition of "srv CPU µs/msg": the server's user+sys CPU over its life /
    /// the messages it counted over the same life ([`ServerStats::messages`]), warm-up
    /// and connection set-up included on both sides. The server's own count, not the
    /// client's: numerator and denominator then cover the same process and the same
    /// span, whatever the clients recorded (several shards or hosts, echoes lost at the
    /// end, wrk that writes no interval log).
    pub fn cpu_us_per_msg(&self, msg_size: f64) -> Option<f64> {
        let cpu = self.cpu_s.unwrap_or(0.0);
        (cpu != 0.0).then_some(cpu * 1e6 / self.messages(msg_size)?)
    }
}

/// The server.json for a run folder: in it, else in its parent. Unreadable or invalid
/// files are reported on stderr and skipped (the table is still useful without them).
pub fn find_server_stats(dir: &Path) -> Option<ServerStats> {
    let mut candidates = vec![dir.join(SERVER_FILE)];
    if let Some(parent) = dir.parent() {
        candidates.push(parent.join(SERVER_FILE));
    }
    for path in candidates {
        if !path.is_file() {
            continue;
        }
        match fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(anyhow::Error::from))
        {
            Ok(v) => return Some(ServerStats::from_json(path, &v)),
            Err(e) => {
                eprintln!(
                    "c1m-loadgen compare: ignoring {}: {e} (rewrite it with c1m-server --stats-json)",
                    path.display()
                );
            }
        }
    }
    None
}

/// How the server columns are made (a note under the table).
pub const SERVER_COLUMNS_NOTE: &str =
    "- srv CPU µs/msg, syscalls/msg: the server's user+sys CPU time and syscalls over its whole life (server.json) \
     divided by the messages the server counted over its life (requests answered, else bytes read / message size), \
     warm-up and connection set-up included.\n\
     - RSS/conn: (peak RSS − RSS before the first connection) / peak connections.\n";

/// One column of the comparison.
pub struct Run {
    pub name: String,
    pub record: RunRecord,
    pub server: Option<ServerStats>,
}

impl Run {
    /// Errors of every kind: failed echo verification, failed connects, connections lost.
    pub fn errors(&self) -> u64 {
        let s = &self.record.summary;
        s.verify_errors + s.connections_failed + s.connection_errors.values().sum::<u64>()
    }

    fn msg_size(&self) -> f64 {
        self.record.summary.workload.size as f64
    }

    /// Server CPU µs per message ([`ServerStats::cpu_us_per_msg`]).
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        self.server.as_ref()?.cpu_us_per_msg(self.msg_size())
    }

    /// Server syscalls per message the server counted (the denominator of
    /// [`Run::cpu_us_per_msg`]).
    pub fn syscalls_per_msg(&self) -> Option<f64> {
        let s = self.server.as_ref()?;
        Some(s.syscalls? / s.messages(self.msg_size())?)
    }
}

fn run_name(dir: &Path, rec: &RunRecord) -> String {
    if !rec.summary.label.trim().is_empty() {
        return rec.summary.label.trim().to_owned();
    }
    let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Reads the folders in order; the first is the baseline of the ratio columns.
pub fn load_runs(dirs: &[PathBuf]) -> anyhow::Result<Vec<Run>> {
    dirs.iter()
        .map(|dir| {
            let record =
                read_run_dir(dir).with_context(|| format!("cannot compare {}", dir.display()))?;
            Ok(Run {
                name: run_name(dir, &record),
                server: find_server_stats(dir),
                record,
            })
        })
        .collect()
}

/// A note naming the protocol of each run (`- protocol: http (body 16 B): a, b.`), or
/// nothing when every run is echo (the default).
pub fn protocol_note<'a>(runs: impl Iterator<Item = (&'a str, &'a Workload)>) -> String {
    let mut by_protocol: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, w) in runs {
        let desc = w.protocol_desc();
        match by_protocol.iter_mut().find(|(d, _)| *d == desc) {
            Some((_, names)) => {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            None => by_protocol.push((desc, vec![name])),
        }
    }
    if by_protocol.iter().all(|(d, _)| d == "echo") {
        return String::new();
    }
    let parts: Vec<String> = by_protocol
        .iter()
        .map(|(d, names)| format!("{d}: {}", names.join(", ")))
        .collect();
    let mut note = format!("- protocol: {}.\n", parts.join("; "));
    if by_protocol.len() > 1 {
        note.push_str(
            "- these runs speak different protocols: their numbers measure different work.\n",
        );
    }
    note
}

impl Rounded for Run {
    fn round(&self) -> Option<u64> {
        self.record.summary.round
    }
}
