//! `--perf`: `perf record` of this machine's server process(es) from the moment they are
//! ready until the client ends (`-F 999 -g --clockid realtime`, so sample times are
//! seconds since the epoch, like the loadgen's window in latency.hlog), then
//! `perf script --time START,END` over the measured window only, folded by inferno
//! (kernel frames marked `_[k]`) into perf.folded, drawn as flamegraph.svg, and
//! broken down ([`crate::breakdown`]) into profile.json. perf.data is removed after.
//! Every process of the server's process groups is profiled (several c1m-server
//! processes at high counts, nginx's master and workers).

use crate::breakdown::Breakdown;
use anyhow::Context as _;
use c1m_machine::procs::quote_cmd;
use c1m_machine::safe_fs::append;
use inferno::collapse::perf::{Folder, Options as FoldOptions};
use inferno::collapse::Collapse as _;
use inferno::flamegraph::{self, color::MultiPalette, Palette};
use serde_json::json;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Sampling frequency: not a multiple of common timer rates (lockstep).
pub const FREQ_HZ: u32 = 999;

/// perf, or why `--perf` cannot run here.
pub fn find() -> anyhow::Result<PathBuf> {
    c1m_machine::tools::find_program("perf").context(
        "--perf needs perf (Debian: linux-perf, Ubuntu: linux-tools-$(uname -r); sudo scripts/setup.sh installs it)",
    )
}

/// The preflight of `--perf` (`on`): perf must be here, unless the server runs on a
/// host (then nothing is profiled, and the run says so) or this is a dry run (a
/// warning).
pub fn check(on: bool, hosts: bool, dry_run: bool) -> anyhow::Result<()> {
    if !on {
        return Ok(());
    }
    if hosts {
        c1m_machine::warn("--perf profiles a server on this machine only: on --topology hosts the server runs elsewhere, so no case gets a profile");
        return Ok(());
    }
    match find() {
        Ok(_) => Ok(()),
        Err(e) if dry_run => {
            c1m_machine::warn(format!("{e:#}"));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `perf record` of `pids` into `data`.
pub fn record_argv(perf: &Path, pids: &[i32], data: &Path) -> Vec<String> {
    let pids: Vec<String> = pids.iter().map(i32::to_string).collect();
    vec![
        perf.display().to_string(),
        "record".into(),
        "-F".into(),
        FREQ_HZ.to_string(),
        "-g".into(),
        "--clockid".into(),
        "realtime".into(),
        "-p".into(),
        pids.join(","),
        "-o".into(),
        data.display().to_string(),
    ]
}

/// `--time START,END` of perf script: the window in seconds since the epoch.
pub fn time_arg(window: (f64, f64)) -> String {
    format!("{:.6},{:.6}", window.0, window.1)
}

/// A finished recording, to cut to the measured window.
pub struct Stopped {
    perf: PathBuf,
    pids: Vec<i32>,
}

impl Stopped {
    /// A recording of `pids` made with `perf` (what the orchestrator's
    /// `observe::perf::Recording::stop` returns).
    pub fn new(perf: PathBuf, pids: Vec<i32>) -> Stopped {
        Stopped { perf, pids }
    }

    /// perf.folded, flamegraph.svg and profile.json of `window` (seconds since the
    /// epoch, from `from`); perf.data removed whatever happens.
    pub fn write(
        &self,
        dir: &Path,
        case: &str,
        window: (f64, f64),
        from: &str,
    ) -> anyhow::Result<()> {
        let data = dir.join("perf.data");
        let folded = self.fold(dir, &data, window);
        self.discard(dir)?;
        let folded = folded?;
        c1m_machine::safe_fs::write(&dir.join("perf.folded"), &folded)?;
        let b = Breakdown::of_folded(&folded);
        let svg = flame_graph(&folded, case, b.samples())?;
        c1m_machine::safe_fs::write(&dir.join("flamegraph.svg"), svg)?;
        let mut j = b.to_json();
        j["window"] = json!({"start_epoch_s": window.0, "end_epoch_s": window.1, "from": from});
        j["pids"] = json!(self.pids);
        j["frequency_hz"] = json!(FREQ_HZ);
        j["rule"] = json!("softirq if any frame is softirq processing; else the first category a kernel frame matches, from the leaf up; else user if the leaf is a user frame; else other kernel");
        c1m_machine::safe_fs::write(&dir.join("profile.json"), format!("{j:#}\n"))?;
        c1m_machine::log(format!(
            "{case}: server profile: {} samples over the measured window; flamegraph.svg",
            b.samples()
        ));
        Ok(())
    }

    /// Removes perf.data (a failed case, or no window to cut it to).
    pub fn discard(&self, dir: &Path) -> anyhow::Result<()> {
        let data = dir.join("perf.data");
        match std::fs::remove_file(&data) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", data.display()))
            }
            _ => Ok(()),
        }
    }

    /// `perf script --time` of the window, folded.
    fn fold(&self, dir: &Path, data: &Path, window: (f64, f64)) -> anyhow::Result<String> {
        let argv = [
            self.perf.display().to_string(),
            "script".into(),
            "-i".into(),
            data.display().to_string(),
            "--time".into(),
            time_arg(window),
            // No period: inferno then counts samples, not nanoseconds.
            "-F".into(),
            "comm,pid,tid,time,event,ip,sym,dso".into(),
        ];
        append(&dir.join("cmd.txt"), format!("{}\n", quote_cmd(&argv)))?;
        let log = c1m_machine::safe_fs::create(&dir.join("perf-script.log"))?;
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", argv[0]))?;
        let out = child.stdout.take().context("perf script's output")?;
        let mut opts = FoldOptions::default();
        opts.annotate_kernel = true;
        let mut folded = Vec::new();
        let collapsed = Folder::from(opts).collapse(BufReader::new(out), &mut folded);
        let status = child.wait().context("perf script")?;
        collapsed.context("folding perf script's output")?;
        if !status.success() {
            anyhow::bail!("perf script failed ({status}); see perf-script.log");
        }
        String::from_utf8(folded).context("perf script's output is not UTF-8")
    }
}

/// The flame graph of the folded stacks (kernel frames orange, Rust frames yellow).
pub fn flame_graph(folded: &str, case: &str, samples: u64) -> anyhow::Result<Vec<u8>> {
    let mut opts = flamegraph::Options::default();
    opts.colors = Palette::Multi(MultiPalette::Perl);
    opts.title = format!("{case}: server CPU over the measured window");
    opts.subtitle = Some(format!(
        "perf record -F {FREQ_HZ} -g; {samples} samples; kernel frames end in _[k]"
    ));
    opts.count_name = "samples".into();
    let mut svg = Vec::new();
    if samples == 0 {
        // inferno refuses an empty profile: an SVG that says so.
        svg.extend_from_slice(
            format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"40\"><text x=\"10\" y=\"25\">{case}: no samples of the server in the measured window</text></svg>\n").as_bytes(),
        );
        return Ok(svg);
    }
    flamegraph::from_lines(&mut opts, folded.lines(), &mut svg)
        .context("drawing the flame graph")?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_the_flame_graph() {
        let a = record_argv(
            Path::new("/usr/bin/perf"),
            &[12, 34],
            Path::new("d/perf.data"),
        );
        assert_eq!(
            a.join(" "),
            "/usr/bin/perf record -F 999 -g --clockid realtime -p 12,34 -o d/perf.data"
        );
        assert_eq!(time_arg((1.5, 1796321082.25)), "1.500000,1796321082.250000");
        let folded = "c1m-uring-0;main;tcp_sendmsg_[k] 3\nc1m-uring-0;main 1\n";
        let svg = String::from_utf8(flame_graph(folded, "uring-c100", 4).unwrap()).unwrap();
        assert!(svg.contains("<svg") && svg.contains("tcp_sendmsg"), "{svg}");
        let empty = String::from_utf8(flame_graph("", "x", 0).unwrap()).unwrap();
        assert!(empty.contains("no samples"));
    }
}
