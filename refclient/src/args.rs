//! The command line, parsed by hand (std only).

use std::net::SocketAddr;

pub const USAGE: &str = "\
usage: c1m-refclient --target ADDR:PORT (--closed | --rate MSGS/S)
                     [--duration SECS] [--warmup SECS] [--size BYTES] [--cpu N]

One blocking TCP connection (TCP_NODELAY) to an echo server; every echo is read back
whole and compared byte for byte.
  --closed        closed loop: send, wait for the echo, send again
  --rate R        open loop: R sends per second on a fixed schedule; latency is measured
                  from the intended send time (coordinated omission corrected). One
                  message is in flight: a send waits for the previous echo, so keep R
                  well below 1/latency; send_lag_p99_us says how late sends left
  --duration S    measured seconds (default 5)
  --warmup S      seconds before measuring (default 1)
  --size B        message size in bytes (default 64)
  --cpu N         pin this process to CPU N
Prints one JSON object on stdout. Exit 0; 1 when an echo was wrong or the connection
failed; 2 for bad flags.";

/// How messages are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Closed,
    /// Messages per second.
    Open(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub target: SocketAddr,
    pub mode: Mode,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub size: usize,
    pub cpu: Option<usize>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Args),
    Help,
}

fn seconds(flag: &str, v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(format!("{flag} {v}: expected seconds (a number >= 0)")),
    }
}

/// Parses the arguments after the program name.
pub fn parse(argv: &[String]) -> Result<Parsed, String> {
    let mut target: Option<SocketAddr> = None;
    let mut closed = false;
    let mut rate: Option<f64> = None;
    let mut duration_s = 5.0;
    let mut warmup_s = 1.0;
    let mut size = 64;
    let mut cpu = None;
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let flag = flag.as_str();
        if matches!(flag, "-h" | "--help") {
            return Ok(Parsed::Help);
        }
        if flag == "--closed" {
            closed = true;
            continue;
        }
        let value = match flag {
            "--target" | "--rate" | "--duration" | "--warmup" | "--size" | "--cpu" => it
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .as_str(),
            other => return Err(format!("unknown flag {other}")),
        };
        match flag {
            "--target" => {
                target = Some(value.parse().map_err(|_| {
                    format!("--target {value}: expected ADDR:PORT, e.g. 127.0.0.1:7000")
                })?)
            }
            "--rate" => match value.parse::<f64>() {
                Ok(r) if r.is_finite() && r > 0.0 && r <= 1e7 => rate = Some(r),
                _ => {
                    return Err(format!(
                        "--rate {value}: expected messages per second in (0, 1e7]"
                    ))
                }
            },
            "--duration" => duration_s = seconds(flag, value)?,
            "--warmup" => warmup_s = seconds(flag, value)?,
            "--size" => match value.parse::<usize>() {
                Ok(s) if (1..=1 << 20).contains(&s) => size = s,
                _ => return Err(format!("--size {value}: expected bytes, 1 to 1048576")),
            },
            _ => {
                cpu = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--cpu {value}: expected a CPU number"))?,
                )
            }
        }
    }
    let target = target.ok_or("--target ADDR:PORT is required")?;
    let mode = match (closed, rate) {
        (true, None) => Mode::Closed,
        (false, Some(r)) => Mode::Open(r),
        (true, Some(_)) => return Err("--closed and --rate exclude each other".into()),
        (false, None) => return Err("give a mode: --closed or --rate MSGS/S".into()),
    };
    if duration_s <= 0.0 {
        return Err("--duration must be more than 0".into());
    }
    Ok(Parsed::Run(Args {
        target,
        mode,
        duration_s,
        warmup_s,
        size,
        cpu,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Parsed, String> {
        let v: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        parse(&v)
    }

    #[test]
    fn good_command_lines() {
        let Ok(Parsed::Run(a)) = p("--target 127.0.0.1:7000 --closed") else {
            panic!("closed must parse");
        };
        assert_eq!(a.mode, Mode::Closed);
        assert_eq!(
            (a.duration_s, a.warmup_s, a.size, a.cpu),
            (5.0, 1.0, 64, None)
        );
        let Ok(Parsed::Run(a)) =
            p("--rate 2000 --target 127.0.0.1:1 --duration 3 --warmup 0.5 --size 16 --cpu 1")
        else {
            panic!("open must parse");
        };
        assert_eq!(a.mode, Mode::Open(2000.0));
        assert_eq!(
            (a.duration_s, a.warmup_s, a.size, a.cpu),
            (3.0, 0.5, 16, Some(1))
        );
        assert_eq!(p("--help"), Ok(Parsed::Help));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let err = |s: &str| p(s).expect_err(s);
        assert!(err("--closed").contains("--target"));
        assert!(err("--target 127.0.0.1:1").contains("give a mode"));
        assert!(err("--target 127.0.0.1:1 --closed --rate 5").contains("exclude"));
        assert!(err("--target localhost --closed").contains("ADDR:PORT"));
        assert!(err("--target 127.0.0.1:1 --rate 0").contains("--rate 0"));
        assert!(err("--target 127.0.0.1:1 --rate nan").contains("--rate"));
        assert!(err("--target 127.0.0.1:1 --closed --size 0").contains("--size"));
        assert!(err("--target 127.0.0.1:1 --closed --duration -1").contains("seconds"));
        assert!(err("--target 127.0.0.1:1 --closed --duration 0").contains("more than 0"));
        assert!(err("--target 127.0.0.1:1 --closed --cpu x").contains("CPU"));
        assert!(err("--target 127.0.0.1:1 --closed --bogus").contains("unknown flag --bogus"));
        assert!(err("--target").contains("needs a value"));
    }
}
