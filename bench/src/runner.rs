//! What every case runner shares: the run's context ([`Ctx`]), waiting for the sockets
//! of earlier runs to go, the hold sampler, and the small helpers for commands and logs.

use crate::interrupt;
use crate::plan::{CpuSplit, Limits, Scale};
use crate::procs::Procs;
use crate::topology::active::Topology;
use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a whole run shares between its cases.
pub struct Ctx<'a> {
    pub server_bin: PathBuf,
    pub loadgen_bin: PathBuf,
    pub split: CpuSplit,
    pub scale: Scale,
    pub limits: Limits,
    pub tag: Option<String>,
    /// The private temporary folder of this run.
    pub tmp: PathBuf,
    /// TCP sockets in use when the run started.
    pub start_inuse: u64,
    pub procs: &'a mut Procs,
    /// Where the server and the loadgen shards run.
    pub topo: &'a Topology,
    /// "name (scenario folder): reason" of every failed run.
    pub failures: Vec<String>,
    /// What the echo scenarios' servers and loadgens speak.
    pub wire: crate::wire::Wire,
    /// Where a variant's sysctls are applied for its cases.
    pub sysctl: crate::sysctl::Sysctl,
    /// nginx and wrk, while the http scenario runs.
    pub http: Option<crate::http::HttpEnv>,
    /// `--metrics` and `--perf`.
    pub observe: crate::observe::Observe,
}

impl Ctx<'_> {
    /// The loadgen label of run `name` (the rounds of one run share it).
    pub fn label(&self, name: &str) -> String {
        let name = crate::rounds::label_of(name);
        match &self.tag {
            Some(t) => format!("{name}-{t}"),
            None => name.to_owned(),
        }
    }
}

/// Until the sockets of earlier runs are gone: TCP sockets in use where the topology
/// runs down to `target`, or not falling for 3 s (other users' sockets), or `timeout`
/// (warned about).
pub fn wait_drained(topo: &Topology, timeout: Duration, target: u64) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut low = topo.tcp_inuse();
    let mut since = Instant::now();
    loop {
        let inuse = topo.tcp_inuse();
        if inuse <= target {
            return Ok(());
        }
        if inuse + 100 < low {
            low = inuse;
            since = Instant::now();
        } else if since.elapsed() >= Duration::from_secs(3) {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            crate::warn(format!(
                "{inuse} TCP sockets still in use after {}s (waiting for {target}); going on",
                timeout.as_secs()
            ));
            return Ok(());
        }
        interrupt::sleep(Duration::from_millis(500))?;
    }
}

pub use crate::procs::{quote_cmd, shell_quote};

pub(crate) fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::safe_fs::append(path, text)
}

/// The last `n` lines of a file matching `keep`, each followed by a space.
pub(crate) fn tail_words(path: &Path, n: usize, keep: impl Fn(&str) -> bool) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("{l} "))
        .collect()
}

/// Copies what a log file gains to stderr (the loadgen's progress on a terminal).
pub(crate) struct Follower {
    path: PathBuf,
    pos: u64,
}

impl Follower {
    pub(crate) fn new(path: PathBuf) -> Follower {
        Follower { path, pos: 0 }
    }

    pub(crate) fn pump(&mut self) {
        let Ok(mut f) = fs::File::open(&self.path) else {
            return;
        };
        if f.seek(SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if let Ok(n) = f.read_to_end(&mut buf) {
            self.pos += n as u64;
            let _ = std::io::stderr().write_all(&buf);
        }
    }
}

pub(crate) fn stderr_is_tty() -> bool {
    // SAFETY: isatty takes an fd number only.
    unsafe { libc::isatty(2) == 1 }
}

/// [`c1m_platform::procfs::slab_in_use`], its per-cache lines written to `out`.
pub(crate) fn slab_snapshot(out: &Path) -> Option<u64> {
    let (total, lines) = c1m_platform::procfs::slab_in_use()?;
    crate::safe_fs::write(out, lines).ok()?;
    Some(total)
}

/// Slab and socket counts around a hold run.
#[derive(Default)]
pub(crate) struct HoldSampler {
    pub(crate) slab_before_kb: u64,
    pub(crate) slab_peak_kb: u64,
    pub(crate) inuse_before: u64,
    pub(crate) inuse_peak: u64,
    pub(crate) sl_before: u64,
    pub(crate) sl_peak: u64,
    /// Sockets in use at the last read of /proc/slabinfo (None: not read yet), and at
    /// the previous sample.
    pub(crate) sl_read_inuse: Option<u64>,
    pub(crate) prev_inuse: u64,
}

/// Whether to read /proc/slabinfo now. A read walks every cache's partial slab lists, in
/// stretches with interrupts off: 4-5 ms of a CPU at 1M held (measured here), and a
/// scheduler trace of a 1M hold showed the orchestrator holding the server's CPU for
/// 1.8-2.7 ms at each read. The slab grows with the sockets, so it is read while their
/// count grows by 0.5% or more, once more when it has stopped growing (the ramp's end:
/// the peak), and not while it stands still: not through the measured heartbeats.
fn slabinfo_due(last_read: Option<u64>, prev_sample: u64, inuse: u64) -> bool {
    match last_read {
        None => true,
        Some(last) => inuse > last + last / 200 || (inuse > last && inuse == prev_sample),
    }
}

impl HoldSampler {
    /// One sample; `inuse` is the topology's TCP sockets in use now.
    pub(crate) fn sample(&mut self, dir: &Path, tmp: &Path, inuse: u64) {
        self.slab_peak_kb = self.slab_peak_kb.max(crate::preflight::meminfo_kb("Slab"));
        self.inuse_peak = self.inuse_peak.max(inuse);
        let due = slabinfo_due(self.sl_read_inuse, self.prev_inuse, inuse);
        self.prev_inuse = inuse;
        if self.sl_before > 0 && due {
            self.sl_read_inuse = Some(inuse);
            let now = tmp.join("slab-now.txt");
            if let Some(sl) = slab_snapshot(&now).filter(|&sl| sl > self.sl_peak) {
                self.sl_peak = sl;
                let _ = fs::rename(&now, dir.join("slab-peak.txt"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use c1m_machine::tempdir::TempDir;

    #[test]
    fn slabinfo_is_read_on_the_ramp_and_at_its_end_only() {
        assert!(slabinfo_due(None, 0, 0), "the first sample reads");
        assert!(
            slabinfo_due(Some(100_000), 110_000, 120_000),
            "the count grows: read"
        );
        assert!(
            !slabinfo_due(Some(2_000_000), 2_004_000, 2_005_000),
            "+0.25% and still growing: wait"
        );
        assert!(
            slabinfo_due(Some(2_000_000), 2_005_000, 2_005_000),
            "it stopped growing: the peak, read once more"
        );
        assert!(
            !slabinfo_due(Some(2_005_000), 2_005_000, 2_005_000),
            "held: never again while it stands still"
        );
        assert!(
            !slabinfo_due(Some(2_005_000), 2_005_000, 2_004_000),
            "shrinking"
        );
    }

    #[test]
    fn quoting_like_printf_q() {
        assert_eq!(shell_quote("127.0.0.1:7000"), "127.0.0.1:7000");
        assert_eq!(shell_quote("a b"), "a\\ b");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(
            quote_cmd(&["x".into(), "--label".into(), "it's".into()]),
            "x --label it\\'s"
        );
    }

    #[test]
    fn log_tails() {
        let t = TempDir::new();
        assert_eq!(tail_words(&t.0.join("none"), 2, |_| true), "");
        fs::write(t.0.join("log"), "a\n[progress]\nb\nc\n").unwrap();
        assert_eq!(
            tail_words(&t.0.join("log"), 2, |l| !l.starts_with('[')),
            "b c "
        );
    }
}
