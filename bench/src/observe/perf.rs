//! `--perf` in a case: `perf record` of this machine's server process(es) from the moment
//! they are ready until the client ends; the rest (commands, cutting to the measured
//! window, folding, the flame graph, the breakdown) is [`c1m_outside::perf`].

use crate::runner::{append, quote_cmd, Ctx};
pub use c1m_outside::perf::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A `perf record` running in the case folder.
pub struct Recording {
    pid: i32,
    perf: PathBuf,
    pids: Vec<i32>,
}

/// Starts `perf record` of every process in the groups of `servers` when `--perf` is
/// on and the server runs on this machine.
pub fn start(ctx: &mut Ctx, dir: &Path, servers: &[i32]) -> anyhow::Result<Option<Recording>> {
    if !ctx.observe.perf || ctx.topo.placement.server.site.remote.is_some() {
        return Ok(None);
    }
    let perf = find()?;
    let mut pids: Vec<i32> = servers
        .iter()
        .flat_map(|&g| crate::http::cpu::group_pids(g))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    if pids.is_empty() {
        pids = servers.to_vec();
    }
    let argv = record_argv(&perf, &pids, &dir.join("perf.data"));
    append(&dir.join("cmd.txt"), &format!("{}\n", quote_cmd(&argv)))?;
    let pid = ctx
        .procs
        .spawn(&argv, &dir.join("perf.out"), &dir.join("perf.log"))?;
    // Attached before the loadgen's warm-up ends.
    crate::interrupt::sleep(Duration::from_millis(200))?;
    Ok(Some(Recording { pid, perf, pids }))
}

impl Recording {
    /// Stops perf (SIGINT: it writes perf.data and exits).
    pub fn stop(self, ctx: &mut Ctx) -> Stopped {
        ctx.procs
            .stop(libc::SIGINT, Duration::from_secs(30), &[self.pid]);
        Stopped::new(self.perf, self.pids)
    }
}
