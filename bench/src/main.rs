//! `c1m-bench`: see the crate documentation and `scripts/c1m.sh --help`.

use c1m_bench::cli::{Cli, Cmd};
use c1m_bench::interrupt::{exit_status, Interrupted};
use c1m_bench::{session, watchdog, UsageError};
use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(args) => session::run(*args),
        Cmd::Watchdog(args) => watchdog::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(u) = e.downcast_ref::<UsageError>() {
                c1m_bench::sayln!("c1m: {u}");
                ExitCode::from(2)
            } else if let Some(Interrupted(sig)) = e.downcast_ref::<Interrupted>() {
                ExitCode::from(exit_status(*sig))
            } else {
                c1m_bench::sayln!("c1m: error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}
