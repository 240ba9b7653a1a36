//! The `run` options, checked: names against the known scenarios and backends (a
//! [`UsageError`], exit 2), values against what they must be (exit 1), as c1m.sh had
//! them.

use crate::cli::RunArgs;
use crate::plan::{self, Backend, Scenario, Secs};
use crate::topology::setup::TopologyOpts;
use crate::variants::{self, Variant};
use crate::UsageError;
use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};

/// The options, checked.
#[derive(Debug)]
pub struct Options {
    pub quick: bool,
    pub scenarios: Vec<Scenario>,
    /// The distinct backends of the variants, in canonical order.
    pub backends: Vec<Backend>,
    /// What rounds interleave: one per backend, `--variants FILE`, or what an
    /// experiment generates (`--sweep`, `--ablate`, `--profiles`, `--experiment`).
    pub variants: Vec<Variant>,
    /// The experiment the variants make, for its report table.
    pub study: Option<crate::experiments::Study>,
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
    /// (open loop: poisson unless told otherwise).
    pub batch_waits: Option<String>,
    pub arrivals: String,
    pub topo: TopologyOpts,
    /// http: response body bytes.
    pub body_size: u64,
    /// What the echo scenarios speak (`--protocol`).
    pub wire: crate::wire::Wire,
    /// `--threshold` and `--export`, checked before anything runs.
    pub gate: c1m_loadgen::report::gate::Gate,
    /// `--metrics` and `--perf`.
    pub observe: crate::observe::Observe,
}

/// The equal-load points' arrival process unless `--arrivals` says otherwise: what real
/// clients look like, and what the comparison is meant to predict.
pub const DEFAULT_ARRIVALS: &str = "poisson";

/// How the plan and the headline name an `--arrivals` value.
pub fn arrivals_text(arrivals: &str) -> &'static str {
    match arrivals {
        "uniform" => "evenly spaced sends (--arrivals uniform)",
        _ => "Poisson arrivals (--arrivals poisson, seeded by the run's --seed)",
    }
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
        let exp = crate::experiments::load(a, root).map_err(UsageError)?;
        let a = exp.as_ref().map_or(a, |e| &e.args);
        let scenarios =
            plan::pick_list(&a.scenarios, &Scenario::ALL, Scenario::name).map_err(UsageError)?;
        let (backends, variants, study) = variants_of(a, exp.as_ref(), &scenarios, root)?;
        let Counts {
            hold_conns,
            duration,
            rounds,
            seed,
        } = Counts::from_args(a)?;
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
        let topo = TopologyOpts::from_args(a)?;
        // Keys are probed on this kernel unless hosts are tuned (each host's
        // sysctl-apply.sh refuses a key its kernel lacks, and the run stops).
        let probe = topo.kind != crate::topology::placement::Kind::Hosts;
        for s in &a.sets {
            crate::sysctl::check_set(s, probe).map_err(UsageError)?;
        }
        let echo = scenarios.iter().any(|s| s.is_echo());
        if scenarios.is_empty() || (backends.is_empty() && echo) {
            bail!("no scenario or no backend to run");
        }
        let body_size = body_size(a.body_size.as_deref())?;
        let wire = crate::wire::Wire::parse(a.protocol.as_deref().unwrap_or("echo"), body_size)
            .map_err(UsageError)?;
        if topo.kind == crate::topology::placement::Kind::Hosts && backends.contains(&Backend::Go) {
            return Err(UsageError(
                "--backends go runs on loopback and netns only: --topology hosts ships c1m-server and c1m-loadgen, not the Go reference server".into(),
            )
            .into());
        }
        check_variants(&variants, &scenarios, &topo)?;
        crate::experiments::check_links(
            &variants,
            topo.kind == crate::topology::placement::Kind::Netns,
            a.link.is_some(),
        )
        .map_err(UsageError)?;
        let gate = crate::report::gates::gate_from_args(&a.thresholds, &a.exports)?;
        Ok(Options {
            quick: a.quick,
            scenarios,
            backends,
            variants,
            tune: !a.no_tune && study.as_ref().is_none_or(|s| s.run_wide_tuning),
            study,
            hold_conns,
            duration,
            rate: a.rate.clone(),
            out: a.out.clone().unwrap_or_else(|| root.join("results")),
            profile,
            sets: a.sets.clone(),
            tag: a.tag.clone(),
            dry_run: a.dry_run,
            rounds,
            seed,
            batch_waits: a.batch_waits.clone(),
            arrivals: a
                .arrivals
                .clone()
                .unwrap_or_else(|| DEFAULT_ARRIVALS.into()),
            topo,
            body_size,
            wire,
            gate,
            observe: crate::observe::Observe {
                metrics: a.metrics,
                perf: a.perf,
            },
        })
    }
}

/// What the rounds interleave: the experiment's variants, the generated ones
/// (`--sweep`, `--ablate`, `--profiles`), a variants file's, or one per backend; with the
/// backends they use and the study they form, if any.
fn variants_of(
    a: &RunArgs,
    exp: Option<&crate::experiments::Experiment>,
    scenarios: &[Scenario],
    root: &Path,
) -> anyhow::Result<(
    Vec<Backend>,
    Vec<variants::Variant>,
    Option<crate::experiments::Study>,
)> {
    let (backends, variants) = match &a.variants {
        None => {
            let b = backends(&a.backends, scenarios)?;
            (b.clone(), variants::from_backends(&b))
        }
        Some(path) => {
            let v = read_variants(path)?;
            (variants::backends(&v), v)
        }
    };
    let probe_here = a.topology != "hosts";
    let generated = match exp.and_then(|e| e.variants.clone()) {
        Some(v) => Some(crate::experiments::Generated {
            study: crate::experiments::Study {
                title: "the variants of the experiment file".into(),
                run_wide_tuning: true,
                ..Default::default()
            },
            variants: v,
        }),
        None => crate::experiments::generate(a, &backends, root, probe_here).map_err(UsageError)?,
    };
    Ok(match generated {
        Some(g) => (variants::backends(&g.variants), g.variants, Some(g.study)),
        None => (backends, variants, None),
    })
}

/// The variants of a `--variants` file; a bad file is a usage error that names it.
fn read_variants(path: &Path) -> anyhow::Result<Vec<Variant>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--variants {}: cannot read it", path.display()))?;
    variants::from_toml(&text)
        .map_err(|e| UsageError(format!("--variants {}: {e}", path.display())).into())
}

/// What variants with flags or sysctls of their own cannot do yet: the http scenario
/// (its servers come from the backends) and hosts (whose tuning is per host, at setup).
fn check_variants(
    v: &[Variant],
    scenarios: &[Scenario],
    topo: &TopologyOpts,
) -> anyhow::Result<()> {
    let Some(own) = v.iter().find(|v| !v.is_plain()) else {
        return Ok(());
    };
    if scenarios.contains(&Scenario::Http) {
        return Err(UsageError(format!(
            "variant {} has server flags or sysctls of its own: the http scenario takes plain backends; run http with --backends",
            own.name
        ))
        .into());
    }
    if topo.kind == crate::topology::placement::Kind::Hosts
        && v.iter().any(|v| !v.sysctls.is_empty())
    {
        return Err(UsageError(
            "variants with sysctls run on loopback and netns; on hosts give the keys with --set"
                .into(),
        )
        .into());
    }
    let probe = topo.kind != crate::topology::placement::Kind::Hosts;
    for var in v {
        for (k, val) in &var.sysctls {
            crate::sysctl::check_set(&format!("{k}={val}"), probe)
                .map_err(|e| UsageError(format!("variant {}: {e}", var.name)))?;
        }
    }
    Ok(())
}

/// `--body-size` of the http servers (default [`crate::http::DEFAULT_BODY_SIZE`]).
fn body_size(given: Option<&str>) -> anyhow::Result<u64> {
    let Some(b) = given else {
        return Ok(crate::http::DEFAULT_BODY_SIZE);
    };
    b.parse::<u64>()
        .ok()
        .filter(|&n| n <= crate::http::MAX_BODY_SIZE && b.bytes().all(|c| c.is_ascii_digit()))
        .with_context(|| {
            format!(
                "--body-size wants 0 to {} bytes",
                crate::http::MAX_BODY_SIZE
            )
        })
}

/// The `--backends` list: c1m-server backends and go, in canonical order, plus `nginx`,
/// which only the http scenario serves (it always runs it): `--backends nginx` is valid
/// when every scenario is http, and is then no c1m backend at all.
fn backends(list: &str, scenarios: &[Scenario]) -> Result<Vec<Backend>, UsageError> {
    let named: Vec<&str> = list.split(',').collect();
    let nginx = named.contains(&"nginx");
    let rest: Vec<&str> = named.into_iter().filter(|n| *n != "nginx").collect();
    if rest.iter().all(|n| n.is_empty()) {
        if !nginx {
            return plan::pick_list(list, &Backend::ALL, Backend::name).map_err(UsageError);
        }
        if let Some(s) = scenarios.iter().find(|s| s.is_echo()) {
            return Err(UsageError(format!(
                "--backends nginx serves only the http scenario; {} needs a c1m backend (uring, epoll, tokio-uring, tokio or go)",
                s.name()
            )));
        }
        return Ok(Vec::new());
    }
    plan::pick_list(&rest.join(","), &Backend::ALL, Backend::name)
        .map_err(|e| UsageError(format!("{e}; nginx too, for the http scenario")))
}

/// The plain numbers of the command line, parsed once.
struct Counts {
    hold_conns: Option<u64>,
    duration: Option<Secs>,
    rounds: Option<u32>,
    seed: u64,
}

impl Counts {
    fn from_args(a: &RunArgs) -> anyhow::Result<Counts> {
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
        Ok(Counts {
            hold_conns,
            duration,
            rounds,
            seed,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clap::Parser as _;

    /// `c1m-bench run EXTRA...` parsed.
    pub(crate) fn args(extra: &[&str]) -> RunArgs {
        let mut v = vec!["c1m-bench", "run"];
        v.extend_from_slice(extra);
        match crate::cli::Cli::parse_from(v).cmd {
            crate::cli::Cmd::Run(a) => *a,
            _ => unreachable!(),
        }
    }

    /// The repository.
    pub(crate) fn root() -> PathBuf {
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
        assert_eq!(o.body_size, crate::http::DEFAULT_BODY_SIZE);
        assert_eq!(o.arrivals, "poisson");
        let uniform = Options::from_args(&args(&["--arrivals", "uniform"]), &root()).unwrap();
        assert_eq!(uniform.arrivals, "uniform");
        for (bad, msg) in [
            (vec!["--conns", "-5"], "--conns wants a positive integer"),
            (vec!["--conns", "0"], "--conns wants a positive integer"),
            (vec!["--duration", "0"], "--duration wants"),
            (vec!["--rate", "fast"], "--rate wants"),
            (vec!["--set", "=1"], "--set wants KEY=VALUE"),
            (vec!["--profile", "/nonexistent"], "not found"),
            (vec!["--body-size", "4096"], "--body-size wants 0 to 2048"),
            (vec!["--body-size", "-1"], "--body-size wants"),
        ] {
            let e = Options::from_args(&args(&bad), &root()).unwrap_err();
            assert!(e.downcast_ref::<UsageError>().is_none());
            assert!(format!("{e}").contains(msg), "{bad:?}: {e}");
        }
    }

    #[test]
    fn an_unknown_set_key_is_a_usage_error_naming_it() {
        let e =
            Options::from_args(&args(&["--set", "net.ipv4.tcp_no_delay=1"]), &root()).unwrap_err();
        let u = e.downcast_ref::<UsageError>().expect("a usage error");
        assert!(u.0.contains("net.ipv4.tcp_no_delay"), "{}", u.0);
        let o = Options::from_args(&args(&["--set", "-net.ipv4.tcp_no_delay=1"]), &root())
            .expect("an optional key may be absent");
        assert_eq!(o.sets.len(), 1);
        Options::from_args(&args(&["--set", "net.core.somaxconn=4096"]), &root())
            .expect("a key this kernel has");
    }

    #[test]
    fn nginx_is_a_server_of_the_http_scenario_only() {
        let o = Options::from_args(
            &args(&["--scenarios", "http", "--backends", "nginx"]),
            &root(),
        )
        .unwrap();
        assert_eq!(o.scenarios, vec![Scenario::Http]);
        assert!(o.backends.is_empty());
        let o = Options::from_args(
            &args(&[
                "--scenarios",
                "http,pingpong",
                "--backends",
                "nginx,uring",
                "--body-size",
                "16",
            ]),
            &root(),
        )
        .unwrap();
        assert_eq!(
            (o.backends.clone(), o.body_size),
            (vec![Backend::Uring], 16)
        );
        for (bad, msg) in [
            (
                vec!["--scenarios", "pingpong,http", "--backends", "nginx"],
                "serves only the http scenario; pingpong needs",
            ),
            (vec!["--backends", "nginx"], "serves only the http scenario"),
            (
                vec!["--scenarios", "http", "--backends", "apache"],
                "nginx too",
            ),
        ] {
            let e = Options::from_args(&args(&bad), &root()).unwrap_err();
            let u = e
                .downcast_ref::<UsageError>()
                .unwrap_or_else(|| panic!("{bad:?}: {e}"));
            assert!(u.0.contains(msg), "{bad:?}: {}", u.0);
        }
        // http runs on hosts too (each host's preflight checks its nginx and wrk).
        let hosts = [
            "--scenarios",
            "http",
            "--topology",
            "hosts",
            "--server-host",
            "a",
            "--client-hosts",
            "b",
        ];
        let o = Options::from_args(&args(&hosts), &root()).expect("http on hosts");
        assert_eq!(o.scenarios, [Scenario::Http]);
    }
}
