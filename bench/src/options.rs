//! The `run` options, checked: names against the known scenarios and backends (a
//! [`UsageError`], exit 2), values against what they must be (exit 1), as c1m.sh had
//! them.

use crate::cli::RunArgs;
use crate::plan::{self, Backend, Scenario, Secs};
use crate::topology::setup::TopologyOpts;
use crate::UsageError;
use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};

/// The options, checked.
#[derive(Debug)]
pub struct Options {
    pub quick: bool,
    pub scenarios: Vec<Scenario>,
    pub backends: Vec<Backend>,
    pub hold_conns: Option<u64>,
    pub duration: Option<Secs>,
    pub rate: Option<String>,
    pub out: PathBuf,
    pub tune: bool,
    pub profile: PathBuf,
    pub sets: Vec<String>,
    pub tag: Option<String>,
    pub dry_run: bool,
    pub rounds: Option<u32>,
    /// Seed of the round orders.
    pub seed: u64,
    /// Loadgen options passed through: `--batch-waits` (closed loop), `--arrivals`
    /// (open loop).
    pub batch_waits: Option<String>,
    pub arrivals: Option<String>,
    pub topo: TopologyOpts,
}

fn is_number(s: &str) -> bool {
    let (i, f) = s.split_once('.').map_or((s, None), |(i, f)| (i, Some(f)));
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    digits(i) && f.is_none_or(digits)
}

impl Options {
    /// Unknown scenario or backend names are a [`UsageError`] (exit 2); bad values an
    /// error (exit 1), as c1m.sh had them.
    pub fn from_args(a: &RunArgs, root: &Path) -> anyhow::Result<Options> {
        let scenarios =
            plan::pick_list(&a.scenarios, &Scenario::ALL, Scenario::name).map_err(UsageError)?;
        let backends =
            plan::pick_list(&a.backends, &Backend::ALL, Backend::name).map_err(UsageError)?;
        let hold_conns = match &a.conns {
            Some(c) => Some(
                c.parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0 && c.bytes().all(|b| b.is_ascii_digit()))
                    .context("--conns wants a positive integer")?,
            ),
            None => None,
        };
        let duration = match &a.duration {
            Some(d) => {
                Some(Secs::parse(d).context("--duration wants a positive number of seconds")?)
            }
            None => None,
        };
        if a.rate.as_deref().is_some_and(|r| !is_number(r)) {
            bail!("--rate wants messages per second");
        }
        let profile = a
            .profile
            .clone()
            .unwrap_or_else(|| root.join("sysctl/c1m.conf"));
        if !profile.is_file() {
            bail!("--profile {} not found", profile.display());
        }
        for s in &a.sets {
            if s.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                bail!("--set wants KEY=VALUE, got '{s}'");
            }
        }
        let rounds = match &a.rounds {
            Some(r) => Some(
                r.parse::<u32>()
                    .ok()
                    .filter(|&n| (1..=100).contains(&n))
                    .context("--rounds wants a number of rounds from 1 to 100")?,
            ),
            None => None,
        };
        let seed = match &a.seed {
            Some(s) => s
                .parse::<u64>()
                .context("--seed wants a non-negative integer")?,
            None => crate::rounds::clock_seed(),
        };
        if scenarios.is_empty() || backends.is_empty() {
            bail!("no scenario or no backend to run");
        }
        let topo = TopologyOpts::from_args(a)?;
        if topo.kind == crate::topology::placement::Kind::Hosts && backends.contains(&Backend::Go) {
            return Err(UsageError(
                "--backends go runs on loopback and netns only: --topology hosts ships c1m-server and c1m-loadgen, not the Go reference server".into(),
            )
            .into());
        }
        Ok(Options {
            quick: a.quick,
            scenarios,
            backends,
            hold_conns,
            duration,
            rate: a.rate.clone(),
            out: a.out.clone().unwrap_or_else(|| root.join("results")),
            tune: !a.no_tune,
            profile,
            sets: a.sets.clone(),
            tag: a.tag.clone(),
            dry_run: a.dry_run,
            rounds,
            seed,
            batch_waits: a.batch_waits.clone(),
            arrivals: a.arrivals.clone(),
            topo,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(extra: &[&str]) -> RunArgs {
        let mut v = vec!["c1m-bench", "run"];
        v.extend_from_slice(extra);
        match crate::cli::Cli::parse_from(v).cmd {
            crate::cli::Cmd::Run(a) => *a,
            _ => unreachable!(),
        }
    }

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn options_are_checked_like_c1m_sh() {
        let o = Options::from_args(
            &args(&[
                "--scenarios",
                "hold",
                "--backends",
                "epoll,uring",
                "--quick",
            ]),
            &root(),
        )
        .unwrap();
        assert_eq!(o.scenarios, vec![Scenario::Hold]);
        assert_eq!(o.backends, vec![Backend::Uring, Backend::Epoll]);
        assert!(o.quick && o.tune && !o.dry_run);
        let o = Options::from_args(
            &args(&["--no-build", "--no-build", "--out", "a", "--out", "b"]),
            &root(),
        )
        .unwrap();
        assert_eq!(o.out, PathBuf::from("b"));
        let e = Options::from_args(&args(&["--scenarios", "nonsense"]), &root()).unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some());
        for (bad, msg) in [
            (vec!["--conns", "-5"], "--conns wants a positive integer"),
            (vec!["--conns", "0"], "--conns wants a positive integer"),
            (vec!["--duration", "0"], "--duration wants"),
            (vec!["--rate", "fast"], "--rate wants"),
            (vec!["--set", "=1"], "--set wants KEY=VALUE"),
            (vec!["--profile", "/nonexistent"], "not found"),
        ] {
            let e = Options::from_args(&args(&bad), &root()).unwrap_err();
            assert!(e.downcast_ref::<UsageError>().is_none());
            assert!(format!("{e}").contains(msg), "{bad:?}: {e}");
        }
    }
}
