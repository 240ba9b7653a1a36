//! `--procs P`: P copies of this binary, each with its share of the connections (and of
//! the rate), each writing its own run folder `worker-<i>`; the parent waits for them with
//! a bound and merges their folders into `--out`.

use super::plan::{share, Mode, Plan};
use crate::cli::RunArgs;
use crate::report;
use anyhow::{bail, Context};
use c1m_platform::{cpus, signals};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Asks the kernel to send us SIGTERM when the parent dies, so workers never outlive an
/// interrupted or killed parent.
pub fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and changes only this
    // process's own death-signal setting.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
    }
}

/// Kills and reaps every worker still running when dropped (an error path of the parent).
struct Workers(Vec<(usize, Child)>);

impl Workers {
    fn signal_all(&mut self, sig: i32) {
        for (_, child) in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                // SAFETY: kill() on the pid of a child we have not reaped yet (try_wait
                // just said it is running), so the pid cannot have been reused.
                unsafe {
                    libc::kill(child.id() as libc::pid_t, sig);
                }
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The CPUs worker `i` of `procs` gets: every P-th of the list, or one shared CPU.
fn worker_cpus(all: &[usize], i: usize, procs: usize) -> Vec<usize> {
    if all.len() >= procs {
        all.iter().copied().skip(i).step_by(procs).collect()
    } else {
        vec![all[i % all.len()]]
    }
}

fn worker_args(args: &RunArgs, plan: &Plan, i: usize, dir: &Path) -> Vec<String> {
    let procs = args.procs;
    let conns = share(args.connections, procs, i);
    let frac = conns as f64 / args.connections as f64;
    let mut v: Vec<String> = vec!["run".into()];
    for t in &plan.targets {
        v.extend(["--target".into(), t.to_string()]);
    }
    v.extend([
        "--connections".into(),
        conns.to_string(),
        "--duration".into(),
        plan.duration_s.to_string(),
        "--warmup".into(),
        plan.warmup_s.to_string(),
        "--protocol".into(),
        plan.wire.protocol().name().into(),
        "--pipeline".into(),
        plan.pipeline.to_string(),
        "--cpus".into(),
        cpus::format_cpu_list(&worker_cpus(&plan.cpus, i, procs)),
        "--out".into(),
        dir.display().to_string(),
        "--procs".into(),
        procs.to_string(),
        "--worker".into(),
        i.to_string(),
    ]);
    if let Some(s) = plan.wire.size() {
        v.extend(["--size".into(), s.to_string()]);
    }
    if let Some(n) = args.reply_size {
        v.extend(["--reply-size".into(), n.to_string()]);
    }
    if let Some(n) = args.body_size {
        v.extend(["--body-size".into(), n.to_string()]);
    }
    if !plan.server_cpus.is_empty() {
        v.extend([
            "--server-cpus".into(),
            cpus::format_cpu_list(&plan.server_cpus),
        ]);
    }
    if let Some(s) = &args.source_ips {
        v.extend(["--source-ips".into(), s.clone()]);
    }
    if let Some(r) = args.connect_rate {
        v.extend(["--connect-rate".into(), (r * frac).to_string()]);
    }
    if let Some(l) = &args.label {
        v.extend(["--label".into(), l.clone()]);
    }
    if let Some(r) = args.round {
        v.extend(["--round".into(), r.to_string()]);
    }
    v.extend([
        "--seed".into(),
        args.seed.to_string(),
        "--batch-waits".into(),
        plan.batch_waits.name().into(),
    ]);
    match plan.mode {
        Mode::Rate(r) => v.extend([
            "--rate".into(),
            (r * frac).to_string(),
            "--arrivals".into(),
            plan.arrivals.name().into(),
        ]),
        Mode::Heartbeat(h) => v.extend(["--heartbeat".into(), h.to_string()]),
        Mode::Churn => v.push("--churn".into()),
        Mode::Closed => {}
    }
    v
}

/// Upper bound for a worker's whole run: ramp (each connect ends within its timeout),
/// warm-up, measured phase, drain, and writing its folder.
fn run_bound(args: &RunArgs) -> Duration {
    let per_proc = args.connections.div_ceil(args.procs) as f64;
    let ramp = match args.connect_rate {
        Some(r) => per_proc / (r / args.procs as f64),
        None => per_proc / 2_000.0,
    };
    Duration::from_secs_f64(ramp + 30.0 + args.warmup + args.duration + 30.0)
}

pub fn run_parent(args: &RunArgs, plan: &Plan) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding this executable to start workers")?;
    let (out, temporary) = match &args.out {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("c1m-loadgen-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let dirs: Vec<PathBuf> = (0..args.procs)
        .map(|i| out.join(format!("worker-{i}")))
        .collect();
    let mut workers = Workers(Vec::new());
    for (i, dir) in dirs.iter().enumerate() {
        let _ = std::fs::remove_dir_all(dir);
        // Workers' result lines go to our stderr: stdout carries only the merged line.
        let stdout: Stdio = {
            use std::os::fd::AsFd;
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_or(Stdio::inherit(), Stdio::from)
        };
        let child = Command::new(&exe)
            .args(worker_args(args, plan, i, dir))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting worker {i} ({})", exe.display()))?;
        workers.0.push((i, child));
    }

    let deadline = Instant::now() + run_bound(args);
    let mut kill_at: Option<Instant> = None;
    let mut statuses: Vec<Option<std::process::ExitStatus>> = vec![None; args.procs];
    loop {
        for (i, child) in &mut workers.0 {
            if statuses[*i].is_none() {
                statuses[*i] = child.try_wait().ok().flatten();
            }
        }
        if statuses.iter().all(Option::is_some) {
            break;
        }
        let now = Instant::now();
        if kill_at.is_none() && (signals::stop_requested() || now >= deadline) {
            if now >= deadline {
                eprintln!(
                    "c1m-loadgen: workers ran past {:?}; stopping them",
                    run_bound(args)
                );
            }
            // Workers end early on SIGTERM and still write their folders.
            workers.signal_all(libc::SIGTERM);
            kill_at = Some(now + Duration::from_secs(15));
        }
        if kill_at.is_some_and(|k| now >= k) {
            workers.signal_all(libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut parts = Vec::new();
    let mut failed = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let status = statuses[i];
        match report::read_run_dir(dir) {
            Ok(r) => parts.push(r),
            Err(e) => failed.push(format!("worker {i} ({status:?}): {e:#}")),
        }
    }
    if parts.is_empty() {
        bail!("no worker wrote a run folder: {}", failed.join("; "));
    }
    for f in &failed {
        eprintln!("c1m-loadgen: {f}");
    }
    let mut merged = report::merge_records(&parts).context("merging the workers' run folders")?;
    // Describe the whole run, not worker 0.
    merged.summary.workload = super::workload(args, plan);
    merged.summary.label = args
        .label
        .clone()
        .unwrap_or_else(|| super::default_label(plan));
    let mut env = super::environment(plan);
    env.loadgen_cpu_us_per_msg = cpu_per_msg(&parts);
    merged.summary.environment = env;
    report::merge::merge_environment(&mut merged.summary, &parts);
    for w in merged.summary.derived_warnings() {
        if !merged.summary.warnings.contains(&w) {
            merged.summary.warnings.push(w);
        }
    }
    if !temporary {
        report::write_run_dir(&out, &merged)
            .with_context(|| format!("writing the merged run folder {}", out.display()))?;
    }
    println!("{}", super::result_line(&merged.summary));
    if temporary {
        let _ = std::fs::remove_dir_all(&out);
    }
    let worker_failed = statuses.iter().any(|s| s.is_some_and(|s| !s.success()));
    if merged.summary.verify_errors > 0 || worker_failed || !failed.is_empty() {
        if worker_failed {
            eprintln!("c1m-loadgen: a worker exited with an error: {statuses:?}");
        }
        return Ok(ExitCode::from(1));
    }
    Ok(super::exit_code(&merged.summary))
}

/// CPU microseconds per message over all workers (weighted by their messages).
fn cpu_per_msg(parts: &[report::RunRecord]) -> Option<f64> {
    let mut cpu_us = 0.0;
    let mut msgs = 0u64;
    for p in parts {
        let s = &p.summary;
        cpu_us += s.environment.loadgen_cpu_us_per_msg? * s.messages_received as f64;
        msgs += s.messages_received;
    }
    (msgs > 0).then(|| cpu_us / msgs as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_split_between_workers() {
        assert_eq!(worker_cpus(&[0, 1, 2, 3], 1, 2), vec![1, 3]);
        assert_eq!(worker_cpus(&[0, 1], 2, 3), vec![0]);
    }
}
