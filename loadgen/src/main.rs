use c1m_loadgen::cli::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => c1m_loadgen::engine::run(*args),
        Command::Compare(a) => c1m_loadgen::report::gate::compare_cli(&a),
        Command::Merge(a) => {
            c1m_loadgen::report::merge::merge(&a.dirs, &a.out).map(|_| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("c1m-loadgen: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
