//! Building a [`NetnsPlan`] as root, and taking it down again on every exit path:
//! [`Netns::teardown`], drop, a failed setup, and [`teardown_recorded`] after a SIGKILL.

use super::{kit_namespace_suffix, NetnsPlan, Step, BRIDGE_DEVICE};
use anyhow::{anyhow, bail, Context as _, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";
/// No `ip` or `ethtool` call takes this long unless something is badly wrong.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const RECORD_HEADER: &str =
    "# c1m netns record: namespaces of one topology, deleted by teardown_recorded";

/// The argv prefix that runs a program inside namespace `ns` (`ip netns exec NS`).
/// `ip netns exec` execs the program, so the child's pid is the program's.
pub fn exec_prefix(ns: &str) -> Vec<String> {
    ["ip", "netns", "exec", ns].map(String::from).to_vec()
}

/// What the kernel reports for one device after setup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceState {
    pub namespace: String,
    pub device: String,
    pub mtu: u32,
    pub up: bool,
    /// IPv4 addresses on the device.
    pub ipv4_addresses: usize,
    /// `None` when `ethtool` is not installed (the only way to read offloads).
    pub gro: Option<bool>,
    pub tso: Option<bool>,
}

/// Every device of a topology as read back from the kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReadBack {
    pub devices: Vec<DeviceState>,
}

/// A built topology. Dropping it tears it down; so does [`Netns::teardown`], which
/// reports what went wrong. It kills nothing: stop the processes started inside the
/// namespaces first (`ip netns del` only removes the name of a namespace that still
/// has processes; the namespace and its devices live on until they exit).
#[derive(Debug)]
pub struct Netns {
    plan: NetnsPlan,
    record: PathBuf,
    /// Namespaces this guard created and has not deleted yet, in creation order.
    created: Vec<String>,
}

impl Netns {
    /// Builds `plan`. Before creating anything it writes the namespace names to
    /// `record` (a file in the caller's private run directory; it must not exist yet),
    /// so that [`teardown_recorded`] can clean up if this process is killed. A failure
    /// halfway tears down what was made.
    pub fn create(plan: NetnsPlan, record: &Path) -> Result<Netns> {
        preflight(&plan)?;
        write_record(record, &plan)?;
        let mut me = Netns {
            plan,
            record: record.to_owned(),
            created: Vec::new(),
        };
        if let Err(e) = me.build() {
            return Err(match me.teardown() {
                Ok(()) => e.context("building the netns topology failed (torn down again)"),
                Err(t) => e.context(format!(
                    "building the netns topology failed, and tearing it down failed too: {t:#}"
                )),
            });
        }
        Ok(me)
    }

    fn build(&mut self) -> Result<()> {
        for step in self.plan.setup_commands() {
            run_step(&step)?;
            if let Some(ns) = step.creates_namespace() {
                self.created.push(ns.to_owned());
            }
        }
        self.check_offloads()
    }

    /// `ethtool -K` may exit 0 without changing a fixed feature: compare with the kernel.
    fn check_offloads(&self) -> Result<()> {
        let link = self.plan.link();
        if !link.needs_ethtool() {
            return Ok(());
        }
        let veths = self.plan.veth_devices();
        let read_back = self.read_back()?;
        let set = read_back
            .devices
            .iter()
            .filter(|d| veths.contains(&(d.namespace.as_str(), d.device.as_str())));
        for d in set {
            for (name, want, got) in [("gro", link.gro, d.gro), ("tso", link.tso, d.tso)] {
                if want.is_some() && want != got {
                    bail!(
                        "{name} on {} in {} is {:?} after `ethtool -K`, not {:?}: this \
                         kernel or driver cannot change it; run without that option",
                        d.device,
                        d.namespace,
                        got,
                        want
                    );
                }
            }
        }
        Ok(())
    }

    pub fn plan(&self) -> &NetnsPlan {
        &self.plan
    }

    /// The record file written by [`Netns::create`].
    pub fn record(&self) -> &Path {
        &self.record
    }

    /// MTU, state, addresses and offloads of every device, as the kernel reports them.
    pub fn read_back(&self) -> Result<ReadBack> {
        let ethtool = crate::tools::find_program("ethtool").is_some();
        let mut devices = Vec::new();
        let mut wanted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (ns, dev) in self.plan.veth_devices() {
            wanted.entry(ns).or_default().push(dev);
        }
        if let Some(br) = self.plan.bridge_ns() {
            wanted.entry(br).or_default().push(BRIDGE_DEVICE);
        }
        for (ns, devs) in wanted {
            let links = ip_json(&["-n", ns, "link", "show"])?;
            let addrs = ip_json(&["-n", ns, "-4", "address", "show"])?;
            for dev in devs {
                let link = find_ifname(&links, dev)
                    .ok_or_else(|| anyhow!("device {dev} is missing in namespace {ns}"))?;
                let (gro, tso) = if ethtool {
                    read_offloads(ns, dev)?
                } else {
                    (None, None)
                };
                devices.push(DeviceState {
                    namespace: ns.to_owned(),
                    device: dev.to_owned(),
                    mtu: link["mtu"].as_u64().unwrap_or(0) as u32,
                    up: link["flags"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|x| x == "UP")),
                    ipv4_addresses: find_ifname(&addrs, dev)
                        .and_then(|a| a["addr_info"].as_array().map(Vec::len))
                        .unwrap_or(0),
                    gro,
                    tso,
                });
            }
        }
        Ok(ReadBack { devices })
    }

    /// [`NetnsPlan::describe`] with the settings read back from the kernel.
    pub fn describe(&self) -> Result<serde_json::Value> {
        Ok(self.plan.describe(Some(&self.read_back()?)))
    }

    /// Deletes every namespace this guard created (clients first) and then the record
    /// file. An error names what is left: a namespace that could not be deleted, or
    /// processes still inside one (the namespace lives on, without a name, until they
    /// exit). Safe to call again; drop calls it if it was not called.
    pub fn teardown(&mut self) -> Result<()> {
        let mut problems = Vec::new();
        let mut left = Vec::new();
        while let Some(ns) = self.created.pop() {
            let pids = namespace_pids(&ns);
            if !pids.is_empty() {
                problems.push(format!(
                    "processes {pids:?} are still inside {ns}: it lives on without its name \
                     until they exit (stop them before the teardown)"
                ));
            }
            if let Err(e) = delete_namespace(&ns) {
                problems.push(format!("{e:#}"));
                left.push(ns);
            }
        }
        left.reverse();
        self.created = left;
        if self.created.is_empty() {
            remove_record(&self.record)?;
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("netns teardown: {}", problems.join("; ")))
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            crate::sayln!("c1m: warning: {e:#}");
        }
    }
}

/// Deletes every namespace listed in a record file written by [`Netns::create`] that
/// still exists, then the file. For a watchdog after the owner was killed. The file is
/// not trusted blindly: it must be a regular file owned by this user and writable by no
/// one else, and every line must be a name of this kit's shape (`c1m-srv-X`, `c1m-br-X`,
/// `c1m-cliN-X`, one suffix X for all); otherwise nothing is deleted. A missing file
/// means nothing to do.
pub fn teardown_recorded(record: &Path) -> Result<()> {
    let Some(names) = read_record(record)? else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for ns in names.iter().rev() {
        if !namespace_exists(ns) {
            continue;
        }
        match delete_namespace(ns) {
            Ok(()) => crate::sayln!("c1m: deleted network namespace {ns} left by a killed run"),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "cleaning up after {}: {}",
            record.display(),
            problems.join("; ")
        );
    }
    remove_record(record)
}

/// The record of run `pid` in the kit's private state folder `state_dir`: there, and
/// not in a temporary folder, so that the next run finds it when a whole session was
/// killed (watchdog included).
pub fn record_path(state_dir: &Path, pid: u32) -> PathBuf {
    state_dir.join(format!("netns-{pid}.record"))
}

/// True for a file name [`record_path`] (or [`write_record`]'s temporary file) makes.
fn is_record_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("netns-") else {
        return false;
    };
    let pid = rest
        .strip_suffix(".record")
        .or_else(|| rest.strip_suffix(".tmp"));
    pid.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// At the start of a run, holding the kit's lock (so no other run and no watchdog is
/// at work): every netns record left in `state_dir` is a dead run's. Deletes the
/// namespaces each one names (only names of the kit's shape, see
/// [`teardown_recorded`]) and the record. Returns what it did or could not do, one
/// line each, to be printed.
pub fn clean_stale_records(state_dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(state_dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_record_name(n))
        .collect();
    names.sort();
    let mut said = Vec::new();
    for name in names {
        let path = state_dir.join(&name);
        if name.ends_with(".tmp") {
            // Written before any namespace was made: nothing to delete but the file.
            let _ = fs::remove_file(&path);
            continue;
        }
        let listed = read_record(&path).ok().flatten().unwrap_or_default();
        let live: Vec<&String> = listed.iter().filter(|n| namespace_exists(n)).collect();
        match teardown_recorded(&path) {
            Ok(()) if live.is_empty() => said.push(format!(
                "removed {} of a run that was killed (its namespaces were gone)",
                path.display()
            )),
            Ok(()) => {
                said.push(format!(
                "deleted network namespaces {} left by a run that was killed, and its record {}",
                live.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
                path.display()
            ))
            }
            Err(e) => said.push(format!("a killed run's record: {e:#}")),
        }
    }
    said
}

/// The names in a record file, checked; `None` if there is no file.
fn read_record(record: &Path) -> Result<Option<Vec<String>>> {
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(record)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", record.display())),
    };
    let meta = file.metadata()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_file() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        bail!(
            "{} is not a regular file owned by uid {me} and writable only by it: not \
             trusting it; remove it by hand after checking `ip netns list`",
            record.display()
        );
    }
    let mut text = String::new();
    file.take(1 << 20).read_to_string(&mut text)?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let mut suffix = None;
    for name in &names {
        let Some(s) = kit_namespace_suffix(name) else {
            bail!(
                "{}: {name:?} is not a c1m namespace name; deleting nothing",
                record.display()
            );
        };
        if *suffix.get_or_insert(s) != s {
            bail!(
                "{}: names with different suffixes; deleting nothing",
                record.display()
            );
        }
    }
    Ok(Some(names))
}

/// Writes the plan's namespace names to `record` (mode 0600, replaced atomically, so a
/// crash never leaves half a file). Refuses an existing record: its namespaces may
/// still exist.
fn write_record(record: &Path, plan: &NetnsPlan) -> Result<()> {
    if fs::symlink_metadata(record).is_ok() {
        bail!(
            "the netns record {} exists: a topology recorded there may still exist; run \
             teardown_recorded on it first",
            record.display()
        );
    }
    let mut text = format!("{RECORD_HEADER}\n");
    for ns in plan.namespaces() {
        text.push_str(ns);
        text.push('\n');
    }
    let tmp = record.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, record).with_context(|| format!("writing {}", record.display()))
}

fn remove_record(record: &Path) -> Result<()> {
    match fs::remove_file(record) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", record.display()))
        }
        _ => Ok(()),
    }
}

/// Root, `ip netns`, `ethtool` if asked for, and no name taken already.
fn preflight(plan: &NetnsPlan) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the netns topology needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): run as root");
    }
    run_argv(&["ip", "netns", "list"], None)
        .context("`ip netns` does not work here (iproute2 missing or too old?)")?;
    if plan.link().needs_ethtool() && crate::tools::find_program("ethtool").is_none() {
        bail!(
            "gro/tso settings need `ethtool -K` and ethtool is not installed (iproute2's \
             `ip link set` cannot switch them): install it (apt-get install ethtool) or \
             leave gro/tso at the kernel's default"
        );
    }
    if let Some(ns) = plan
        .namespaces()
        .into_iter()
        .find(|ns| namespace_exists(ns))
    {
        bail!("network namespace {ns} exists already: choose another suffix");
    }
    Ok(())
}

pub(super) fn namespace_exists(ns: &str) -> bool {
    fs::symlink_metadata(Path::new(NETNS_DIR).join(ns)).is_ok()
}

fn delete_namespace(ns: &str) -> Result<()> {
    match run_argv(&["ip", "netns", "del", ns], None) {
        Ok(_) => Ok(()),
        Err(_) if !namespace_exists(ns) => Ok(()),
        Err(e) => Err(e.context(format!("deleting network namespace {ns}"))),
    }
}

/// Pids of processes inside `ns` (empty if none or unknown).
fn namespace_pids(ns: &str) -> Vec<u32> {
    run_argv(&["ip", "netns", "pids", ns], None)
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn ip_json(args: &[&str]) -> Result<serde_json::Value> {
    let mut argv = vec!["ip", "-j"];
    argv.extend_from_slice(args);
    let out = run_argv(&argv, None)?;
    serde_json::from_str(&out).with_context(|| format!("parsing the JSON of `{}`", argv.join(" ")))
}

fn find_ifname<'a>(list: &'a serde_json::Value, dev: &str) -> Option<&'a serde_json::Value> {
    list.as_array()?.iter().find(|l| l["ifname"] == dev)
}

/// (gro, tso) from `ethtool -k DEV` inside `ns`.
fn read_offloads(ns: &str, dev: &str) -> Result<(Option<bool>, Option<bool>)> {
    let mut argv = exec_prefix(ns);
    argv.extend(["ethtool", "-k", dev].map(String::from));
    let out = run_argv(&argv, None)?;
    let feature = |name: &str| {
        out.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().starts_with("on"))
        })
    };
    Ok((
        feature("generic-receive-offload"),
        feature("tcp-segmentation-offload"),
    ))
}

fn run_step(step: &Step) -> Result<()> {
    run_argv(&step.argv, step.stdin.as_deref()).map(drop)
}

/// Runs argv with a bounded wait; its stdout, or an error with its stderr.
pub(super) fn run_argv<S: AsRef<str>>(argv: &[S], stdin: Option<&str>) -> Result<String> {
    let argv: Vec<&str> = argv.iter().map(AsRef::as_ref).collect();
    let shown = argv.join(" ");
    let (program, args) = argv.split_first().ok_or_else(|| anyhow!("empty command"))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{shown}`"))?;
    // Drain the output first: a child may write before it has read all its input.
    let readers = [
        child.stdout.take().map(drain),
        child.stderr.take().map(drain),
    ];
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .with_context(|| format!("writing the input of `{shown}`"))?;
    }
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let [out, err] = readers.map(|r| r.and_then(|h| h.join().ok()).unwrap_or_default());
    match status {
        None => bail!("`{shown}` did not finish in {COMMAND_TIMEOUT:?}"),
        Some(s) if !s.success() => bail!("`{shown}` failed ({s}): {}", err.trim()),
        Some(_) => Ok(out),
    }
}

fn drain<R: std::io::Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
