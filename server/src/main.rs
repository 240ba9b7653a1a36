use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = c1m_server::config::Args::parse();
    match c1m_server::server::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("c1m-server: error: {:#}", failure.error());
            ExitCode::from(failure.exit_code())
        }
    }
}
