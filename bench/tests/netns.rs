//! The netns topology for real: namespaces, veth, a bridge, c1m-server and c1m-loadgen
//! across them, and cleanup on every exit path. Root only: every test prints why it
//! skips when it cannot run (not root, `ip netns` unavailable). Every wait is bounded
//! and every process started is stopped; every namespace has a fresh random suffix.

use c1m_bench::topology::netns::{
    exec_prefix, random_suffix, teardown_recorded, LinkOptions, Netns, NetnsPlan, BRIDGE_DEVICE,
};
use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// Set for the child that holds a topology until the parent SIGKILLs it.
const HOLD_ENV: &str = "C1M_NETNS_TEST_HOLD_RECORD";

/// Why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces need CAP_NET_ADMIN)".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("`ip` is not available: {e}")),
    }
}

macro_rules! require_netns {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("skipping: {why}");
            return;
        }
    };
}

/// A private folder (0700), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let suffix = random_suffix().expect("reading /dev/urandom");
        let dir = std::env::temp_dir().join(format!("c1m-netns-test-{name}-{suffix}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .expect("creating a temp dir");
        TempDir(dir)
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Cleans up after a failed test that left a topology's owner killed.
struct RecordGuard(PathBuf);

impl Drop for RecordGuard {
    fn drop(&mut self) {
        if let Err(e) = teardown_recorded(&self.0) {
            eprintln!("cleanup: {e:#}");
        }
    }
}

fn plan(clients: usize, sources: usize, link: LinkOptions) -> NetnsPlan {
    let suffix = random_suffix().expect("reading /dev/urandom");
    NetnsPlan::new(clients, sources, link, &suffix).expect("a valid plan")
}

/// Namespaces whose name ends with `-suffix`.
fn namespaces_with(suffix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| ns.ends_with(&format!("-{suffix}")))
        .map(str::to_owned)
        .collect()
}

/// The root namespace's links: name, MTU and flags of each.
fn root_links() -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["-j", "link", "show"])
        .output()
        .expect("ip -j link show");
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j prints JSON");
    links
        .as_array()
        .expect("a list of links")
        .iter()
        .map(|l| format!("{} mtu {} {}", l["ifname"], l["mtu"], l["flags"]))
        .collect()
}

fn root_sysctl(key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The workspace's sysctl profile as (key, value) pairs.
fn profile() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sysctl/c1m.conf");
    let text = std::fs::read_to_string(&path).expect("reading sysctl/c1m.conf");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_owned(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect()
}

/// `target/release/`, where `c1m-server` and `c1m-loadgen` are, built if missing.
fn release_bins() -> (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        // This test is target/<profile>/deps/netns-HASH.
        let exe = std::env::current_exe().expect("the test's path");
        let target = exe
            .ancestors()
            .nth(3)
            .expect("target/<profile>/deps/<test>")
            .to_path_buf();
        let dir = target.join("release");
        let (server, loadgen) = (dir.join("c1m-server"), dir.join("c1m-loadgen"));
        if !server.exists() || !loadgen.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "--release",
                "-p",
                "c1m-server",
                "-p",
                "c1m-loadgen",
            ])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
            let mut build = Proc::spawn("cargo build", &mut cmd);
            let status = build.wait(Duration::from_secs(900));
            assert!(
                status == Some(0),
                "cargo build --release failed: {status:?}"
            );
        }
        (server, loadgen)
    })
    .clone()
}

/// A child process that dies with the test, is stopped (SIGTERM, then SIGKILL) on drop,
/// and whose stdout and stderr are collected.
struct Proc {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    stdout: Vec<String>,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: runs in the forked child before exec; prctl is async-signal-safe and
        // touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = Some(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        }));
        Proc {
            name: name.to_owned(),
            child,
            lines,
            stderr,
            stdout: Vec::new(),
        }
    }

    /// Runs `argv` inside namespace `ns`.
    fn in_ns(name: &str, ns: &str, argv: &[String]) -> Proc {
        let mut full = exec_prefix(ns);
        full.extend(argv.iter().cloned());
        let mut cmd = Command::new(&full[0]);
        cmd.args(&full[1..]);
        Proc::spawn(name, &mut cmd)
    }

    /// What follows `marker` on the first stdout line that has it, waiting at most
    /// `limit` (libtest may print `test NAME ... ` before a line of a test's own).
    fn line_after(&mut self, marker: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if let Some((_, rest)) = line.split_once(marker) {
                        return Some(rest.trim().to_owned());
                    }
                }
                Err(_) => return None,
            }
        }
    }

    fn signal(&mut self, sig: i32) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: the child is not reaped yet, so its pid still names it.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, sig);
            }
        }
    }

    /// Waits up to `limit` (then kills); the exit code, `None` if killed by a signal.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            if Instant::now() >= deadline {
                eprintln!("{} did not finish in {limit:?}: killing it", self.name);
                let _ = self.child.kill();
                break self.child.wait().expect("reaping a killed child");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.stdout.extend(self.lines.try_iter());
        status.code()
    }

    fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(10));
    }
}

/// Values no one else sets, applied inside the namespaces: if one shows up in the root
/// namespace, it leaked.
const MARKERS: [(&str, &str); 2] = [
    ("net.core.somaxconn", "65531"),
    ("net.ipv4.tcp_fin_timeout", "17"),
];

/// Splits the workspace profile in the topology, checks the split, applies the
/// per-namespace keys and the markers inside; the keys and their root values before.
fn apply_profile_inside(netns: &Netns) -> Vec<(String, String)> {
    let split = netns.split_sysctls(&profile()).expect("probing sysctls");
    let has = |list: &[(String, String)], key: &str| list.iter().any(|(k, _)| k == key);
    for key in [
        "net.core.somaxconn",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_rmem",
    ] {
        assert!(
            has(&split.per_netns, key),
            "{key} is per namespace: {split:?}"
        );
    }
    for key in [
        "net.core.netdev_max_backlog",
        "net.ipv4.tcp_mem",
        "fs.file-max",
    ] {
        assert!(has(&split.global, key), "{key} is global: {split:?}");
    }
    let mut settings = split.per_netns.clone();
    settings.extend(MARKERS.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let root_before = settings
        .iter()
        .map(|(k, _)| (k.clone(), root_sysctl(k)))
        .collect();
    let applied = netns
        .apply_sysctls(&settings)
        .expect("applying sysctls inside");
    assert_eq!(applied.len(), 3, "server and both clients: {applied:?}");
    assert!(applied.values().all(|a| a.len() == settings.len()));
    root_before
}

/// No marker reached the root namespace. Other changes are reported, not failed:
/// another run on this machine may tune the root namespace meanwhile (to the profile's
/// values, as c1m.sh does); only the markers are ours alone.
fn assert_root_sysctls_untouched(root_before: &[(String, String)]) {
    for (key, before) in root_before {
        let now = root_sysctl(key);
        if MARKERS.iter().any(|(k, v)| k == key && *v == now) {
            panic!("{key} = {now} leaked into the root namespace");
        }
        if &now != before {
            eprintln!("note: root {key} changed from {before} to {now} (not by this test)");
        }
    }
}

/// `c1m-server --backend uring` on CPU 0 inside the server namespace; its address.
fn start_server(plan: &NetnsPlan, bin: &Path, stats_json: &Path) -> (Proc, String) {
    let argv = [
        bin.display().to_string(),
        "--backend".into(),
        "uring".into(),
        "--listen".into(),
        format!("{}:0", plan.server_addr()),
        "--cpus".into(),
        "0".into(),
        "--stats-json".into(),
        stats_json.display().to_string(),
    ];
    let mut server = Proc::in_ns("c1m-server", plan.server_ns(), &argv);
    let Some(target) = server.line_after("listening on ", Duration::from_secs(20)) else {
        server.signal(libc::SIGKILL);
        panic!("c1m-server printed no `listening on`: {}", server.stderr());
    };
    (server, target)
}

/// `c1m-loadgen run` on CPU 1 inside client `i`'s namespace, from its sources.
fn start_loadgen(plan: &NetnsPlan, i: usize, bin: &Path, target: &str, conns: u32) -> Proc {
    let argv = [
        bin.display().to_string(),
        "run".into(),
        "--target".into(),
        target.to_owned(),
        "--connections".into(),
        conns.to_string(),
        "--duration".into(),
        "2".into(),
        "--source-ips".into(),
        plan.source_ips_arg(i).expect("sources"),
        "--cpus".into(),
        "1".into(),
    ];
    let ns = plan.client_ns(i).expect("client namespace");
    Proc::in_ns(&format!("c1m-loadgen {i}"), ns, &argv)
}

#[test]
fn echo_across_a_bridge_with_two_clients_and_two_sources_each() {
    require_netns!();
    let (server_bin, loadgen_bin) = release_bins();
    let dir = TempDir::new("echo");
    let links_before = root_links();
    let plan = plan(2, 2, LinkOptions::default());
    let suffix = plan.suffix().to_owned();
    let record = dir.join("netns.record");
    let mut netns = Netns::create(plan, &record).expect("building the topology");
    let recorded = std::fs::read_to_string(&record).expect("the record is written first");
    assert_eq!(namespaces_with(&suffix).len(), 4);
    for ns in namespaces_with(&suffix) {
        assert!(recorded.lines().any(|l| l == ns), "{ns} not in the record");
    }
    let root_before = apply_profile_inside(&netns);
    let describe = netns.describe().expect("reading the devices back");
    let devices = &describe["link"]["read_back"]["devices"];
    assert_eq!(
        devices.as_array().map(Vec::len),
        Some(7),
        "3 veth pairs, 1 bridge: {describe:#}"
    );
    assert!(devices
        .as_array()
        .is_some_and(|d| d.iter().all(|d| d["up"] == true)));

    let plan = netns.plan().clone();
    let (mut server, target) = start_server(&plan, &server_bin, &dir.join("server.json"));
    assert!(target.starts_with("198.18.0.1:"), "{target}");
    let mut loadgens: Vec<Proc> = (0..2)
        .map(|i| start_loadgen(&plan, i, &loadgen_bin, &target, 2000))
        .collect();
    for lg in &mut loadgens {
        let code = lg.wait(Duration::from_secs(90));
        let out = lg.stdout.join("\n");
        let err = lg.stderr();
        assert_eq!(code, Some(0), "{}: stdout {out}\nstderr {err}", lg.name);
        assert!(out.contains("(2000 established, 0 failed)"), "{out}");
        assert!(out.contains("verify errors 0;"), "{out}");
        eprintln!("{}: {out}", lg.name);
    }
    server.signal(libc::SIGTERM);
    let code = server.wait(Duration::from_secs(15));
    assert_eq!(code, Some(0), "{}", server.stderr());
    let stats = std::fs::read_to_string(dir.join("server.json")).expect("server.json");
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("server.json is JSON");
    assert_eq!(stats["accepted"], 4000, "{stats:#}");
    drop(loadgens);
    drop(server);

    netns.teardown().expect("teardown");
    let left = namespaces_with(&suffix);
    assert!(left.is_empty(), "left: {left:?}");
    assert!(!record.exists(), "the record goes with the topology");
    assert_eq!(
        root_links(),
        links_before,
        "the root namespace's links changed"
    );
    assert_root_sysctls_untouched(&root_before);
}

#[test]
fn drop_during_a_panic_tears_down() {
    require_netns!();
    let dir = TempDir::new("panic");
    let record = dir.join("netns.record");
    let plan = plan(1, 1, LinkOptions::default());
    let suffix = plan.suffix().to_owned();
    let owner = {
        let record = record.clone();
        let suffix = suffix.clone();
        std::thread::spawn(move || {
            let _netns = Netns::create(plan, &record).expect("building the topology");
            assert_eq!(namespaces_with(&suffix).len(), 2);
            panic!("the owner dies with the topology up");
        })
    };
    assert!(owner.join().is_err(), "the owner panicked");
    assert!(
        namespaces_with(&suffix).is_empty(),
        "left: {:?}",
        namespaces_with(&suffix)
    );
    assert!(!record.exists());
}

#[test]
fn teardown_names_processes_still_inside() {
    require_netns!();
    let dir = TempDir::new("inside");
    let plan = plan(1, 1, LinkOptions::default());
    let suffix = plan.suffix().to_owned();
    let mut netns = Netns::create(plan, &dir.join("netns.record")).expect("building");
    let server_ns = netns.plan().server_ns().to_owned();
    let mut sleeper = Proc::in_ns("sleep", &server_ns, &["sleep".into(), "30".into()]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids_in(&server_ns).contains(&sleeper.child.id()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = netns.teardown().expect_err("a process is still inside");
    assert!(format!("{err:#}").contains("still inside"), "{err:#}");
    assert!(
        namespaces_with(&suffix).is_empty(),
        "the names are gone all the same"
    );
    sleeper.signal(libc::SIGKILL);
    sleeper.wait(Duration::from_secs(5));
}

fn pids_in(ns: &str) -> Vec<u32> {
    let out = Command::new("ip").args(["netns", "pids", ns]).output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    })
    .unwrap_or_default()
}

/// Not a test of its own: the child of `sigkill_of_the_owner_is_cleaned_up_from_the_record`
/// (it returns at once unless that test started it).
#[test]
fn hold_topology_for_parent() {
    let Some(record) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let plan = plan(3, 2, LinkOptions::default());
    let suffix = plan.suffix().to_owned();
    let _netns = Netns::create(plan, Path::new(&record)).expect("building the topology");
    println!("HELD {suffix}");
    // The parent SIGKILLs us long before this ends.
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn sigkill_of_the_owner_is_cleaned_up_from_the_record() {
    require_netns!();
    let dir = TempDir::new("sigkill");
    let record = dir.join("netns.record");
    let _cleanup = RecordGuard(record.clone());
    let exe = std::env::current_exe().expect("the test's path");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "hold_topology_for_parent",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(HOLD_ENV, &record);
    let mut owner = Proc::spawn("topology owner", &mut cmd);
    let Some(suffix) = owner.line_after("HELD ", Duration::from_secs(60)) else {
        owner.signal(libc::SIGKILL);
        panic!("the owner never held a topology: {}", owner.stderr());
    };
    owner.signal(libc::SIGKILL);
    assert_eq!(
        owner.wait(Duration::from_secs(10)),
        None,
        "killed by SIGKILL"
    );
    assert_eq!(
        namespaces_with(&suffix).len(),
        5,
        "a SIGKILL leaves them behind"
    );
    teardown_recorded(&record).expect("cleanup from the record");
    assert!(
        namespaces_with(&suffix).is_empty(),
        "left: {:?}",
        namespaces_with(&suffix)
    );
    assert!(!record.exists());
    teardown_recorded(&record).expect("a second cleanup finds nothing to do");
}

#[test]
fn link_options_are_set_and_read_back_or_refused() {
    require_netns!();
    let dir = TempDir::new("link");
    let jumbo = LinkOptions {
        mtu: Some(9000),
        ..LinkOptions::default()
    };
    let mut netns = Netns::create(plan(2, 1, jumbo), &dir.join("mtu.record")).expect("MTU 9000");
    let rb = netns.read_back().expect("read back");
    assert_eq!(rb.devices.len(), 7, "3 veth pairs and the bridge: {rb:?}");
    assert!(rb.devices.iter().all(|d| d.mtu == 9000), "{rb:?}");
    netns.teardown().expect("teardown");

    let offloads = LinkOptions {
        mtu: None,
        gro: Some(true),
        tso: Some(false),
        shape: None,
    };
    let plan = plan(2, 1, offloads);
    let suffix = plan.suffix().to_owned();
    let record = dir.join("offload.record");
    match Netns::create(plan, &record) {
        Ok(mut netns) => {
            let rb = netns.read_back().expect("read back");
            for d in rb.devices.iter().filter(|d| d.device != BRIDGE_DEVICE) {
                assert_eq!((d.gro, d.tso), (Some(true), Some(false)), "{d:?}");
            }
            eprintln!(
                "gro on, tso off: set and read back on every veth ({} devices read)",
                rb.devices.len()
            );
            netns.teardown().expect("teardown");
        }
        Err(e) => {
            // Only without ethtool, and then before creating anything.
            assert!(format!("{e:#}").contains("ethtool"), "{e:#}");
            assert!(!record.exists());
            eprintln!("no ethtool: gro/tso refused before anything was made");
        }
    }
    assert!(namespaces_with(&suffix).is_empty());
}
