//! The cases of result folders: every run folder read once ([`RunFolder`]), grouped
//! into its case (one scenario, one run name such as `uring-c1000-r50`) over its
//! rounds. A folder given may be a run folder, a scenario folder
//! (`<stamp>-<host>-<scenario>`, rounds in `round-N/`) or a folder of scenario folders
//! (a run's `--out`).

use super::super::casedir::{run_dirs, RunFolder};
use super::super::stats::Rounded;
use super::metric::Metric;
use anyhow::bail;
use std::path::{Path, PathBuf};

/// One case over its rounds.
#[derive(Debug)]
pub struct Case {
    /// The scenario, with `-frame`/`-http` when an echo scenario spoke that protocol
    /// (as its folder is named): `latency`, `pingpong-frame`, `hold`, `http`.
    pub scenario: String,
    /// The run folder's name: `uring-c1000-r50`, `go-wrk-c1000`, `epoll`.
    pub name: String,
    pub variant: String,
    /// `c1m-loadgen` or `wrk`.
    pub client: String,
    /// `c1000-r50`; empty where a scenario has one point.
    pub point: String,
    /// summary.json `workload.kind` of its first round that has one.
    pub kind: String,
    /// Its rounds, in the order read.
    pub runs: Vec<RunFolder>,
}

fn is_run(p: &Path) -> bool {
    p.join("summary.json").is_file() || p.join("FAILED").exists()
}

/// The run folders of `dir`: itself, those of a scenario folder, or those of every
/// scenario folder in it.
fn expand(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!("{} is not a folder: give a run folder, a scenario folder (results/<stamp>-<host>-<scenario>) or a run's --out folder", dir.display());
    }
    if is_run(dir) {
        return Ok(vec![dir.to_path_buf()]);
    }
    let own = run_dirs(dir);
    if !own.is_empty() {
        return Ok(own);
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    subs.sort();
    let found: Vec<PathBuf> = subs
        .iter()
        .filter(|p| p.is_dir())
        .flat_map(|p| run_dirs(p))
        .collect();
    if found.is_empty() {
        bail!("{} holds no run folder (none with summary.json or FAILED): give a run folder, a scenario folder (results/<stamp>-<host>-<scenario>) or a run's --out folder", dir.display());
    }
    Ok(found)
}

/// The scenario folder's name of a run folder (`round-N` folders skipped).
fn scenario_folder(run: &Path) -> String {
    let mut parent = run.parent();
    if let Some(p) = parent.filter(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("round-"))
    }) {
        parent = p.parent();
    }
    parent
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The scenario of a run: case.json's, else (folders recorded before case.json named it)
/// `http` in a folder named `...-http`, else what its workload was.
fn scenario_of(r: &RunFolder) -> String {
    let protocol = r
        .case
        .protocol
        .clone()
        .or_else(|| r.summary.as_ref().map(|s| s.workload.protocol.clone()))
        .unwrap_or_default();
    let base = match &r.case.scenario {
        Some(s) => s.clone(),
        None if scenario_folder(&r.dir).ends_with("-http") => "http".into(),
        None => match r.summary.as_ref().map(|s| s.workload.kind.as_str()) {
            Some("rate") => "latency".into(),
            Some("heartbeat") => "hold".into(),
            Some("churn") => "churn".into(),
            _ => "pingpong".into(),
        },
    };
    match protocol.as_str() {
        "frame" | "http" if base != "http" => format!("{base}-{protocol}"),
        _ => base,
    }
}

/// The cases of `dirs` (each a run, scenario or `--out` folder), in the order their
/// first round came. A folder that cannot be read is an error naming it.
pub fn collect(dirs: &[PathBuf]) -> anyhow::Result<Vec<Case>> {
    let mut cases: Vec<Case> = Vec::new();
    for dir in dirs {
        for run in expand(dir)? {
            let r = RunFolder::read(&run)?;
            let scenario = scenario_of(&r);
            let kind = r
                .summary
                .as_ref()
                .map(|s| s.workload.kind.clone())
                .unwrap_or_default();
            match cases
                .iter_mut()
                .find(|c| c.scenario == scenario && c.name == r.name)
            {
                Some(c) => {
                    if c.kind.is_empty() {
                        c.kind = kind;
                    }
                    c.runs.push(r);
                }
                None => cases.push(Case {
                    scenario,
                    name: r.name.clone(),
                    variant: r.case.variant().to_owned(),
                    client: r
                        .case
                        .client
                        .clone()
                        .unwrap_or_else(|| "c1m-loadgen".into()),
                    point: r.case.point.clone(),
                    kind,
                    runs: vec![r],
                }),
            }
        }
    }
    Ok(cases)
}

impl Case {
    /// `latency uring-c1000-r50`: how lines name the case.
    pub fn title(&self) -> String {
        format!("{} {}", self.scenario, self.name)
    }

    /// `metric` of every round, in run order.
    pub fn values(&self, m: &Metric) -> Vec<Option<f64>> {
        self.runs.iter().map(|r| (m.get)(r)).collect()
    }

    pub fn rounds(&self) -> Vec<Option<u64>> {
        self.runs.iter().map(Rounded::round).collect()
    }

    /// Rounds that failed (a FAILED file).
    pub fn failed(&self) -> usize {
        self.runs.iter().filter(|r| r.failed).count()
    }

    /// Whether the case has `m`: its workload defines it and some round has a value.
    pub fn has(&self, m: &Metric) -> bool {
        m.defined_for(&self.kind) && self.values(m).iter().any(Option::is_some)
    }

    /// The names of the metrics this case has.
    pub fn metric_names(&self) -> Vec<&'static str> {
        super::metric::METRICS
            .iter()
            .filter(|m| self.has(m))
            .map(|m| m.name)
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;

    /// A run folder `<root>/<scenario folder>/round-<round>/<name>` with case.json,
    /// summary.json (`p99` µs, `rate` msgs/s, `kind`) and a server.json giving `cpu` µs
    /// per message.
    pub(crate) fn run_folder(
        root: &Path,
        sfolder: &str,
        round: u64,
        name: &str,
        kind: &str,
        (cpu, p99, rate): (f64, f64, f64),
    ) -> PathBuf {
        let rel = format!("round-{round}/{name}");
        let d = root.join(sfolder).join(&rel);
        fs::create_dir_all(&d).expect("mkdir");
        let mut runs = fs::read_to_string(root.join(sfolder).join("runs.txt")).unwrap_or_default();
        runs.push_str(&format!("{rel}\n"));
        fs::write(root.join(sfolder).join("runs.txt"), runs).expect("runs.txt");
        let (variant, point) = crate::report::casedir::backend_and_point(name);
        let scenario = sfolder.rsplit('-').next().unwrap_or(sfolder);
        fs::write(
            d.join("case.json"),
            format!(
                r#"{{"variant": "{variant}", "scenario": "{scenario}", "point": "{point}", "round": {round}}}"#
            ),
        )
        .expect("case.json");
        fs::write(
            d.join("summary.json"),
            format!(
                r#"{{"round": {round}, "throughput_msgs_per_s": {rate}, "connections_established": 100,
                   "workload": {{"kind": "{kind}", "size": 64}}, "latency": {{"p50_us": 50, "p99_us": {p99}}}}}"#
            ),
        )
        .expect("summary.json");
        // 1M messages: CPU seconds = µs per message.
        fs::write(
            d.join("server.json"),
            format!(r#"{{"cpu_user_s": 0, "cpu_sys_s": {cpu}, "bytes_in": 64000000}}"#),
        )
        .expect("server.json");
        d
    }

    #[test]
    fn folders_of_every_kind_group_into_cases() {
        let t = crate::report::rundir::tests::TempDir::new("cases");
        let sf = "2026-01-01-1200-h-latency";
        for round in 1..=3 {
            for name in ["uring-c1000-r50", "epoll-c1000-r50"] {
                run_folder(&t.0, sf, round, name, "rate", (4.0, 100.0, 1000.0));
            }
        }
        // A run's --out folder, a scenario folder and one run folder give the same cases.
        let all = collect(std::slice::from_ref(&t.0)).expect("out folder");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].scenario, "latency");
        assert_eq!(all[0].runs.len(), 3);
        assert_eq!(all[0].kind, "rate");
        assert_eq!(
            (all[0].variant.as_str(), all[0].point.as_str()),
            ("uring", "c1000-r50")
        );
        assert_eq!(all[0].rounds(), vec![Some(1), Some(2), Some(3)]);
        assert!(all[0].metric_names().contains(&"cpu_us_per_msg"));
        assert!(!all[0].metric_names().contains(&"slab_per_conn_bytes"));
        let s = collect(&[t.0.join(sf)]).expect("scenario folder");
        assert_eq!(s.len(), 2);
        let one = collect(&[t.0.join(sf).join("round-2").join("epoll-c1000-r50")]).expect("run");
        assert_eq!((one.len(), one[0].runs.len()), (1, 1));
        assert_eq!(one[0].title(), "latency epoll-c1000-r50");
        let e = format!("{:#}", collect(&[t.0.join("nope")]).expect_err("missing"));
        assert!(e.contains("is not a folder"), "{e}");
        fs::create_dir_all(t.0.join("empty")).expect("mkdir");
        let e = format!("{:#}", collect(&[t.0.join("empty")]).expect_err("empty"));
        assert!(e.contains("holds no run folder"), "{e}");
    }
}
