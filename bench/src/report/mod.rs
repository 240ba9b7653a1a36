//! Reports as pure functions of result folders: the one run-folder reader
//! ([`folder`]: `case.json`, the loadgen's typed summary, server.json), a scenario's
//! compare.md ([`scenario_md`]: `c1m-loadgen compare`'s tables plus the hold and churn
//! tables), the headline of a whole run ([`mod@headline`]), several
//! server processes' `server.json` summed into one ([`merge_server`]) and the hold
//! scenario's `hold.json` ([`hold_json`]), both rendered by
//! `c1m_loadgen::report::serverfiles` beside their reader, and the end-of-run thresholds and exports
//! ([`gates`], through `c1m_loadgen::report::gate`); `--perf`'s table of where the
//! server's CPU went ([`profile`]).
//!
//! Statistics and number formats come from `c1m_loadgen::report::{stats, fmt}`. Nothing
//! here invents a number: a missing value prints as "-".

pub mod folder;
pub mod gates;
pub mod headline;
pub mod profile;
pub mod scenario_md;
mod spread;
mod tables;

pub use c1m_loadgen::report::serverfiles::HoldFacts;
pub use folder::{backend_and_point, run_dirs, CaseRecord, RunFolder};
use std::path::{Path, PathBuf};

/// Writes to `out` the sum of the server.json files `parts` (one per server process).
pub fn merge_server(out: &Path, parts: &[PathBuf]) -> anyhow::Result<()> {
    let text = c1m_loadgen::report::serverfiles::merged_server(parts)?;
    crate::safe_fs::write(out, text)
}

/// Writes `run_dir/hold.json` from the facts and the folder's summary and server.json.
pub fn hold_json(run_dir: &Path, facts: &HoldFacts) -> anyhow::Result<()> {
    let text = c1m_loadgen::report::serverfiles::hold_json(run_dir, facts);
    crate::safe_fs::write(&run_dir.join("hold.json"), text)
}
pub use spread::backend_rank;
pub use tables::{headline, section_churn, section_hold};
