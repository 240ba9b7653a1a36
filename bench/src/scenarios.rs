//! The echo scenarios, one function each (http: `crate::http`): their cases, then the scenario folder's
//! compare.md (notes, the hold/churn tables, `c1m-loadgen compare`'s table and plot).

use crate::case::{Case, Client, Kind, Server};
use crate::plan::{self, Scenario, MSG_SIZE, PORT_LO};
use crate::report;
use crate::report::scenario_md::base_name;
pub use crate::report::scenario_md::{failed_note, ok_runs};
use crate::rounds;
use crate::runcase::run_case;
use crate::runner::Ctx;
use crate::safe_fs;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Churn's own source addresses: 127.0.1.2-127.0.1.5 (see [`Suite::churn`]).
const CHURN_SOURCES: [[u8; 4]; 4] = [
    [127, 0, 1, 2],
    [127, 0, 1, 3],
    [127, 0, 1, 4],
    [127, 0, 1, 5],
];

/// A whole run: its cases' context and what its run.md files say.
pub struct Suite<'a> {
    pub ctx: Ctx<'a>,
    /// What the rounds interleave.
    pub variants: Vec<crate::variants::Variant>,
    pub out_parent: PathBuf,
    pub stamp: String,
    pub host: String,
    /// `--rate` as given.
    pub rate: Option<String>,
    /// The command line as typed.
    pub invocation: String,
    pub revision: crate::revision::Revision,
    pub preflight: String,
    pub plan: String,
    pub sysctl_diff: String,
    /// Seed of the shuffled round orders.
    pub seed: u64,
    /// Extra loadgen options of closed-loop runs (`--batch-waits`) and of open-loop runs
    /// (`--arrivals`, its seed).
    pub closed_extra: Vec<String>,
    pub open_extra: Vec<String>,
    /// `--body-size` of the http scenario.
    pub body_size: u64,
    /// An experiment's study: its table is appended to each scenario's compare.md.
    pub study: Option<crate::experiments::Study>,
}

impl Suite<'_> {
    /// `<stamp>-<host>-<scenario>`, and `-frame`/`-http` after an echo scenario run with
    /// that `--protocol`.
    pub fn scenario_dir(&self, s: Scenario) -> PathBuf {
        self.out_parent
            .join(scenario_folder(&self.stamp, &self.host, s, self.ctx.wire))
    }

    pub fn run(&mut self, s: Scenario) -> anyhow::Result<()> {
        match s {
            Scenario::Pingpong => self.pingpong(),
            Scenario::Latency => self.latency(),
            Scenario::Hold => self.hold(),
            Scenario::Churn => self.churn(),
            Scenario::Http => self.http(),
        }?;
        match &self.study {
            Some(st) if s.is_echo() => {
                let sdir = self.scenario_dir(s);
                safe_fs::append(
                    &sdir.join("compare.md"),
                    crate::experiments::study_table(st, &sdir),
                )
            }
            _ => Ok(()),
        }
    }

    /// Creates the scenario folder with an empty runs.txt and its run.md.
    pub(crate) fn start(&self, s: Scenario) -> anyhow::Result<PathBuf> {
        let dir = self.scenario_dir(s);
        safe_fs::create_dir_new(&dir)?;
        safe_fs::write_new(&dir.join("runs.txt"), "")?;
        let mut md = format!("# {}: how this was made\n\n", s.name());
        // Writing to a String cannot fail; results are ignored on purpose.
        let _ = writeln!(md, "- command: `{}`", self.invocation);
        let _ = writeln!(md, "{}", self.revision.record(&dir)?);
        if s.is_echo() {
            let _ = writeln!(
                md,
                "- protocol: {} (server and loadgen: `{}`)",
                self.ctx.wire.name(),
                match self.ctx.wire.args() {
                    a if a.is_empty() => "--protocol echo".to_string(),
                    a => a.join(" "),
                }
            );
        }
        let _ = writeln!(
            md,
            "- started: {} on {}",
            crate::timefmt::utc_iso(),
            self.host
        );
        if self.ctx.observe.metrics {
            md.push_str("- metrics (`--metrics`): every c1m-server process and loadgen shard served Prometheus text at a free port of its site's address; each case's scrape addresses are listed below as it runs and kept in its metrics.txt (nginx, wrk and the Go reference: none)\n");
        }
        md.push_str("- each run folder holds cmd.txt (the exact server and loadgen commands), summary.json (loadgen: environment, sysctls, rlimits), server.json and server.log\n\n");
        let _ = write!(
            md,
            "```\n{}{}\n{}```\n",
            self.preflight, self.plan, self.sysctl_diff
        );
        md.push_str(&self.ctx.topo.run_md());
        safe_fs::write_new(&dir.join("run.md"), md)?;
        self.ctx.topo.write_json(&dir)?;
        crate::log(format!("=== {} -> {}", s.name(), dir.display()));
        Ok(dir)
    }

    /// Runs every case once per round of scenario `s`, each round in a fresh shuffled
    /// order; with several rounds each run has its folder `round-R/<name>` and tells its
    /// client its round. The orders are appended to the scenario's run.md. A scenario
    /// of several phases names each (`closed loop`), and each gets orders of its own.
    pub(crate) fn run_rounds(
        &mut self,
        sdir: &Path,
        s: Scenario,
        cases: Vec<Case>,
        phase: Option<(u64, &str)>,
    ) -> anyhow::Result<()> {
        let n = self.ctx.scale.rounds(s);
        let mut seed = self.seed ^ (s as u64 + 1).wrapping_mul(0x9E37_79B9);
        let what = match phase {
            Some((p, what)) => {
                seed ^= p;
                format!("{what}: ")
            }
            None => String::new(),
        };
        let orders = rounds::orders(&cases, n, seed);
        let mut md = format!(
            "\n- {what}rounds: {n}, order seed {seed} (`--seed {}` repeats these orders)\n",
            self.seed
        );
        let what = what.trim_end_matches(": ");
        for (i, order) in orders.into_iter().enumerate() {
            let r = i as u32 + 1;
            let names: Vec<&str> = order.iter().map(|c| c.name.as_str()).collect();
            let head = [what, "round"].join(" ");
            let _ = writeln!(md, "- {} {r}: {}", head.trim_start(), names.join(", "));
            for mut case in order {
                case.name = rounds::run_name(r, n, &case.name);
                case.round = (n > 1).then_some(r);
                run_case(&mut self.ctx, sdir, &case)?;
            }
        }
        append_run_md(sdir, &md)
    }

    /// An echo scenario's case of variant `v` (c1m-loadgen, closed loop unless `rate`).
    #[allow(clippy::too_many_arguments)]
    fn echo_case(
        &self,
        s: Scenario,
        v: &crate::variants::Variant,
        name: String,
        point: String,
        conns: u64,
        rate: Option<u64>,
        kind: Kind,
        loadgen_args: Vec<String>,
    ) -> Case {
        Case {
            name,
            scenario: s,
            point,
            round: None,
            server: Server::C1m(v.clone()),
            client: Client::Loadgen,
            wire: self.ctx.wire,
            conns,
            rate,
            sources: None,
            max_conns: None,
            kind,
            loadgen_args,
        }
    }

    /// The loadgen's duration and warm-up.
    pub(crate) fn common_args(&self) -> Vec<String> {
        let s = &self.ctx.scale;
        vec![
            "--duration".into(),
            s.dur.text.clone(),
            "--warmup".into(),
            s.warm.text.clone(),
        ]
    }

    fn pingpong(&mut self) -> anyhow::Result<()> {
        let sdir = self.start(Scenario::Pingpong)?;
        let mut cases = Vec::new();
        for c in self.ctx.scale.pp_conns.clone() {
            for v in &self.variants {
                cases.push(self.echo_case(
                    Scenario::Pingpong,
                    v,
                    format!("{}-c{c}", v.name),
                    format!("c{c}"),
                    c,
                    None,
                    Kind::Plain,
                    [self.common_args(), self.closed_extra.clone()].concat(),
                ));
            }
        }
        self.run_rounds(&sdir, Scenario::Pingpong, cases, None)?;
        let s = &self.ctx.scale;
        let mut md = format!(
            "# pingpong: closed loop, {MSG_SIZE}-byte messages, one in flight per connection\n\n"
        );
        let _ = write!(md, "Server on CPU {}, loadgen on CPU {}; {} s measured after {} s warm-up. Compare backends by server CPU per message (steadier than msgs/s on a shared machine).\n\n",
            self.ctx.split.server, self.ctx.split.loadgen, s.dur.text, s.warm.text);
        md.push_str(&failed_note(&sdir));
        for c in s.pp_conns.clone() {
            let _ = write!(md, "## {c} connections\n\n");
            md.push_str(&self.procs_note(c));
            let dirs = ok_runs(&sdir, Some(&format!("-c{c}")));
            md.push_str(&self.compare(&sdir, &format!("plot-c{c}.svg"), &dirs));
        }
        write_md(&sdir, &md)
    }

    /// The open-loop rate of a latency point: `--rate`, else `fraction` of the slowest
    /// backend's median closed-loop msgs/s at `conns` in this run's pingpong, else a
    /// default. Returns (rate, how it was chosen).
    fn latency_rate(&self, conns: u64, fraction: f64) -> (u64, String) {
        if let Some(r) = self.rate.as_deref().and_then(|r| r.parse::<f64>().ok()) {
            return ((r as u64).max(1), "given with --rate".into());
        }
        let pp = self.scenario_dir(Scenario::Pingpong);
        let dirs = ok_runs(&pp, Some(&format!("-c{conns}")));
        match rounds::equal_load_rate(fraction, &rounds::throughputs(&dirs)) {
            Some(r) => (
                r,
                format!(
                    "{:.0}% of the slowest backend's median closed-loop msgs/s at {conns} connections in {}",
                    fraction * 100.0,
                    base_name(&pp)
                ),
            ),
            None => (
                (40_000.0 * fraction) as u64,
                format!("default (pingpong did not run at {conns} connections)"),
            ),
        }
    }

    /// Equal load: every backend at the same open-loop rates, so cost (server CPU per
    /// message) and latency compare like for like.
    fn latency(&mut self) -> anyhow::Result<()> {
        let points: Vec<(u64, f64, u64, String)> = self
            .ctx
            .scale
            .lat_points()
            .into_iter()
            .map(|(c, f)| {
                let (r, how) = self.latency_rate(c, f);
                (c, f, r, how)
            })
            .collect();
        let sdir = self.start(Scenario::Latency)?;
        let mut cases = Vec::new();
        for (c, f, r, how) in &points {
            crate::log(format!(
                "latency {}: open loop at {r} msgs/s ({how})",
                plan::lat_point_name(*c, *f)
            ));
            for v in &self.variants {
                let point = plan::lat_point_name(*c, *f);
                cases.push(self.echo_case(
                    Scenario::Latency,
                    v,
                    format!("{}-{point}", v.name),
                    point,
                    *c,
                    Some(*r),
                    Kind::Plain,
                    [self.common_args(), self.open_extra.clone()].concat(),
                ));
            }
        }
        self.run_rounds(&sdir, Scenario::Latency, cases, None)?;
        let s = &self.ctx.scale;
        let mut md =
            "# latency: equal load, open loop, every backend at the same rates\n\n".to_string();
        let _ = write!(md, "Latency from the intended send time (coordinated omission corrected); {} s measured after {} s warm-up. At equal offered load, compare server CPU per message first.\n\n", s.dur.text, s.warm.text);
        md.push_str(&failed_note(&sdir));
        for (c, f, r, how) in &points {
            let point = plan::lat_point_name(*c, *f);
            let _ = write!(
                md,
                "## {c} connections at {r} msgs/s ({point})\n\nRate: {how}.\n\n"
            );
            md.push_str(&self.procs_note(*c));
            let dirs = ok_runs(&sdir, Some(&format!("-{point}")));
            md.push_str(&self.compare(&sdir, &format!("plot-{point}.svg"), &dirs));
        }
        write_md(&sdir, &md)
    }

    fn hold(&mut self) -> anyhow::Result<()> {
        let sdir = self.start(Scenario::Hold)?;
        let (hold_n, hb) = (self.ctx.scale.hold_n, self.ctx.scale.hb);
        let dur = self.ctx.scale.hold_dur.text.clone();
        let warm = self.ctx.scale.hold_warm.text.clone();
        let mut cases = Vec::new();
        for v in self.variants.clone() {
            let b = v.backend;
            let n = self.ctx.limits.conns_for(b, hold_n);
            // uring holds connections in fixed-file tables and adds rings itself past
            // one table's RLIMIT_NOFILE slots, when told how many to expect.
            let maxc = b.is_uring().then(|| plan::uring_hold_max_conns(n));
            let args = vec![
                "--duration".into(),
                dur.clone(),
                "--warmup".into(),
                warm.clone(),
                "--heartbeat".into(),
                hb.to_string(),
            ];
            let mut case = self.echo_case(
                Scenario::Hold,
                &v,
                v.name.clone(),
                String::new(),
                n,
                None,
                Kind::Hold,
                args,
            );
            case.max_conns = maxc;
            cases.push(case);
        }
        self.run_rounds(&sdir, Scenario::Hold, cases, None)?;
        let mut md = format!("# hold: {hold_n} connections, one {MSG_SIZE}-byte heartbeat per connection every {hb} s, held {dur} s, measured after {warm} s of heartbeats\n\n");
        md.push_str(&failed_note(&sdir));
        md.push_str(&self.procs_note(hold_n));
        let dirs = ok_runs(&sdir, None);
        if !dirs.is_empty() {
            md.push_str("## Holding\n\n");
            md.push_str(&report::section_hold(&dirs));
            md.push_str("\n## Heartbeat latency\n\n");
        }
        md.push_str(&self.compare(&sdir, "plot.svg", &dirs));
        write_md(&sdir, &md)
    }

    fn churn(&mut self) -> anyhow::Result<()> {
        let sdir = self.start(Scenario::Churn)?;
        let n = self.ctx.scale.churn_conns;
        let mut cases = Vec::new();
        for v in self.variants.clone() {
            // Closing from the client leaves its TIME_WAITs behind (60 s): spread them
            // over four source addresses of their own, so ports never run out and a
            // hold run right after (127.0.0.2 and up) does not find its ports taken.
            let mut args = self.common_args();
            args.push("--churn".into());
            let mut case = self.echo_case(
                Scenario::Churn,
                &v,
                v.name.clone(),
                String::new(),
                n,
                None,
                Kind::Plain,
                args,
            );
            case.sources = Some(CHURN_SOURCES.map(Ipv4Addr::from).to_vec());
            cases.push(case);
        }
        self.run_rounds(&sdir, Scenario::Churn, cases, None)?;
        let mut md = format!(
            "# churn: {n} concurrent loops of connect, one {MSG_SIZE}-byte exchange, close\n\n"
        );
        md.push_str(&failed_note(&sdir));
        let dirs = ok_runs(&sdir, None);
        if !dirs.is_empty() {
            md.push_str("## Connections\n\n");
            md.push_str(&report::section_churn(&dirs));
            md.push_str("\n## Exchange latency\n\n");
        }
        md.push_str(&self.compare(&sdir, "plot.svg", &dirs));
        write_md(&sdir, &md)
    }

    /// Which backends ran as several processes, or were capped, at `n` connections.
    fn procs_note(&self, n: u64) -> String {
        let listen = self.ctx.topo.placement.listen(PORT_LO);
        report::scenario_md::procs_note(&self.ctx.limits, &self.variants, &listen, n)
    }

    /// `c1m-loadgen compare`'s table of `dirs` and its plot `svg` in the scenario folder
    /// ([`report::scenario_md::compare`]); a failure is also a failed run of the suite.
    fn compare(&mut self, sdir: &Path, svg: &str, dirs: &[PathBuf]) -> String {
        let (md, failure) = report::scenario_md::compare(sdir, svg, dirs);
        self.ctx.failures.extend(failure);
        md + &report::profile::breakdown_table(dirs)
    }
}

/// The one definition of a scenario folder's name: `<stamp>-<host>-<scenario>`, and
/// `-frame`/`-http` after an echo scenario run with that `--protocol`.
pub fn scenario_folder(stamp: &str, host: &str, s: Scenario, wire: crate::wire::Wire) -> String {
    let suffix = if s.is_echo() {
        wire.folder_suffix()
    } else {
        String::new()
    };
    format!("{stamp}-{host}-{}{suffix}", s.name())
}

/// The headline file's name.
pub fn headline_file(stamp: &str, host: &str) -> String {
    format!("{stamp}-{host}-headline.md")
}

pub(crate) fn append_run_md(sdir: &Path, text: &str) -> anyhow::Result<()> {
    safe_fs::append(&sdir.join("run.md"), text)
}

pub(crate) fn write_md(sdir: &Path, md: &str) -> anyhow::Result<()> {
    safe_fs::write(&sdir.join("compare.md"), md)
}
