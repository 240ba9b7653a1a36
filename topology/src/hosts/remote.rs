//! The run on the hosts: preflight on each (nothing copied yet), then per host, in
//! order: a private directory (`mktemp -d`, 0700), the binaries and the sysctl scripts
//! shipped into it and checked (`--version`), a watchdog (`c1m-host.sh watchdog`, on an
//! ssh session of its own whose stdin only this process holds), the sysctls applied.
//!
//! The teardown closes each watchdog's stdin, last host first: the watchdog stops what
//! runs there, restores the sysctls it saved (last applied, first restored: several
//! "hosts" on one kernel share its machine-wide keys) and removes the directory. When
//! c1m-bench dies (even SIGKILL) its end of that stdin closes too, so every host
//! restores itself; so does a host whose ssh connection breaks.

use super::ssh::{quote_words, Ssh, SSH_FAILED};
use super::transfer::capture;
pub use super::transfer::{fetch_dir, put_file, read_file, stop_programs};
use super::{Facts, HostSpec, HostsPlan, DIR_PLACEHOLDER};
use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The files every host gets (from the repository), besides its binary.
const KIT_FILES: [&str; 5] = [
    "scripts/c1m-host.sh",
    "scripts/lib.sh",
    "scripts/sysctl-apply.sh",
    "scripts/sysctl-restore.sh",
    "sysctl/c1m.conf",
];

/// How long the teardown waits for one host's watchdog.
const WATCHDOG_WAIT: Duration = Duration::from_secs(60);
/// How long the setup waits for a watchdog to say it holds the host's lock.
const READY_WAIT: Duration = Duration::from_secs(30);
/// The line a watchdog prints once it holds the host's lock and watches its stdin.
pub(super) const READY_LINE: &str = "c1m-host: ready";

/// Waits until the watchdog `child` printed [`READY_LINE`] into `log`. Nothing is
/// changed on a host before: a watchdog that did not start (ssh, `sudo -n`, another
/// run's lock) would leave it tuned. Errors carry the watchdog's own message (`err`).
pub(super) fn wait_ready(child: &mut Child, log: &Path, err: &Path, target: &str) -> Result<()> {
    let deadline = Instant::now() + READY_WAIT;
    loop {
        let out = fs::read_to_string(log).unwrap_or_default();
        if out.lines().any(|l| l.trim() == READY_LINE) {
            return Ok(());
        }
        let why = match child.try_wait() {
            Ok(Some(s)) => format!("its watchdog ended before it was ready ({s})"),
            _ if Instant::now() >= deadline => {
                format!(
                    "its watchdog was not ready within {} s",
                    READY_WAIT.as_secs()
                )
            }
            _ => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let msg = fs::read_to_string(err).unwrap_or_default();
        bail!(
            "host {target}: {why}; nothing was changed there: {}",
            msg.trim()
        );
    }
}

/// `sudo -n` in front of the commands that need root, for a host where the user is not
/// root but may sudo.
fn sudo(f: Option<&Facts>) -> Vec<String> {
    match f {
        Some(f) if !f.root() && f.can_tune() => vec!["sudo".into(), "-n".into()],
        _ => Vec::new(),
    }
}

fn keys(entries: &[(String, String)]) -> Vec<String> {
    entries
        .iter()
        .map(|(k, _)| k.trim_start_matches('-').to_owned())
        .collect()
}

/// `c1m-host.sh apply TOKEN KEY=VALUE...` in `dir`.
fn apply_words(h: &HostSpec, f: Option<&Facts>, e: &[(String, String)]) -> Vec<String> {
    let mut w = sudo(f);
    w.extend(["./c1m-host.sh".into(), "apply".into(), h.token.clone()]);
    w.extend(e.iter().map(|(k, v)| format!("{k}={v}")));
    w
}

/// `c1m-host.sh watchdog TOKEN KEY...` in `dir`.
fn watchdog_words(h: &HostSpec, f: Option<&Facts>, e: &[(String, String)]) -> Vec<String> {
    let mut w = sudo(f);
    w.extend(["./c1m-host.sh".into(), "watchdog".into(), h.token.clone()]);
    w.extend(keys(e));
    w
}

const MKTEMP: &str = "umask 077 && mktemp -d \"${TMPDIR:-/tmp}/c1m-host.XXXXXX\"";

/// The commands the setup of `h` runs, as printed by a dry run.
pub fn setup_commands(ssh: &Ssh, h: &HostSpec, entries: &[(String, String)]) -> Vec<String> {
    let d = DIR_PLACEHOLDER;
    let e = HostsPlan::role_entries(h, entries);
    let mut out = vec![
        format!(
            "{} < scripts/host-preflight.sh",
            quote_words(&ssh.shell(&h.target, "bash -s"))
        ),
        quote_words(&ssh.shell(&h.target, MKTEMP)),
        format!(
            "tar -cf - {} target/release/{} | {}",
            KIT_FILES.join(" "),
            h.program(),
            quote_words(&ssh.words(&h.target, &["tar", "-x", "-C", d, "-f", "-"]))
        ),
        quote_words(&ssh.in_dir(
            &h.target,
            d,
            &[format!("./{}", h.program()), "--version".into()],
        )),
        format!(
            "{}   (held open until the end; nothing is applied before it prints '{READY_LINE}')",
            quote_words(&ssh.in_dir(&h.target, d, &watchdog_words(h, None, &e)))
        ),
    ];
    if !e.is_empty() {
        out.push(quote_words(&ssh.in_dir(
            &h.target,
            d,
            &apply_words(h, None, &e),
        )));
    }
    out
}

/// One host during the run.
#[derive(Debug)]
struct Host {
    spec: HostSpec,
    facts: Option<Facts>,
    dir: Option<String>,
    watchdog: Option<(Child, Option<ChildStdin>)>,
    /// What was applied there (`KEY=VALUE`), and where the originals are saved.
    applied: Vec<String>,
    state: Option<String>,
    /// The teardown's verdict: true once its watchdog restored and cleaned up.
    cleaned: Option<bool>,
}

/// The hosts of a run.
#[derive(Debug)]
pub struct Hosts {
    pub plan: HostsPlan,
    hosts: Vec<Host>,
    tmp: PathBuf,
}

impl Hosts {
    pub fn new(plan: HostsPlan, tmp: &Path) -> Hosts {
        let hosts = plan
            .hosts()
            .into_iter()
            .map(|s| Host {
                spec: s.clone(),
                facts: None,
                dir: None,
                watchdog: None,
                applied: Vec::new(),
                state: None,
                cleaned: None,
            })
            .collect();
        Hosts {
            plan,
            hosts,
            tmp: tmp.to_path_buf(),
        }
    }

    /// The preflight of every host, printed; stops at the first host that cannot be
    /// reached or used, naming it. Nothing is copied or changed anywhere.
    pub fn preflight(&mut self, root: &Path, needs: &super::Needs) -> Result<String> {
        let script = root.join("scripts/host-preflight.sh");
        let arch = std::env::consts::ARCH;
        let mut text = String::from("hosts:\n");
        for h in &mut self.hosts {
            let argv = self.plan.ssh.shell(&h.spec.target, "bash -s");
            let out = capture(&argv, Some(&script), &h.spec.target, "preflight")?;
            let f = Facts::parse(&out);
            let line = f.line(&h.spec);
            crate::log(&line);
            text.push_str(&format!("  {line}\n"));
            if let Some(p) = f.problem(arch) {
                bail!(
                    "host {} ({}) cannot be used: {p}",
                    h.spec.target,
                    h.spec.role
                );
            }
            if let Some(why) = f.lacks(&h.spec, needs) {
                bail!("{why}");
            }
            h.facts = Some(f);
        }
        Ok(text)
    }

    /// The run directory of every host, server first ("" where none was made).
    pub fn dirs(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|h| h.dir.clone().unwrap_or_default())
            .collect()
    }

    /// Every host with its facts, server first (after [`Hosts::preflight`]).
    pub fn specs_and_facts(&self) -> Vec<(&HostSpec, &Facts)> {
        self.hosts
            .iter()
            .filter_map(|h| Some((&h.spec, h.facts.as_ref()?)))
            .collect()
    }

    /// The facts of every host, server first (after [`Hosts::preflight`]).
    pub fn facts(&self) -> Vec<&Facts> {
        self.hosts.iter().filter_map(|h| h.facts.as_ref()).collect()
    }

    /// Sets up every host in order (see the module's text). `entries`: the run's
    /// settings (empty: no tuning). Returns the sysctl tables the hosts printed.
    pub fn setup(
        &mut self,
        root: &Path,
        bins: (&Path, &Path),
        entries: &[(String, String)],
    ) -> Result<String> {
        let mut tables = String::new();
        for i in 0..self.hosts.len() {
            crate::interrupt::check()?;
            tables.push_str(&self.setup_one(i, root, bins, entries)?);
        }
        Ok(tables)
    }

    fn setup_one(
        &mut self,
        i: usize,
        root: &Path,
        bins: (&Path, &Path),
        entries: &[(String, String)],
    ) -> Result<String> {
        let ssh = self.plan.ssh.clone();
        let h = &mut self.hosts[i];
        let target = h.spec.target.clone();
        let out = capture(&ssh.shell(&target, MKTEMP), None, &target, "mktemp -d")?;
        let dir = out.trim().to_owned();
        if !dir.starts_with('/') || dir.chars().any(|c| c.is_whitespace() || c == '\'') {
            bail!("host {target}: mktemp -d gave '{dir}', not a plain absolute path");
        }
        h.dir = Some(dir.clone());
        crate::log(format!(
            "host {target} ({}): private directory {dir}",
            h.spec.role
        ));
        ship(&ssh, &self.tmp, i, &h.spec, &dir, root, bins)?;
        // The watchdog before any change.
        let e = HostsPlan::role_entries(&h.spec, entries);
        let tune = !e.is_empty() && h.facts.as_ref().is_some_and(Facts::can_tune);
        let e = if tune { e } else { Vec::new() };
        let argv = ssh.in_dir(
            &target,
            &dir,
            &watchdog_words(&h.spec, h.facts.as_ref(), &e),
        );
        let log = self.tmp.join(format!("host-{i}-watchdog.log"));
        let err = self.tmp.join(format!("host-{i}-watchdog.err"));
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(crate::safe_fs::create(&log)?)
            .stderr(crate::safe_fs::create(&err)?)
            // A Ctrl-C on the terminal must not end it before the teardown does.
            .process_group(0);
        let mut child = c.spawn().context("cannot start ssh")?;
        let stdin = child.stdin.take();
        let ready = wait_ready(&mut child, &log, &err, &target);
        h.watchdog = Some((child, stdin));
        ready?;
        if !tune {
            if !entries.is_empty() {
                crate::warn(format!(
                    "host {target}: not root and no sudo -n: its sysctls stay as they are"
                ));
            }
            return Ok(String::new());
        }
        let state = capture(
            &ssh.in_dir(&target, &dir, &{
                let mut w = sudo(h.facts.as_ref());
                w.extend(["./c1m-host.sh".into(), "state".into(), h.spec.token.clone()]);
                w
            }),
            None,
            &target,
            "the sysctl state path",
        )?;
        h.state = Some(state.trim().to_owned());
        crate::log(format!(
            "host {target}: sysctl originals saved in {} (if this run dies and the host keeps them, restore there with sysctl-restore.sh --state {} --key KEY...)",
            state.trim(),
            state.trim()
        ));
        let argv = ssh.in_dir(&target, &dir, &apply_words(&h.spec, h.facts.as_ref(), &e));
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .output()?;
        h.applied = e
            .iter()
            .map(|(k, v)| format!("{}={v}", k.trim_start_matches('-')))
            .collect();
        let table = format!(
            "host {target} ({}):\n{}",
            h.spec.role,
            String::from_utf8_lossy(&out.stderr)
        );
        crate::say!("{table}");
        if out.status.code() == Some(SSH_FAILED) {
            bail!("host {target}: lost the ssh connection while applying sysctls");
        }
        if matches!(out.status.code(), Some(crate::sysctl::APPLY_REFUSED | 2)) {
            bail!("host {target}: sysctl-apply.sh refused the settings (see above), nothing was changed there; fix them and run again");
        }
        if !out.status.success() {
            crate::warn(format!(
                "host {target}: some sysctls could not be applied (see the table); running anyway"
            ));
        }
        Ok(table)
    }

    /// Closes every watchdog, last host first, and waits for each: it stops what runs
    /// there, restores the sysctls and removes the directory. Errors name the hosts.
    pub fn teardown(&mut self) -> Result<()> {
        let mut bad = Vec::new();
        for (i, h) in self.hosts.iter_mut().enumerate().rev() {
            let Some((mut child, stdin)) = h.watchdog.take() else {
                continue;
            };
            let early = child.try_wait().ok().flatten();
            drop(stdin);
            let deadline = Instant::now() + WATCHDOG_WAIT;
            let status = loop {
                match child.try_wait() {
                    Ok(Some(s)) => break Some(s),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                }
            };
            let log = fs::read_to_string(self.tmp.join(format!("host-{i}-watchdog.log")))
                .unwrap_or_default()
                + &fs::read_to_string(self.tmp.join(format!("host-{i}-watchdog.err")))
                    .unwrap_or_default();
            let t = &h.spec.target;
            for l in log.lines() {
                crate::sayln!("  [{t}] {l}");
            }
            let ok = early.is_none() && status.is_some_and(|s| s.success());
            if let (false, Some(d)) = (ok, &h.dir) {
                // The watchdog did not get to it: remove the directory if the host answers.
                let rm = self
                    .plan
                    .ssh
                    .words(&h.spec.target, &["rm", "-rf", "--", d.as_str()]);
                let _ = capture(&rm, None, &h.spec.target, "removing the run directory");
            }
            h.cleaned = Some(ok);
            if !ok {
                let why = match (early, status) {
                    (Some(s), _) if s.code() == Some(SSH_FAILED) => "its ssh connection was lost during the run; its watchdog restores and cleans up there on its own once it notices".to_owned(),
                    (Some(s), _) => format!("its watchdog ended early ({s})"),
                    (None, None) => "its watchdog did not finish within 60 s".into(),
                    (None, Some(s)) => format!("its restore or cleanup failed ({s}; see above)"),
                };
                let hand = match &h.state {
                    Some(st) => format!("; check it: ssh {t} ls {} {st} (if the state file is left, run scripts/sysctl-restore.sh --state {st} --key KEY... there as root)", h.dir.as_deref().unwrap_or("?")),
                    None => String::new(),
                };
                bad.push(format!("host {t} ({}): {why}{hand}", h.spec.role));
            } else {
                crate::log(format!(
                    "host {t}: programs stopped, sysctls restored, {} removed",
                    h.dir.as_deref().unwrap_or("?")
                ));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            bail!("{}", bad.join("\n"))
        }
    }

    /// The hosts part of topology.json.
    pub fn describe(&self) -> Value {
        Value::Array(
            self.hosts
                .iter()
                .map(|h| {
                    let f = h.facts.clone().unwrap_or_default();
                    json!({
                        "host": h.spec.target,
                        "role": h.spec.role,
                        "address": h.spec.addr.to_string(),
                        "source_addresses": super::super::placement::addresses_text(&h.spec.sources),
                        "hostname": f.get("hostname"),
                        "kernel": f.get("kernel"),
                        "arch": f.get("arch"),
                        "cpus": f.get("cpus"),
                        "mem_available_kb": f.mem_kb(),
                        "rlimit_nofile": format!("{}/{}", f.get("nofile_soft"), f.get("nofile_hard")),
                        "io_uring_disabled": f.get("io_uring_disabled"),
                        "root": f.root(),
                        "remote_dir": h.dir,
                        "sysctls_applied": h.applied,
                        "sysctl_state_file": h.state,
                    })
                })
                .collect(),
        )
    }

    /// One line per host for run.md.
    pub fn md_lines(&self) -> String {
        let mut t = String::new();
        for h in &self.hosts {
            let f = h.facts.clone().unwrap_or_default();
            let _ = writeln!(
                t,
                "- host {} ({}, {}): {} kernel {}, CPUs {}; sysctls: {}",
                h.spec.target,
                h.spec.role,
                h.spec.addr,
                f.get("hostname"),
                f.get("kernel"),
                f.get("cpus"),
                if h.applied.is_empty() {
                    "none".into()
                } else {
                    h.applied.join(", ")
                }
            );
        }
        t
    }
}

use std::fmt::Write as _;

/// Copies the kit's files and the host's binary into `dir` there (one tar over ssh) and
/// runs the binary's `--version` there.
fn ship(
    ssh: &Ssh,
    tmp: &Path,
    i: usize,
    spec: &HostSpec,
    dir: &str,
    root: &Path,
    bins: (&Path, &Path),
) -> Result<()> {
    let target = &spec.target;
    // The shipment: a tar of the kit's files and the host's binary.
    let stage = tmp.join(format!("ship-{i}"));
    let bin = if spec.is_server() { bins.0 } else { bins.1 };
    for f in KIT_FILES {
        // The helper at the top of the directory, the rest as in the repository.
        let to = stage.join(
            f.strip_prefix("scripts/c1m-host")
                .map_or(f, |_| "c1m-host.sh"),
        );
        fs::create_dir_all(to.parent().context("a kit file has a parent")?)?;
        fs::copy(root.join(f), &to).with_context(|| format!("cannot copy {f}"))?;
    }
    fs::copy(bin, stage.join(spec.program()))
        .with_context(|| format!("cannot copy {}", bin.display()))?;
    let tar = tmp.join(format!("ship-{i}.tar"));
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&stage)
        .arg(".")
        .status()
        .context("cannot run tar")?;
    if !st.success() {
        bail!("tar of {} failed", stage.display());
    }
    let _ = fs::remove_dir_all(&stage);
    capture(
        &ssh.words(target, &["tar", "-x", "-C", dir, "-f", "-"]),
        Some(&tar),
        target,
        "copying the binaries",
    )?;
    let v = capture(
        &ssh.in_dir(
            target,
            dir,
            &[format!("./{}", spec.program()), "--version".into()],
        ),
        None,
        target,
        "checking the binary",
    )?;
    crate::log(format!("host {target}: {} runs there", v.trim()));
    Ok(())
}
