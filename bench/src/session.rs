//! A whole run: preflight, tuning, the plan, the scenarios, the headline, and
//! the cleanup that runs on every exit path (normal end, error, signal; a SIGKILL is
//! left to the watchdog): stop every process group, restore and verify the sysctls,
//! remove the private run folder, stop the watchdog.

use crate::cli::RunArgs;
use crate::interrupt::{self, Interrupted};
pub use crate::options::Options;
use crate::plan::{self, Facts, Plan};
use crate::preflight;
use crate::procs::{kill_group, Procs};
use crate::runner::Ctx;
use crate::scenarios::Suite;
use crate::statedir::{self, Lock};
use crate::sysctl::{self, Sysctl};
use crate::topology::active::Topology;
use crate::topology::hosts::remote::Hosts;
use crate::topology::placement::Kind;
use crate::tuning::Tuning;
use crate::{log, warn};
use anyhow::{bail, Context as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The repository: the nearest folder above this binary that has scripts/sysctl-apply.sh.
pub fn find_root() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot tell where c1m-bench is")?;
    exe.ancestors()
        .find(|d| d.join("scripts/sysctl-apply.sh").is_file())
        .map(Path::to_path_buf)
        .context(
            "c1m-bench must run from the repository's target/ folder (scripts/c1m.sh does that)",
        )
}

/// The facts of this machine and the plan made from them (nothing printed).
fn planned(o: &Options, t: &Tuning, tuned_now: bool) -> anyhow::Result<(Facts, Plan)> {
    let f = crate::facts::gather(o, t, tuned_now)?;
    let p = plan::plan(o, &f)?;
    if p.split.shared {
        warn("one CPU: server and loadgen share it; numbers say little");
    }
    Ok((f, p))
}

/// `c1m-bench run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    interrupt::install()?;
    let root = find_root()?;
    let o = Options::from_args(&args, &root)?;
    // Commands run from the repository with paths relative to it, so cmd.txt and
    // summary.json can be re-run from any checkout.
    std::env::set_current_dir(&root)
        .with_context(|| format!("cannot change into {}", root.display()))?;
    let (server_bin, loadgen_bin) = (
        PathBuf::from("target/release/c1m-server"),
        PathBuf::from("target/release/c1m-loadgen"),
    );
    if !server_bin.is_file() || !loadgen_bin.is_file() {
        bail!(
            "missing {} or {} (run scripts/c1m.sh without --no-build)",
            server_bin.display(),
            loadgen_bin.display()
        );
    }
    let (pre, t, variant_keys) = check(&o)?;
    if o.dry_run {
        let (f, p) = planned(&o, &t, false)?;
        crate::say!("{}", p.text(&o, &f, true));
        log("--dry-run: nothing run");
        return Ok(ExitCode::SUCCESS);
    }
    let dir = statedir::state_dir()?;
    let lock = statedir::lock(&dir, statedir::LOCK_WAIT, || Ok(interrupt::check()?))?;
    // Holding the lock: what a killed run (watchdog and all) left is cleaned now.
    for line in crate::topology::netns::clean_stale_records(&dir) {
        warn(line);
    }
    let tmp = nix::unistd::mkdtemp(&std::env::temp_dir().join("c1m.XXXXXX"))
        .context("cannot create a private temporary folder (check TMPDIR)")?;
    let sysctl = Sysctl {
        scripts: root.join("scripts"),
        state: statedir::state_file(&dir),
    };
    // On netns the root namespace gets only the machine-wide keys, known once the
    // namespaces exist: they are restored by key (see `Session::tune`).
    let netns = o.topo.kind == Kind::Netns;
    let mut session = Session {
        procs: Procs::new(&tmp),
        netns_record: netns.then(|| crate::topology::netns::record_path(&dir, std::process::id())),
        topo: None,
        tmp,
        sysctl,
        restore_profile: if netns { None } else { t.profile.clone() },
        restore_keys: if netns { Vec::new() } else { t.set_keys() },
        touched: {
            let mut keys = t.touched.clone();
            keys.extend(variant_keys.into_iter().filter(|k| !t.touched.contains(k)));
            keys
        },
        before: None,
        watchdog: None,
        lock,
        cleaned: false,
        written: Vec::new(),
        gate_failed: false,
    };
    session.watchdog = Some(session.start_watchdog()?);
    let bins = (server_bin, loadgen_bin);
    let result = session.body(&o, &t, &root, bins, pre);
    let failures = match &result {
        Ok(n) => *n,
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => 0,
        Err(e) => {
            crate::sayln!("c1m: error: {e:#}");
            0
        }
    };
    let clean = session.cleanup();
    Ok(ExitCode::from(exit_status(
        &result,
        failures,
        session.gate_failed,
        clean,
    )))
}

/// The exit status of a run: a signal's, 1 for an error, a failed case or an unclean
/// cleanup, 4 when only a `--threshold` failed, else 0.
fn exit_status(
    result: &anyhow::Result<usize>,
    failures: usize,
    gate_failed: bool,
    clean: bool,
) -> u8 {
    let interrupted = result
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<Interrupted>())
        .map(|i| i.0);
    let mut rc: u8 = match (result, interrupted) {
        (_, Some(sig)) => interrupt::exit_status(sig),
        (Err(_), None) => 1,
        (Ok(_), None) if failures > 0 => 1,
        (Ok(_), None) if gate_failed => c1m_loadgen::report::gate::EXIT_THRESHOLD_FAILED,
        (Ok(_), None) => 0,
    };
    if !clean {
        warn("cleanup was not clean (see above): check sysctls and processes");
        if rc == 0 {
            rc = 1;
        }
    } else if interrupted.is_some() {
        log("interrupted; kernel and processes are back as they were");
    }
    rc
}

/// The checks before anything is planned: our own binaries, the programs the scenarios
/// need, the preflight (printed), io_uring, the tuning, and what needs root. Returns
/// the preflight text, the tuning and the root keys the variants set.
fn check(o: &Options) -> anyhow::Result<(String, Tuning, Vec<String>)> {
    crate::runcase::check_own_binaries(&o.backends, o.dry_run)?;
    if o.topo.kind != Kind::Hosts {
        // On hosts, each host's preflight says where its programs are.
        crate::http::check_tools(&o.scenarios, o.dry_run)?;
    }
    crate::observe::perf::check(o.observe.perf, o.topo.kind == Kind::Hosts, o.dry_run)?;
    let pre = preflight::preflight_text();
    crate::say!("{pre}");
    if o.topo.kind != Kind::Hosts {
        // On hosts, each host's preflight checks its own io_uring.
        preflight::check_uring()?;
    }
    let t = Tuning::decide(o)?;
    if let Some(why) = o.topo.ethtool_missing() {
        if !o.dry_run {
            bail!("{why}");
        }
        warn(why);
    }
    let variant_keys = crate::variants::sysctl_keys(&o.variants);
    if !variant_keys.is_empty() && !preflight::is_root() {
        let why = format!(
            "variants set sysctls ({}): run as root (sudo), or drop the sysctls from the variants file",
            variant_keys.join(", ")
        );
        if !o.dry_run {
            bail!("{why}");
        }
        warn(why);
    }
    if o.topo.kind == Kind::Netns && !o.dry_run && !preflight::is_root() {
        bail!("--topology netns needs root (it creates network namespaces): run it with sudo");
    }
    Ok((pre, t, variant_keys))
}

/// What must be undone at the end of a run.
struct Session {
    procs: Procs,
    /// The run's topology, once built (torn down in the cleanup).
    topo: Option<Topology>,
    /// netns: the record of the namespaces, for the watchdog.
    netns_record: Option<PathBuf>,
    tmp: PathBuf,
    sysctl: Sysctl,
    restore_profile: Option<PathBuf>,
    restore_keys: Vec<String>,
    touched: Vec<String>,
    /// The touched keys before tuning; Some once tuning started (restore at exit).
    before: Option<String>,
    watchdog: Option<Child>,
    lock: Lock,
    cleaned: bool,
    /// Result folders and files this run wrote (handed to the sudo user at the end).
    written: Vec<PathBuf>,
    /// A `--threshold` failed.
    gate_failed: bool,
}

impl Session {
    /// Starts `c1m-bench watchdog` in its own session, holding the lock fd.
    fn start_watchdog(&self) -> anyhow::Result<Child> {
        let exe = std::env::current_exe().context("cannot tell where c1m-bench is")?;
        let fd = self.lock.raw_fd();
        let mut c = Command::new(exe);
        c.arg("watchdog")
            .arg("--pid")
            .arg(std::process::id().to_string())
            .arg("--run-dir")
            .arg(&self.tmp)
            .arg("--state")
            .arg(&self.sysctl.state)
            .arg("--scripts")
            .arg(&self.sysctl.scripts)
            .arg("--lock-fd")
            .arg(fd.to_string());
        if let Some(p) = &self.restore_profile {
            c.arg("--profile").arg(p);
        }
        for k in &self.restore_keys {
            c.arg("--key").arg(k);
        }
        if let Some(r) = &self.netns_record {
            c.arg("--netns-record").arg(r);
        }
        c.stdin(Stdio::null()).stdout(Stdio::null());
        // SAFETY: setsid and fcntl are async-signal-safe; they run in the forked child
        // before exec and change only the child's session and its copy of the fd flags.
        unsafe {
            c.pre_exec(move || {
                if libc::setsid() < 0 || libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c.spawn()
            .context("cannot start the watchdog (c1m-bench watchdog)")
    }

    /// Plans, builds the topology and tunes, in the order each topology needs; prints
    /// the plan once it is final. Returns the sysctl table, the plan and its text.
    fn build(
        &mut self,
        o: &Options,
        t: &Tuning,
        root: &Path,
        bins: (&Path, &Path),
    ) -> anyhow::Result<(String, Plan, String)> {
        Ok(if o.topo.kind == Kind::Hosts {
            let (f, mut p) = planned(o, t, false)?;
            self.record_written(o, &p);
            let plan = p.hosts.clone().context("the hosts topology has no plan")?;
            let hosts = Hosts::new(plan, &self.tmp);
            let topo = self
                .topo
                .insert(Topology::hosts(p.placement.clone(), hosts));
            // The hosts' own CPUs go into the plan before it is printed.
            let needs = crate::http::host_needs(&o.scenarios);
            let facts = crate::topology::hosts::preflight(topo, &mut p.split, root, &needs)?;
            p.placement = topo.placement.clone();
            let text = p.text(o, &f, false);
            crate::say!("{text}");
            let tables = topo.setup_hosts(root, bins, &f.settings)?;
            (format!("{facts}{tables}"), p, text)
        } else if o.topo.kind == Kind::Netns {
            // The plan sizes the namespaces, which must exist before the tuning: only
            // they tell which keys a namespace has its own copy of.
            let (f, p) = planned(o, t, false)?;
            let text = p.text(o, &f, false);
            crate::say!("{text}");
            self.record_written(o, &p);
            let plan = p.netns.clone().context("the netns topology has no plan")?;
            let record = self
                .netns_record
                .clone()
                .context("the netns topology has no record file")?;
            log(format!(
                "building the netns topology: {}",
                plan.namespaces().join(" ")
            ));
            let topo =
                self.topo
                    .insert(Topology::create_netns(plan, p.placement.clone(), &record)?);
            interrupt::check()?;
            crate::topology::case_link::probe(topo, &o.variants)?;
            let global = topo.apply_sysctls(&t.settings())?;
            let variant_keys = topo.root_keys(&variant_settings(o))?;
            (self.tune(t, Some(&global), &variant_keys)?, p, text)
        } else {
            let diff = self.tune(t, None, &crate::variants::sysctl_keys(&o.variants))?;
            interrupt::check()?;
            let (f, p) = planned(o, t, true)?;
            let text = p.text(o, &f, false);
            crate::say!("{text}");
            self.record_written(o, &p);
            let topo = self.topo.insert(Topology::loopback(p.placement.clone()));
            topo.apply_sysctls(&t.settings())?;
            (diff, p, text)
        })
    }

    /// Everything after the watchdog: tuning, plan, scenarios, headline. Returns the
    /// number of failed runs.
    fn body(
        &mut self,
        o: &Options,
        t: &Tuning,
        root: &Path,
        bins: (PathBuf, PathBuf),
        pre: String,
    ) -> anyhow::Result<usize> {
        let (sysctl_diff, p, plan_text) =
            self.build(o, t, root, (bins.0.as_path(), bins.1.as_path()))?;
        interrupt::check()?;
        let revision = crate::revision::Revision::read(root);
        if let Some(w) = revision.warning() {
            crate::warn(w);
        }
        let t_start = Instant::now();
        let topo = self.topo.as_ref().context("no topology was built")?;
        let topo_text = topo.headline();
        let mut suite = Suite {
            ctx: Ctx {
                server_bin: bins.0,
                loadgen_bin: bins.1,
                split: p.split.clone(),
                scale: p.scale.clone(),
                limits: p.limits.clone(),
                tag: o.tag.clone(),
                tmp: self.tmp.clone(),
                start_inuse: topo.tcp_inuse(),
                procs: &mut self.procs,
                topo,
                failures: Vec::new(),
                wire: o.wire,
                sysctl: self.sysctl.clone(),
                http: None,
                observe: o.observe,
            },
            variants: o.variants.clone(),
            out_parent: p.out.clone(),
            stamp: p.stamp.clone(),
            host: p.host.clone(),
            rate: o.rate.clone(),
            invocation: std::env::var("C1M_INVOCATION")
                .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" ")),
            revision: revision.clone(),
            preflight: pre,
            plan: plan_text,
            sysctl_diff,
            seed: o.seed,
            closed_extra: o
                .batch_waits
                .iter()
                .flat_map(|v| ["--batch-waits".to_string(), v.clone()])
                .collect(),
            open_extra: vec![
                "--arrivals".into(),
                o.arrivals.clone(),
                "--seed".into(),
                (o.seed % (1 << 32)).to_string(),
            ],
            body_size: o.body_size,
            study: o.study.clone(),
        };
        for &s in &o.scenarios {
            interrupt::check()?;
            suite.run(s)?;
        }
        let tuning = if t.active() {
            format!("tuned: {}", t.args_text(Some(&root.join(""))))
        } else {
            "untuned".into()
        };
        let sdirs: Vec<PathBuf> = o.scenarios.iter().map(|&s| suite.scenario_dir(s)).collect();
        let failures = std::mem::take(&mut suite.ctx.failures);
        let setting = format!("{topo_text}; {tuning}");
        let head = crate::headline::Head {
            stamp: p.stamp.clone(),
            host: p.host.clone(),
            quick: o.quick,
            revision: revision.short(),
            server_cpus: p.split.server.clone(),
            loadgen_cpus: p.split.loadgen.clone(),
            setting,
            scenarios: o.scenarios.clone(),
            arrivals: Some(crate::options::arrivals_text(&o.arrivals).to_string()),
        };
        let path = p
            .out
            .join(crate::scenarios::headline_file(&p.stamp, &p.host));
        crate::headline::write_headline(&path, &head, &sdirs, &failures, t_start)?;
        let gate = crate::report::gates::after_run(&o.gate, &sdirs)?;
        self.gate_failed = gate.failed;
        self.written.extend(gate.written);
        Ok(failures.len())
    }

    /// Remembers the result folders of the plan (handed to the sudo user at the end).
    fn record_written(&mut self, o: &Options, p: &Plan) {
        if p.out_is_new {
            self.written.push(p.out.clone());
        } else {
            let names = crate::facts::result_names(o, &p.stamp, &p.host);
            self.written.extend(names.iter().map(|n| p.out.join(n)));
        }
    }

    /// Saves, applies and shows the sysctls of the root namespace: the profile and the
    /// `--set`s (loopback, `global` None), or only the machine-wide keys `global` left
    /// by the netns topology (restored by key). `variant_keys` are the root namespace's
    /// keys that variants set for their cases: restored at exit like the rest. Returns
    /// the before/after table.
    fn tune(
        &mut self,
        t: &Tuning,
        global: Option<&[(String, String)]>,
        variant_keys: &[String],
    ) -> anyhow::Result<String> {
        if let Some(g) = global {
            self.restore_keys = g
                .iter()
                .map(|(k, _)| k.trim_start_matches('-').to_owned())
                .collect();
        }
        for k in variant_keys {
            if !self.restore_keys.contains(k) {
                self.restore_keys.push(k.clone());
            }
        }
        if !t.active() && variant_keys.is_empty() {
            let why = if preflight::is_root() {
                "--no-tune"
            } else {
                "not root"
            };
            return Ok(sysctl::current_values_text(why, &t.entries));
        }
        if self.sysctl.state.exists() {
            warn(format!("{} is left from a run that did not restore; its saved values are the originals and will be restored at exit", self.sysctl.state.display()));
        }
        self.before = Some(sysctl::snapshot(&self.touched));
        // Before the apply: the watchdog restores what this file lists.
        crate::safe_fs::write(&self.tmp.join("tuned"), keys_text(&self.restore_keys))?;
        let (ok, diff) = match global {
            _ if !t.active() => (
                true,
                "no run-wide sysctls (--no-tune); variants set theirs for their own cases\n".into(),
            ),
            None => self.sysctl.apply(t.profile.as_deref(), &t.sets)?,
            Some([]) => (
                true,
                "no machine-wide sysctls to set in the root namespace\n".into(),
            ),
            Some(g) => {
                let sets: Vec<String> = g.iter().map(|(k, v)| format!("{k}={v}")).collect();
                // Only --set: without a profile argument the script would apply
                // its default profile.
                self.sysctl.apply(None, &sets)?
            }
        };
        if !ok {
            warn("some sysctls could not be applied (see the table below); running anyway");
        }
        crate::say!("{diff}");
        Ok(diff)
    }

    /// Stops what runs, restores and verifies the sysctls, removes the run folder, stops
    /// the watchdog. True if all of it was clean.
    fn cleanup(&mut self) -> bool {
        if self.cleaned {
            return true;
        }
        self.cleaned = true;
        let mut clean = true;
        let live = self.procs.live_pids();
        if !live.is_empty() {
            let list: Vec<String> = live.iter().map(i32::to_string).collect();
            log(format!(
                "stopping {} process group(s) still running: {}",
                live.len(),
                list.join(" ")
            ));
            self.procs
                .stop(libc::SIGTERM, Duration::from_secs(10), &live);
        }
        if let Some(mut topo) = self.topo.take() {
            let names = topo.namespaces();
            match topo.teardown() {
                Ok(()) if !names.is_empty() => {
                    log(format!("deleted network namespaces {}", names.join(" ")));
                }
                Ok(()) => {}
                Err(e) => {
                    warn(format!("{e:#}"));
                    clean = false;
                }
            }
        }
        if let Some(before) = self.before.take() {
            log("restoring sysctls");
            match self
                .sysctl
                .restore(self.restore_profile.as_deref(), &self.restore_keys)
            {
                Ok(true) => {}
                Ok(false) => clean = false,
                Err(e) => {
                    warn(format!("{e:#}"));
                    clean = false;
                }
            }
            let after = sysctl::snapshot(&self.touched);
            if after == before {
                log(format!(
                    "sysctls verified: all {} touched keys read exactly as before the run",
                    self.touched.len()
                ));
            } else {
                warn("sysctls differ from before the run:");
                crate::say!("{}", sysctl::snapshot_diff(&before, &after));
                clean = false;
            }
        }
        clean &= self.procs.kill_leftovers();
        self.give_results();
        if let Err(e) = std::fs::remove_dir_all(&self.tmp) {
            warn(format!("cannot remove {}: {e}", self.tmp.display()));
        }
        if let Some(mut w) = self.watchdog.take() {
            kill_group(i32::try_from(w.id()).unwrap_or(0), libc::SIGTERM);
            let _ = w.wait();
        }
        clean
    }
}

impl Session {
    /// Under sudo, hands every result folder of this run to the invoking user.
    fn give_results(&self) {
        let Some((uid, gid)) = crate::owner::sudo_owner() else {
            return;
        };
        for path in self.written.iter().filter(|p| p.symlink_metadata().is_ok()) {
            if let Err(e) = crate::owner::give_tree(path, uid, gid) {
                warn(format!("cannot give {} to uid {uid}: {e}", path.display()));
            }
        }
    }
}

impl Drop for Session {
    /// A panic unwinding through the run still restores the machine.
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Every `(key, value)` the variants set, for splitting by where keys live.
fn variant_settings(o: &Options) -> Vec<(String, String)> {
    o.variants.iter().flat_map(|v| v.sysctls.clone()).collect()
}

/// One key per line.
fn keys_text(keys: &[String]) -> String {
    keys.iter().map(|k| format!("{k}\n")).collect()
}
