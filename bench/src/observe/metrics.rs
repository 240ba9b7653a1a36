//! `--metrics`: each c1m-server process and each loadgen shard of a case gets
//! `--metrics-listen <its site's address>:0`; the address each prints
//! (`metrics: http://ADDR/metrics` on stderr) is read from its log, logged while the
//! case runs, and kept in the case folder's metrics.txt and in the scenario's run.md.
//! On netns the address is the namespace's own: scrape it from there
//! (`ip netns exec NS curl URL`); nothing is added to the root namespace.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The case folder's record of its scrape addresses.
pub const FILE: &str = "metrics.txt";

/// `--metrics-listen ADDR:0`: a free port at `addr`, the site's own address.
pub fn listen_args(addr: Ipv4Addr) -> [String; 2] {
    ["--metrics-listen".into(), format!("{addr}:0")]
}

/// The scrape URL a c1m program printed on stderr (`metrics: http://ADDR/metrics`).
pub fn scrape_url(log: &str) -> Option<&str> {
    log.lines()
        .filter_map(|l| l.strip_prefix("metrics: "))
        .find(|u| u.starts_with("http://") && u.ends_with("/metrics"))
}

/// One line of metrics.txt: who serves it and where, or why nothing does.
pub fn line(who: &str, url: Option<&str>, netns: Option<&str>) -> String {
    match (url, netns) {
        (Some(u), None) => format!("{who}: {u}"),
        (Some(u), Some(ns)) => {
            format!("{who}: {u} (in namespace {ns}: ip netns exec {ns} curl {u})")
        }
        (None, _) => format!("{who}: no address printed (see its log)"),
    }
}

/// A process whose log is watched for its metrics line.
struct Pending {
    who: String,
    log: PathBuf,
    netns: Option<String>,
}

/// The logs of a case's processes, watched for their metrics lines.
#[derive(Default)]
pub struct Watch {
    pending: Vec<Pending>,
    lines: Vec<String>,
}

impl Watch {
    /// Watch `log` of `who` (running in namespace `netns`, if any).
    pub fn add(&mut self, who: String, log: PathBuf, netns: Option<String>) {
        self.pending.push(Pending { who, log, netns });
    }

    /// A process with no endpoint, and why (nginx, wrk, the Go reference).
    pub fn none(&mut self, who: &str, why: &str) {
        self.lines.push(format!("{who}: none ({why})"));
    }

    /// Reads the logs still pending; logs each address found, for `case`.
    pub fn poll(&mut self, case: &str) {
        let mut still = Vec::new();
        for p in std::mem::take(&mut self.pending) {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            match scrape_url(&text) {
                Some(u) => {
                    let l = line(&p.who, Some(u), p.netns.as_deref());
                    crate::log(format!("{case}: metrics of {l}"));
                    self.lines.push(l);
                }
                None => still.push(p),
            }
        }
        self.pending = still;
    }

    /// Appends what was found (and what never printed an address) to `dir`'s
    /// metrics.txt.
    pub fn finish(mut self, case: &str, dir: &Path) -> anyhow::Result<()> {
        self.poll(case);
        let mut text = String::new();
        for l in &self.lines {
            let _ = writeln!(text, "{l}");
        }
        for p in &self.pending {
            let _ = writeln!(text, "{}", line(&p.who, None, None));
        }
        if text.is_empty() {
            return Ok(());
        }
        crate::safe_fs::append(&dir.join(FILE), &text)
    }
}

/// The scenario's run.md line of a case, from its metrics.txt (None without one).
pub fn run_md_line(case: &str, dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(FILE)).ok()?;
    let parts: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    (!parts.is_empty()).then(|| format!("- metrics of {case}: {}\n", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_address_is_found() {
        let log = "c1m-server: uring: holds up to 40000 connections\nmetrics: http://127.0.0.1:7201/metrics\n";
        assert_eq!(scrape_url(log), Some("http://127.0.0.1:7201/metrics"));
        assert_eq!(scrape_url("metrics: none\nlistening on 1.2.3.4:5\n"), None);
        assert_eq!(
            listen_args(Ipv4Addr::new(198, 18, 0, 1)),
            ["--metrics-listen".to_string(), "198.18.0.1:0".into()]
        );
        assert_eq!(
            line("server", Some("http://198.18.0.1:9/metrics"), Some("ns1")),
            "server: http://198.18.0.1:9/metrics (in namespace ns1: ip netns exec ns1 curl http://198.18.0.1:9/metrics)"
        );
    }

    #[test]
    fn metrics_txt_and_its_run_md_line() {
        let t = c1m_machine::tempdir::TempDir::new();
        let d = &t.0;
        std::fs::write(
            d.join("server.log"),
            "metrics: http://127.0.0.1:7/metrics\n",
        )
        .unwrap();
        std::fs::write(d.join("loadgen.log"), "starting\n").unwrap();
        let mut w = Watch::default();
        w.add("server".into(), d.join("server.log"), None);
        w.add("loadgen".into(), d.join("loadgen.log"), None);
        w.poll("uring-c10");
        w.finish("uring-c10", d).unwrap();
        let mut n = Watch::default();
        n.none("client", "wrk has no metrics endpoint");
        n.finish("x", d).unwrap();
        assert_eq!(
            run_md_line("uring-c10", d).unwrap(),
            "- metrics of uring-c10: server: http://127.0.0.1:7/metrics; loadgen: no address printed (see its log); client: none (wrk has no metrics endpoint)\n"
        );
        assert_eq!(run_md_line("x", &d.join("none")), None);
    }
}
