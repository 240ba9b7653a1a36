//! `c1m-refclient`: an independent reference echo client. It shares no code with
//! `c1m-loadgen` (std and libc only) so the loadgen's latency can be checked against
//! something that measures the plainest way: one blocking socket, one message in
//! flight, `clock_gettime` around write and read, percentiles from sorted raw samples.

mod args;
mod client;
mod clock;
mod stats;

use args::{Mode, Parsed};
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match args::parse(&argv) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("c1m-refclient: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    if let Some(cpu) = args.cpu {
        if let Err(e) = clock::pin_to_cpu(cpu) {
            eprintln!(
                "c1m-refclient: --cpu {cpu}: cannot pin to it: {e} (is it online and allowed?)"
            );
            return ExitCode::from(2);
        }
    }
    if let Err(e) = clock::set_timer_slack_1us() {
        eprintln!("c1m-refclient: warning: cannot set 1 µs timer slack: {e}; sends may be late");
    }
    let mut stream = match client::connect(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("c1m-refclient: cannot connect to {}: {e}", args.target);
            return ExitCode::from(1);
        }
    };
    let mut samples = match client::run(&args, &mut stream) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("c1m-refclient: connection to {} failed: {e}", args.target);
            return ExitCode::from(1);
        }
    };
    let lat = stats::figures(&mut samples.latency_ns);
    let lag = stats::figures(&mut samples.send_lag_ns);
    let (mode, rate, lag_p99) = match args.mode {
        Mode::Closed => ("closed", "null".to_owned(), "null".to_owned()),
        Mode::Open(r) => ("open", format!("{r}"), format!("{:.3}", lag.p99_us)),
    };
    println!(
        "{{\"mode\": \"{mode}\", \"rate\": {rate}, \"messages\": {}, \"p50_us\": {:.3}, \"p90_us\": {:.3}, \
         \"p99_us\": {:.3}, \"p999_us\": {:.3}, \"max_us\": {:.3}, \"mean_us\": {:.3}, \
         \"send_lag_p99_us\": {lag_p99}, \"verify_errors\": {}}}",
        lat.count,
        lat.p50_us,
        lat.p90_us,
        lat.p99_us,
        lat.p999_us,
        lat.max_us,
        lat.mean_us,
        samples.verify_errors
    );
    if samples.verify_errors > 0 {
        eprintln!(
            "c1m-refclient: {} echoes did not match what was sent",
            samples.verify_errors
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
