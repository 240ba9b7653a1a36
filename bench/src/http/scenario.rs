//! The http scenario as a whole: the closed-loop phase (every server under both clients,
//! interleaved rounds of the one rounds loop, [`Suite::run_rounds`]), the open-loop rate
//! derived from it, the open-loop phase (c1m-loadgen only), and compare.md.

use super::{report, HttpEnv, Server};
use crate::plan::Scenario;
use crate::rounds;
use crate::scenarios::{failed_note, write_md, Suite};
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
        + &crate::report::profile::breakdown_table(&crate::scenarios::ok_runs(sdir, None))
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
        self.ctx.http = Some(match self.ctx.topo.remote_hosts() {
            Some(h) => HttpEnv::of_hosts(&h.specs_and_facts()),
            None => HttpEnv::here()?,
        });
        let servers = super::servers(&crate::variants::backends(&self.variants));
        let (conns, body) = (self.ctx.scale.http_conns, self.body_size);
        let args = self.common_args();
        let sdir = self.start(Scenario::Http)?;
        let closed = super::closed_cases(&servers, conns, body, &args);
        self.run_rounds(&sdir, Scenario::Http, closed, Some((1, "closed loop")))?;
        let (rate, how) = open_rate(&closed_loadgen_throughputs(&sdir));
        crate::log(format!(
            "http {}: open loop at {rate} requests/s ({how}); c1m-loadgen only (wrk cannot hold a rate)",
            super::point_name(conns, true)
        ));
        let open = super::open_cases(&servers, conns, rate, body, &args);
        self.run_rounds(&sdir, Scenario::Http, open, Some((2, "open loop")))?;
        let s = &self.ctx.scale;
        let mut md = format!(
            "# http: HTTP/1.1 keep-alive, {body} B body, every server under c1m-loadgen and wrk\n\n"
        );
        let names: Vec<&str> = servers.iter().map(|s| s.name()).collect();
        let _ = write!(md, "Servers: {} (c1m-server, and c1m-go-net when named, `--protocol http --body-size {body}`; nginx with the nginx.conf in its run folders: `return 200` of the same body, keep-alive never closing a benchmark connection, one worker per server CPU, pinned). Server on CPU {}, clients on CPU {}; {} s measured after {} s warm-up (wrk: {} s after a {} s warm-up run; it takes whole seconds).\n\n",
            names.join(", "), self.ctx.split.server, self.ctx.split.loadgen, s.dur.text, s.warm.text,
            super::wrk::whole_secs(s.dur.value), super::wrk::whole_secs(s.warm.value));
        if servers.contains(&Server::Nginx) {
            md.push_str("nginx answers with more header bytes than c1m-server (Date, Server: nginx/<version>, Connection: keep-alive): a little more to send per response.\n\n");
        }
        md.push_str(&failed_note(&sdir));
        md.push_str(&compare_body(&sdir));
        write_md(&sdir, &md)
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
