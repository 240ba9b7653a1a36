use c1m_loadgen::cli::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => c1m_loadgen::engine::run(*args),
        Command::Compare(args) => {
            c1m_loadgen::report::compare::run(args).map(|()| ExitCode::SUCCESS)
        }
        Command::Merge(args) => c1m_loadgen::report::merge::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("c1m-loadgen: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
