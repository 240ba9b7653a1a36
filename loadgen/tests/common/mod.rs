//! Helpers for the loadgen's integration tests: start `c1m-server` (or an echo server
//! written here) on a free port, run `c1m-loadgen` with a bound, and stop every process
//! whatever happens.
#![allow(dead_code)]

use c1m_loadgen::report::{read_run_dir, RunRecord};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// How long a server may take to print "listening on".
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest a loadgen run in a test may take before it is killed and the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// One test per server backend: `backend_tests!(name, ...)` turns each
/// `fn name(backend: &str)` into a module `name` with `#[test] fn epoll` and
/// `#[test] fn uring`, so `cargo test epoll` runs one backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn epoll() {
                super::$name("epoll")
            }
            #[test]
            fn uring() {
                super::$name("uring")
            }
        }
    )*};
}

static TURNS: RwLock<()> = RwLock::new(());

/// The machine has two cores shared with others: a test that opens thousands of
/// connections runs alone ...
pub fn heavy() -> RwLockWriteGuard<'static, ()> {
    TURNS.write().unwrap_or_else(|p| p.into_inner())
}

/// ... while small ones share the machine with each other.
pub fn light() -> RwLockReadGuard<'static, ()> {
    TURNS.read().unwrap_or_else(|p| p.into_inner())
}

/// `target/<profile>/`, where cargo put `c1m-loadgen` for this test run.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_c1m-loadgen"))
        .parent()
        .expect("binary has a folder")
        .to_path_buf()
}

pub fn loadgen_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_c1m-loadgen"))
}

/// `target/<profile>/c1m-server`, built with the same profile if it is not there yet
/// (`cargo test -p c1m-loadgen` does not build other packages' binaries).
pub fn server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = bin_dir();
        let bin = dir.join("c1m-server");
        if !bin.exists() {
            let profile = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("debug")
                .to_string();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "c1m-server"]);
            match profile.as_str() {
                "debug" => {}
                "release" => {
                    cmd.arg("--release");
                }
                other => {
                    cmd.args(["--profile", other]);
                }
            }
            let status = cmd
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("running cargo build -p c1m-server");
            assert!(status.success(), "cargo build -p c1m-server failed");
        }
        assert!(
            bin.exists(),
            "{} is missing after building it",
            bin.display()
        );
        bin
    })
    .clone()
}

/// Makes the child die with the test thread's process if the test binary is killed.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: runs in the forked child before exec; prctl is async-signal-safe and
    // touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `sig` to a child that has not been reaped.
pub fn signal(child: &mut Child, sig: i32) {
    if matches!(child.try_wait(), Ok(None)) {
        // SAFETY: the child is not reaped yet, so its pid still names it.
        unsafe {
            libc::kill(child.id() as libc::pid_t, sig);
        }
    }
}

/// Waits up to `limit` for the child; kills it after that.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `c1m-server` child on a free loopback port; SIGTERM (then SIGKILL) on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(backend: &str, extra: &[&str]) -> Server {
        Self::start_limited(backend, extra, None)
    }

    /// [`Server::start`] with RLIMIT_NOFILE lowered to `nofile` (soft and hard).
    pub fn start_limited(backend: &str, extra: &[&str], nofile: Option<u64>) -> Server {
        let mut cmd = Command::new(server_bin());
        cmd.args([
            "--backend",
            backend,
            "--listen",
            "127.0.0.1:0",
            "--cpus",
            "0",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        die_with_parent(&mut cmd);
        if let Some(n) = nofile {
            // SAFETY: runs in the forked child before exec; setrlimit is
            // async-signal-safe and touches no memory of the parent.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("starting c1m-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(a) => a.parse().expect("server printed an address"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("c1m-server --backend {backend} did not print `listening on` in {START_TIMEOUT:?}");
            }
        };
        Server { child, addr }
    }

    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// SIGKILL, as if the server crashed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        signal(&mut self.child, libc::SIGTERM);
        wait_bounded(&mut self.child, Duration::from_secs(10));
    }
}

/// What a loadgen run left behind.
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn assert_success(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "c1m-loadgen failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A running loadgen.
pub struct Loadgen {
    child: Child,
    out: mpsc::Receiver<(bool, String)>,
}

impl Loadgen {
    pub fn start(args: &[&str]) -> Loadgen {
        let mut cmd = Command::new(loadgen_bin());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("starting c1m-loadgen");
        let (tx, rx) = mpsc::channel();
        for (is_err, mut pipe) in [
            (
                false,
                Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            ),
            (
                true,
                Box::new(child.stderr.take().expect("stderr")) as Box<dyn Read + Send>,
            ),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                let _ = tx.send((is_err, text));
            });
        }
        Loadgen { child, out: rx }
    }

    pub fn signal(&mut self, sig: i32) {
        signal(&mut self.child, sig);
    }

    /// Waits (bounded) for the exit and both output streams.
    pub fn finish(mut self, limit: Duration) -> Outcome {
        let status = wait_bounded(&mut self.child, limit);
        let mut stdout = String::new();
        let mut stderr = String::new();
        for _ in 0..2 {
            if let Ok((is_err, text)) = self.out.recv_timeout(Duration::from_secs(10)) {
                if is_err {
                    stderr = text;
                } else {
                    stdout = text;
                }
            }
        }
        if status.is_none() {
            stderr.push_str(&format!("\n(test: killed after {limit:?})"));
        }
        Outcome {
            code: status.and_then(|s| s.code()),
            stdout,
            stderr,
        }
    }
}

impl Drop for Loadgen {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `c1m-loadgen` to the end (killed after [`RUN_TIMEOUT`]).
pub fn loadgen(args: &[&str]) -> Outcome {
    Loadgen::start(args).finish(RUN_TIMEOUT)
}

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "c1m-loadgen-test-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    pub fn arg(&self, p: &str) -> String {
        self.0.join(p).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads a run folder back (summary.json and the interval logs must parse) and checks
/// the files a run folder must hold.
pub fn read_run(dir: &Path) -> RunRecord {
    for f in ["summary.json", "latency.hgrm", "latency.hlog"] {
        assert!(dir.join(f).is_file(), "{} lacks {f}", dir.display());
    }
    read_run_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e:#}", dir.display()))
}

/// An echo server written here, for misbehaviour `c1m-server` does not have: every
/// connection is served by a thread running `serve`. Stops (and joins) on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(serve: fn(TcpStream)) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                        std::thread::spawn(move || serve(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        TestServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn target(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Echoes everything, but flips one bit of stream byte 100 of every connection.
pub fn corrupting_echo(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    let mut pos = 0u64;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if pos <= 100 && 100 < pos + n as u64 {
            buf[(100 - pos) as usize] ^= 0x10;
        }
        pos += n as u64;
        if s.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// Echoes until at least 100 bytes went back on a connection, then ends it with a FIN.
/// The rest is read and dropped until the client closes: closing a socket with unread
/// bytes would send a RST instead, and the client would see ECONNRESET, not EOF.
pub fn closing_echo(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    let mut echoed = 0;
    while echoed < 100 {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if s.write_all(&buf[..n]).is_err() {
            return;
        }
        echoed += n;
    }
    if s.shutdown(std::net::Shutdown::Write).is_err()
        || s.set_read_timeout(Some(Duration::from_secs(10))).is_err()
    {
        return;
    }
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            return;
        }
    }
}

/// Echoes everything correctly but in pieces of 1 to 7 bytes with TCP_NODELAY, so the
/// loadgen sees messages cut at every possible offset.
pub fn fragmenting_echo(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = [0u8; 4096];
    let mut k = 0usize;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut at = 0;
        while at < n {
            k = k.wrapping_add(1);
            let piece = (1 + k % 7).min(n - at);
            if s.write_all(&buf[at..at + piece]).is_err() {
                return;
            }
            at += piece;
        }
    }
}

/// Echoes everything, but swaps stream byte 40 of every connection with the next byte
/// that differs from it (reordered bytes).
pub fn reordering_echo(mut s: TcpStream) {
    let mut held: Vec<u8> = Vec::new();
    let mut swapped = false;
    let mut buf = [0u8; 4096];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if swapped {
            if s.write_all(&buf[..n]).is_err() {
                return;
            }
            continue;
        }
        held.extend_from_slice(&buf[..n]);
        let differing = (41..held.len()).find(|&j| held.len() > 40 && held[j] != held[40]);
        if let Some(j) = differing {
            held.swap(40, j);
            swapped = true;
            if s.write_all(&held).is_err() {
                return;
            }
            held.clear();
        } else if s.write_all(&held).is_ok() {
            held.clear();
        } else {
            return;
        }
    }
}
