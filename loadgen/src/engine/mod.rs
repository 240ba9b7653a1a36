//! The run engine: connect, drive the workload, verify, record.

use crate::cli::RunArgs;
use std::process::ExitCode;

/// Runs a workload; exit status non-zero when any echo failed verification.
pub fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("c1m-loadgen run is not built yet")
}
