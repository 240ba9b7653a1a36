//! Which side bound a run: the client (the loadgen's CPUs were saturated with work), the
//! server (its CPUs were), both, or neither.
//!
//! The loadgen spins the last `SPIN_NS` before each scheduled send, so its CPU use alone
//! cannot tell a saturated client from a punctual one: spin time is counted apart and
//! left out. Per-CPU busy time comes from `/proc/stat` over the measured phase, so it
//! holds everything that ran on a CPU (other processes, and softirq where the kernel
//! accounts it), not only the process that was meant to run there.

use c1m_platform::procfs::{mean_busy_pct, CpuBusy};
use serde::{Deserialize, Serialize};

/// A CPU this busy over the measured phase (%) is saturated.
pub const SATURATED_PCT: f64 = 90.0;

pub const CLIENT_BOUND: &str = "client-bound";
pub const SERVER_BOUND: &str = "server-bound";
pub const BOTH_BOUND: &str = "client- and server-bound";
pub const NEITHER: &str = "neither";

/// The mark of one run and what it rests on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Bound {
    /// [`CLIENT_BOUND`], [`SERVER_BOUND`], [`BOTH_BOUND`] or [`NEITHER`].
    pub mark: String,
    /// Busy % of the loadgen's CPUs without the loadgen's spin (mean over its CPUs).
    pub client_work_pct: Option<f64>,
    /// Busy % of the server's CPUs (mean over them; `--server-cpus`).
    pub server_busy_pct: Option<f64>,
    /// Every CPU at [`SATURATED_PCT`] or more, in words: `cpu0 (server) 97% busy, softirq 31%`.
    pub saturated_cpus: Vec<String>,
}

/// What a mark is made from (a run's `environment` in summary.json).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuFacts<'a> {
    /// Every CPU's busy share over the measured phase.
    pub cpu_window: &'a [CpuBusy],
    pub loadgen_cpus: &'a [usize],
    /// Empty when the server's CPUs are not known (another host).
    pub server_cpus: &'a [usize],
    /// The loadgen's spin and work, % of one CPU.
    pub loadgen_spin_pct: Option<f64>,
    pub loadgen_work_pct: Option<f64>,
}

impl Bound {
    /// The mark; None when neither side can be judged (no CPU figures, or only one side
    /// known and it was not saturated).
    pub fn of(env: &CpuFacts<'_>) -> Option<Bound> {
        let spin_share = env
            .loadgen_spin_pct
            .map(|s| s / env.loadgen_cpus.len().max(1) as f64);
        let client = match mean_busy_pct(env.cpu_window, env.loadgen_cpus) {
            Some(busy) => Some((busy - spin_share.unwrap_or(0.0)).max(0.0)),
            None => env
                .loadgen_work_pct
                .map(|w| w / env.loadgen_cpus.len().max(1) as f64),
        };
        let server = mean_busy_pct(env.cpu_window, env.server_cpus);
        let sat = |v: Option<f64>| v.map(|v| v >= SATURATED_PCT);
        let mark = match (sat(client), sat(server)) {
            (Some(true), Some(true)) => BOTH_BOUND,
            (Some(true), _) => CLIENT_BOUND,
            (_, Some(true)) => SERVER_BOUND,
            (Some(false), Some(false)) => NEITHER,
            _ => return None,
        };
        Some(Bound {
            mark: mark.to_owned(),
            client_work_pct: client,
            server_busy_pct: server,
            saturated_cpus: saturated(env),
        })
    }

    /// The short form tables print: `client`, `server`, `both`, `neither`.
    pub fn short(&self) -> &'static str {
        short(&self.mark)
    }
}

/// [`Bound::short`] of a mark read back from a summary.json.
pub fn short(mark: &str) -> &'static str {
    match mark {
        CLIENT_BOUND => "client",
        SERVER_BOUND => "server",
        BOTH_BOUND => "both",
        NEITHER => "neither",
        _ => "–",
    }
}

/// One table cell for the marks of a label's rounds: `server` when they agree,
/// `server 2, both 1` when not, `–` when no round could be judged.
pub fn marks_cell<'a>(marks: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for m in marks.into_iter().flatten().map(short) {
        match counts.iter_mut().find(|(k, _)| *k == m) {
            Some((_, n)) => *n += 1,
            None => counts.push((m, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    match counts.as_slice() {
        [] => "–".to_owned(),
        [(m, _)] => (*m).to_owned(),
        _ => counts
            .iter()
            .map(|(m, n)| format!("{m} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A note line per run that had a saturated CPU: `- saturated: uring-c1000-r50 (round 2):
/// cpu0 (server) 97% busy, softirq 0%`. Runs are (name, round, mark). Empty when none had.
pub fn saturation_notes<'a>(
    runs: impl IntoIterator<Item = (&'a str, Option<u64>, Option<&'a Bound>)>,
) -> String {
    let mut out = String::new();
    for (name, round, bound) in runs {
        let Some(b) = bound.filter(|b| !b.saturated_cpus.is_empty()) else {
            continue;
        };
        let round = round.map(|r| format!(" (round {r})")).unwrap_or_default();
        out.push_str(&format!(
            "- saturated: {name}{round}: {}\n",
            b.saturated_cpus.join("; ")
        ));
    }
    out
}

/// The note under a table with a bound column.
pub const NOTE: &str = "bound: whose CPUs were saturated (at least 90% busy over the measured phase, from /proc/stat; the loadgen's polling for its next send does not count as work): server, client, both or neither; – where it could not be told. A closed-loop msgs/s is the server's maximum only where the mark is server; where it is client, it is the loadgen's ceiling.";

fn saturated(env: &CpuFacts<'_>) -> Vec<String> {
    env.cpu_window
        .iter()
        .filter(|c| c.busy_pct >= SATURATED_PCT)
        .map(|c| {
            let role = match (
                env.server_cpus.contains(&c.cpu),
                env.loadgen_cpus.contains(&c.cpu),
            ) {
                (true, true) => "server and client",
                (true, false) => "server",
                (false, true) => "client",
                (false, false) => "other",
            };
            format!(
                "cpu{} ({role}) {:.0}% busy, softirq {:.0}%",
                c.cpu, c.busy_pct, c.softirq_pct
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(cpu: usize, busy: f64, softirq: f64) -> CpuBusy {
        CpuBusy {
            cpu,
            busy_pct: busy,
            softirq_pct: softirq,
            ..CpuBusy::default()
        }
    }

    /// Owned facts: server on CPU 0, loadgen on CPU 1.
    struct Env {
        window: Vec<CpuBusy>,
        loadgen: Vec<usize>,
        server: Vec<usize>,
        spin: Option<f64>,
        work: Option<f64>,
    }

    impl Env {
        fn facts(&self) -> CpuFacts<'_> {
            CpuFacts {
                cpu_window: &self.window,
                loadgen_cpus: &self.loadgen,
                server_cpus: &self.server,
                loadgen_spin_pct: self.spin,
                loadgen_work_pct: self.work,
            }
        }
    }

    fn env(server: f64, client: f64, spin: Option<f64>) -> Env {
        Env {
            window: vec![cpu(0, server, 5.0), cpu(1, client, 30.0)],
            loadgen: vec![1],
            server: vec![0],
            spin,
            work: None,
        }
    }

    fn mark(e: &Env) -> Option<String> {
        Bound::of(&e.facts()).map(|b| b.mark)
    }

    #[test]
    fn marks_from_synthetic_cpu_samples() {
        assert_eq!(mark(&env(97.0, 40.0, None)).as_deref(), Some(SERVER_BOUND));
        assert_eq!(mark(&env(50.0, 99.0, None)).as_deref(), Some(CLIENT_BOUND));
        assert_eq!(mark(&env(95.0, 95.0, None)).as_deref(), Some(BOTH_BOUND));
        assert_eq!(mark(&env(50.0, 60.0, None)).as_deref(), Some(NEITHER));
    }

    #[test]
    fn spinning_is_not_work() {
        // The client CPU is 100% busy, 70 points of it polling for the next send.
        let b = Bound::of(&env(50.0, 100.0, Some(70.0)).facts()).expect("judged");
        assert_eq!(b.mark, NEITHER);
        assert!((b.client_work_pct.unwrap() - 30.0).abs() < 1e-9);
        // Spin is per loadgen CPU: two CPUs spinning 70% of one CPU in all.
        let mut e = env(50.0, 100.0, Some(70.0));
        e.loadgen = vec![1, 2];
        e.window.push(cpu(2, 100.0, 0.0));
        let b = Bound::of(&e.facts()).expect("judged");
        assert!((b.client_work_pct.unwrap() - 65.0).abs() < 1e-9);
        assert_eq!(b.mark, NEITHER);
    }

    #[test]
    fn names_the_saturated_cpus_and_their_softirq() {
        let b = Bound::of(&env(97.0, 99.0, Some(0.0)).facts()).expect("judged");
        assert_eq!(
            b.saturated_cpus,
            vec![
                "cpu0 (server) 97% busy, softirq 5%".to_string(),
                "cpu1 (client) 99% busy, softirq 30%".to_string()
            ]
        );
    }

    #[test]
    fn cells_for_the_rounds_of_a_label() {
        assert_eq!(marks_cell([Some(SERVER_BOUND); 3]), "server");
        assert_eq!(
            marks_cell([Some(SERVER_BOUND), Some(BOTH_BOUND), Some(SERVER_BOUND)]),
            "server 2, both 1"
        );
        assert_eq!(marks_cell([None, Some(NEITHER)]), "neither");
        assert_eq!(marks_cell([None, None]), "–");
    }

    #[test]
    fn notes_name_runs_with_a_saturated_cpu() {
        let b = Bound::of(&env(97.0, 40.0, None).facts());
        assert_eq!(
            saturation_notes([("uring-c1000-r50", Some(2), b.as_ref())]),
            "- saturated: uring-c1000-r50 (round 2): cpu0 (server) 97% busy, softirq 5%\n"
        );
        let b = Bound::of(&env(50.0, 40.0, None).facts());
        assert_eq!(
            saturation_notes([("uring-c1000-r50", Some(2), b.as_ref())]),
            ""
        );
        assert_eq!(saturation_notes([("x", None, None)]), "");
    }

    #[test]
    fn one_side_unknown() {
        // No server CPUs given: a saturated client still marks; an idle one says nothing.
        let mut e = env(0.0, 99.0, None);
        e.server.clear();
        assert_eq!(mark(&e).as_deref(), Some(CLIENT_BOUND));
        e.window[1].busy_pct = 20.0;
        assert_eq!(mark(&e), None);
        // No per-CPU window (no /proc/stat): the loadgen's own work counts.
        let e = Env {
            window: Vec::new(),
            loadgen: vec![1],
            server: Vec::new(),
            spin: None,
            work: Some(95.0),
        };
        assert_eq!(mark(&e).as_deref(), Some(CLIENT_BOUND));
        assert_eq!(Bound::of(&CpuFacts::default()), None);
    }
}
