//! The http scenario as a whole: the closed-loop phase (every server under both clients,
//! interleaved rounds), the open-loop rate derived from it, the open-loop phase
//! (c1m-loadgen only), and compare.md.

use super::run::{run_case, HttpEnv};
use super::{nginx, report, HttpCase, Server, Tools};
use crate::plan::Scenario;
use crate::rounds;
use crate::scenarios::{append_run_md, failed_note, write_md, Suite};
use std::fmt::Write as _;
use std::path::Path;

/// (server name, requests/s) of the closed-loop c1m-loadgen runs that did not fail.
fn closed_loadgen_throughputs(sdir: &Path) -> Vec<(String, f64)> {
    report::load_runs(sdir)
        .into_iter()
        .filter(|r| !r.failed && r.client == super::Client::Loadgen && !r.point.contains("-r"))
        .filter_map(|r| Some((r.server.name().to_owned(), r.rps?)))
        .collect()
}

/// compare.md of an http scenario folder after its heading, notes and failures: a
/// function of the folder alone (the open-loop rate's reason included).
pub fn compare_body(sdir: &Path) -> String {
    let (_, how) = open_rate(&closed_loadgen_throughputs(sdir));
    report::compare_md(sdir, &how)
}

/// The open-loop rate: [`super::OPEN_FRACTION`] of the slowest server's median
/// closed-loop requests/s under c1m-loadgen, else [`super::DEFAULT_OPEN_RATE`]. Returns
/// (rate, how it was chosen).
pub(crate) fn open_rate(throughputs: &[(String, f64)]) -> (u64, String) {
    let pct = super::OPEN_FRACTION * 100.0;
    match rounds::equal_load_rate(super::OPEN_FRACTION, throughputs) {
        Some(r) => (
            r,
            format!("{pct:.0}% of the slowest server's median closed-loop requests/s under c1m-loadgen in this run"),
        ),
        None => (
            super::DEFAULT_OPEN_RATE,
            format!(
                "the default {} (no closed-loop c1m-loadgen run measured a throughput)",
                super::DEFAULT_OPEN_RATE
            ),
        ),
    }
}

impl Suite<'_> {
    /// The http scenario.
    pub(crate) fn http(&mut self) -> anyhow::Result<()> {
        let tools = Tools::find().map_err(anyhow::Error::msg)?;
        let temp_paths = nginx::temp_path_directives(&nginx::version_text(&tools.nginx)?);
        let env = HttpEnv {
            tools,
            body_size: self.body_size,
            temp_paths,
        };
        let servers = super::servers(&crate::variants::backends(&self.variants));
        let conns = self.ctx.scale.http_conns;
        let sdir = self.start(Scenario::Http)?;
        self.http_rounds(&sdir, &env, super::closed_cases(&servers, conns), 1)?;
        let (rate, how) = open_rate(&closed_loadgen_throughputs(&sdir));
        crate::log(format!(
            "http {}: open loop at {rate} requests/s ({how}); c1m-loadgen only (wrk cannot hold a rate)",
            super::point_name(conns, true)
        ));
        self.http_rounds(&sdir, &env, super::open_cases(&servers, conns, rate), 2)?;
        let s = &self.ctx.scale;
        let mut md = format!(
            "# http: HTTP/1.1 keep-alive, {} B body, every server under c1m-loadgen and wrk\n\n",
            env.body_size
        );
        let names: Vec<&str> = servers.iter().map(|s| s.name()).collect();
        let _ = write!(md, "Servers: {} (c1m-server, and c1m-go-net when named, `--protocol http --body-size {}`; nginx with the nginx.conf in its run folders: `return 200` of the same body, keep-alive never closing a benchmark connection, one worker per server CPU, pinned). Server on CPU {}, clients on CPU {}; {} s measured after {} s warm-up (wrk: {} s after a {} s warm-up run; it takes whole seconds).\n\n",
            names.join(", "), env.body_size, self.ctx.split.server, self.ctx.split.loadgen, s.dur.text, s.warm.text,
            super::wrk::whole_secs(s.dur.value), super::wrk::whole_secs(s.warm.value));
        if servers.contains(&Server::Nginx) {
            md.push_str("nginx answers with more header bytes than c1m-server (Date, Server: nginx/<version>, Connection: keep-alive): a little more to send per response.\n\n");
        }
        md.push_str(&failed_note(&sdir));
        md.push_str(&compare_body(&sdir));
        write_md(&sdir, &md)
    }

    /// Every case once per round, each round in a fresh shuffled order; the orders go to
    /// run.md. `phase` (1 closed, 2 open) gives each phase orders of its own.
    fn http_rounds(
        &mut self,
        sdir: &Path,
        env: &HttpEnv,
        cases: Vec<HttpCase>,
        phase: u64,
    ) -> anyhow::Result<()> {
        let n = self.ctx.scale.rounds(Scenario::Http);
        let seed = self.seed ^ (Scenario::Http as u64 + 1).wrapping_mul(0x9E37_79B9) ^ phase;
        let what = if phase == 1 {
            "closed loop"
        } else {
            "open loop"
        };
        let mut md = format!(
            "\n- {what}: rounds: {n}, order seed {seed} (`--seed {}` repeats these orders)\n",
            self.seed
        );
        for (i, order) in rounds::orders(&cases, n, seed).into_iter().enumerate() {
            let r = i as u32 + 1;
            let names: Vec<&str> = order.iter().map(|c| c.name.as_str()).collect();
            let _ = writeln!(md, "- {what} round {r}: {}", names.join(", "));
            for case in order {
                let folder = rounds::run_name(r, n, &case.name);
                run_case(
                    &mut self.ctx,
                    env,
                    sdir,
                    &case,
                    &folder,
                    (n > 1).then_some(r),
                )?;
            }
        }
        append_run_md(sdir, &md)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_loop_rate_is_half_the_slowest_median() {
        let runs: Vec<(String, f64)> = [
            ("uring", 150_000.0),
            ("nginx", 90_000.0),
            ("uring", 140_000.0),
            ("nginx", 100_000.0),
            ("nginx", 95_000.0),
        ]
        .iter()
        .map(|(s, r)| (s.to_string(), *r))
        .collect();
        let (rate, how) = open_rate(&runs);
        assert_eq!(rate, 47_500);
        assert!(
            how.starts_with("50% of the slowest server's median"),
            "{how}"
        );
        let (rate, how) = open_rate(&[]);
        assert_eq!(rate, super::super::DEFAULT_OPEN_RATE);
        assert!(how.contains("default"), "{how}");
    }
}
