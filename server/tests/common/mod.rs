//! Helpers shared by the integration tests of the `c1m-server` binary: start it on a free
//! port and stop it whatever happens, bound every wait, make and check byte streams.
//!
//! Every test file includes this module and uses a different part of it.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a server may take to print "listening on".
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Read/write timeout of every client socket: a stuck test fails instead of hanging.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// One test per backend: `backend_tests!(name, ...)` turns each `fn name(backend: &str)`
/// into a module `name` with one `#[test]` per backend, so the tests are
/// `name::uring`, `name::epoll`, `name::tokio_uring`, `name::tokio` and `name::go`, and
/// `cargo test epoll` runs one backend. (macro_rules cannot paste `name_epoll` together
/// without a proc-macro crate; a module per test gives the same filtering.)
///
/// `go` is the Go reference server (references/go-net), which speaks the same flags; its
/// test passes with a printed reason when the Go binary is not built (scripts/test.sh
/// builds it).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn uring() {
                super::$name("uring")
            }
            #[test]
            fn epoll() {
                super::$name("epoll")
            }
            #[test]
            fn tokio_uring() {
                super::$name("tokio-uring")
            }
            #[test]
            fn tokio() {
                super::$name("tokio")
            }
            #[test]
            fn go() {
                match super::go_server_missing() {
                    Some(why) => eprintln!("skipping {}::go: {why}", stringify!($name)),
                    None => super::$name("go"),
                }
            }
        }
    )*};
}

/// [`backend_tests!`] plus the uring send-path variants: each `fn name(backend: &str,
/// flags: &[&str])` becomes a module with the tests of `backend_tests!` (no flags) and
/// `uring_coalesce` (`--coalesce-us 50`) and `uring_plain_sends` (`--plain-sends`).
#[macro_export]
macro_rules! send_path_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn uring() {
                super::$name("uring", &[])
            }
            #[test]
            fn uring_coalesce() {
                super::$name("uring", &["--coalesce-us", "50"])
            }
            #[test]
            fn uring_plain_sends() {
                super::$name("uring", &["--plain-sends"])
            }
            #[test]
            fn epoll() {
                super::$name("epoll", &[])
            }
            #[test]
            fn tokio_uring() {
                super::$name("tokio-uring", &[])
            }
            #[test]
            fn tokio() {
                super::$name("tokio", &[])
            }
            #[test]
            fn go() {
                match super::go_server_missing() {
                    Some(why) => eprintln!("skipping {}::go: {why}", stringify!($name)),
                    None => super::$name("go", &[]),
                }
            }
        }
    )*};
}

/// The Go reference server's binary, as scripts/c1m.sh and scripts/test.sh build it.
pub const GO_SERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../references/go-net/bin/c1m-go-net"
);

/// Why the `go` tests cannot run here, or None when they can.
pub fn go_server_missing() -> Option<String> {
    if std::path::Path::new(GO_SERVER).is_file() {
        return None;
    }
    let go = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("go").is_file()));
    Some(if go {
        "references/go-net/bin/c1m-go-net is not built (scripts/test.sh builds it: cd references/go-net && go build -o bin/c1m-go-net .)".into()
    } else {
        "Go is not installed (sudo scripts/setup.sh installs golang-go), so references/go-net/bin/c1m-go-net is not built".into()
    })
}

/// The binary that serves `backend`: c1m-server, or the Go reference for `go`.
fn binary_for(backend: &str) -> &'static str {
    if backend == "go" {
        GO_SERVER
    } else {
        env!("CARGO_BIN_EXE_c1m-server")
    }
}

fn server_command(backend: &str, args: &[&str], nofile: Option<u64>) -> Command {
    let mut cmd = Command::new(binary_for(backend));
    cmd.args(args).stdin(Stdio::null());
    // SAFETY: runs in the forked child before exec; prctl and setrlimit are
    // async-signal-safe and touch no memory of the parent. PDEATHSIG kills the server if
    // the thread that started it dies without running Drop (e.g. the test binary is
    // killed): no leaked servers. The lowered RLIMIT_NOFILE (soft and hard, so the server
    // cannot raise it) lets a test reach the fd limit with few connections.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(n) = nofile {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd
}

/// CPUs for a test that wants more than one loop: `0-1` where there are two CPUs.
pub fn two_cpus() -> &'static str {
    if c1m_platform::cpus::online_cpus().len() >= 2 {
        "0-1"
    } else {
        "0"
    }
}

/// Drains a pipe into a shared string (for error messages) on its own thread.
fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = sink.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    text
}

/// A running `c1m-server`; killed on drop if still alive.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub backend: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `c1m-server --backend B --listen 127.0.0.1:0 --cpus 0 EXTRA...` (EXTRA may
    /// give its own `--cpus`) and waits for "listening on ADDR:PORT".
    pub fn start(backend: &str, extra: &[&str]) -> Server {
        Self::start_limited(backend, extra, None)
    }

    /// [`Server::start`] with RLIMIT_NOFILE lowered to `nofile` (soft and hard).
    pub fn start_limited(backend: &str, extra: &[&str], nofile: Option<u64>) -> Server {
        let mut args = vec!["--backend", backend, "--listen", "127.0.0.1:0"];
        if !extra.contains(&"--cpus") {
            args.extend(["--cpus", "0"]);
        }
        args.extend_from_slice(extra);
        let mut child = server_command(backend, &args, nofile)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning c1m-server");
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                    break;
                }
            }
            // Keep draining so the server never blocks on a full stdout pipe.
            for _ in lines {}
        });
        let mut server = Server {
            child,
            addr: "0.0.0.0:0".parse().expect("placeholder address"),
            backend: backend.to_string(),
            stderr,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => {
                server.addr = addr
                    .parse()
                    .unwrap_or_else(|e| panic!("bad address {addr:?} from the server: {e}"));
                server
            }
            Err(_) => {
                let status = server.wait_exit(Duration::from_secs(3));
                panic!(
                    "c1m-server --backend {backend} did not start within {START_TIMEOUT:?} \
                     (exit: {status:?}); stderr:\n{}",
                    server.stderr()
                );
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Resident memory of the server process.
    pub fn rss(&self) -> u64 {
        c1m_platform::procfs::pid_status_bytes(self.pid(), "VmRSS")
            .expect("reading VmRSS of the server")
    }

    /// Panics (with the server's stderr) if the server has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "c1m-server --backend {} exited ({status}); stderr:\n{}",
                self.backend,
                self.stderr()
            );
        }
    }

    /// Waits up to `timeout` for the server to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }

    /// Sends SIGTERM; the exit status if it exits within `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("sending SIGTERM");
        self.wait_exit(timeout)
    }

    /// A client connection with timeouts set.
    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the server of `backend` (c1m-server, or the Go reference for `go`) with `ARGS` to
/// its exit (at most `timeout`); returns its status and stderr.
pub fn run_to_exit(backend: &str, args: &[&str], timeout: Duration) -> (ExitStatus, String) {
    let mut child = server_command(backend, args, None)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning c1m-server");
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let status = wait_child(&mut child, timeout);
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "c1m-server {args:?} still running after {timeout:?}; it should have refused the flags"
        );
    };
    // The pipe closes at exit; give the collector a moment to take the last bytes.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Arc::strong_count(&stderr) > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let text = stderr.lock().map(|s| s.clone()).unwrap_or_default();
    (status, text)
}

/// A blocking client socket with read and write timeouts and no Nagle delay.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// [`connect`] with a small receive buffer (set before the handshake, so the window is
/// small from the start): the server's sends to it back up after a few KiB.
pub fn connect_small_window(addr: SocketAddr, rcvbuf: usize) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .expect("creating a client socket");
    socket.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    let s: TcpStream = socket.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Writes `msg` and reads the same number of bytes back; they must be equal.
pub fn echo(stream: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    stream.write_all(msg)?;
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back)?;
    if back != msg {
        return Err(io::Error::other("echo differs from what was sent"));
    }
    Ok(())
}

/// True if a read error means the peer closed or reset the connection.
pub fn is_closed_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// Waits up to `timeout` for the peer to close: `Ok(())` on EOF or reset, `Err` with what
/// happened otherwise (data arrived, or nothing within the timeout).
pub fn expect_closed(stream: &mut TcpStream, timeout: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let result = stream.read(&mut buf);
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok();
    match result {
        Ok(0) => Ok(started.elapsed()),
        Ok(n) => Err(format!("got {n} bytes instead of a close")),
        Err(e) if is_closed_error(&e) => Ok(started.elapsed()),
        Err(e) => Err(format!("not closed after {:?}: {e}", started.elapsed())),
    }
}

/// Runs `f` on a new thread whose result must come within a bound.
pub struct Bounded<T> {
    name: String,
    rx: mpsc::Receiver<T>,
    handle: JoinHandle<()>,
}

pub fn spawn_bounded<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Bounded<T> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawning a test thread");
    Bounded {
        name: name.to_string(),
        rx,
        handle,
    }
}

impl<T> Bounded<T> {
    /// The thread's result; panics if it takes longer than `timeout` or panicked.
    pub fn join(self, timeout: Duration) -> T {
        match self.rx.recv_timeout(timeout) {
            Ok(v) => {
                let _ = self.handle.join();
                v
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("thread {} did not finish within {timeout:?}", self.name)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => match self.handle.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => panic!("thread {} ended without a result", self.name),
            },
        }
    }
}

/// Small deterministic PRNG (xorshift64*), for sizes and data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// A size from 1 to `max`, spread evenly over the powers of two, so tiny and huge
    /// chunks both come up often.
    pub fn size(&mut self, max: usize) -> usize {
        let bits = usize::BITS - max.leading_zeros();
        let top = 1usize << self.range(0, bits as usize - 1);
        self.range(top / 2 + 1, top).min(max)
    }
}

/// Period of [`Pattern`]: a prime, so no chunk size lines up with it and a dropped,
/// repeated or reordered chunk shows as a mismatch.
const PERIOD: usize = 1_048_573;

fn table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rng = Rng::new(0xC1);
        let mut t = Vec::with_capacity(PERIOD + 8);
        while t.len() < PERIOD {
            t.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        t.truncate(PERIOD);
        t
    })
}

/// An endless pseudo-random byte stream; the writer fills from one, the reader checks
/// against another made with the same seed, chunk boundaries need not match. Filling and
/// checking are memcpy/memcmp over a table, so a debug build moves hundreds of MB/s.
#[derive(Debug, Clone)]
pub struct Pattern {
    pos: usize,
    pub offset: u64,
}

impl Pattern {
    pub fn new(seed: u64) -> Self {
        Pattern {
            pos: (seed.wrapping_mul(7_919) % PERIOD as u64) as usize,
            offset: 0,
        }
    }

    fn segments(&mut self, len: usize, mut f: impl FnMut(usize, &[u8])) {
        let t = table();
        let mut done = 0;
        while done < len {
            let n = (len - done).min(PERIOD - self.pos);
            f(done, &t[self.pos..self.pos + n]);
            done += n;
            self.pos = (self.pos + n) % PERIOD;
        }
        self.offset += len as u64;
    }

    /// The next `out.len()` bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        self.segments(out.len(), |at, seg| {
            out[at..at + seg.len()].copy_from_slice(seg)
        });
    }

    /// Checks `got` against the next bytes; on a mismatch, the stream offset of the first
    /// wrong byte.
    pub fn check(&mut self, got: &[u8]) -> Result<(), u64> {
        let start = self.offset;
        let mut bad = None;
        self.segments(got.len(), |at, seg| {
            if bad.is_none() && got[at..at + seg.len()] != *seg {
                let i = (0..seg.len()).find(|&i| got[at + i] != seg[i]).unwrap_or(0);
                bad = Some(start + (at + i) as u64);
            }
        });
        bad.map_or(Ok(()), Err)
    }
}

/// Writes `total` bytes of `pattern` in chunks of random size (1 B to `max_chunk`).
pub fn write_pattern(
    stream: &mut TcpStream,
    mut pattern: Pattern,
    total: u64,
    max_chunk: usize,
    rng: &mut Rng,
) -> io::Result<()> {
    let mut buf = vec![0u8; max_chunk];
    let mut sent = 0u64;
    while sent < total {
        let n = (rng.size(max_chunk) as u64).min(total - sent) as usize;
        pattern.fill(&mut buf[..n]);
        stream.write_all(&buf[..n])?;
        sent += n as u64;
    }
    Ok(())
}

/// Reads `total` bytes with reads of random size and checks them against `pattern`.
/// On failure the socket is shut down both ways, so a writer on it fails at once
/// instead of blocking until its timeout.
pub fn read_pattern(
    stream: &mut TcpStream,
    pattern: Pattern,
    total: u64,
    max_read: usize,
    rng: &mut Rng,
) -> Result<(), String> {
    read_pattern_inner(stream, pattern, total, max_read, rng, false)
}

/// [`read_pattern`] that starts late and now and then sleeps a few milliseconds, so the server's sends
/// back up and its unsent-remainder and pause/resume paths run too.
pub fn read_pattern_slowly(
    stream: &mut TcpStream,
    pattern: Pattern,
    total: u64,
    max_read: usize,
    rng: &mut Rng,
) -> Result<(), String> {
    read_pattern_inner(stream, pattern, total, max_read, rng, true)
}

fn read_pattern_inner(
    stream: &mut TcpStream,
    pattern: Pattern,
    total: u64,
    max_read: usize,
    rng: &mut Rng,
    slowly: bool,
) -> Result<(), String> {
    let result = check_stream(stream, pattern, total, max_read, rng, slowly);
    if result.is_err() {
        let _ = stream.shutdown(Shutdown::Both);
    }
    result
}

fn check_stream(
    stream: &mut TcpStream,
    mut pattern: Pattern,
    total: u64,
    max_read: usize,
    rng: &mut Rng,
    slowly: bool,
) -> Result<(), String> {
    let mut buf = vec![0u8; max_read];
    let mut got = 0u64;
    if slowly {
        // Let the writer run ahead first, so the echo piles up.
        std::thread::sleep(Duration::from_millis(200));
    }
    while got < total {
        if slowly && rng.range(0, 15) == 0 {
            std::thread::sleep(Duration::from_millis(rng.range(2, 10) as u64));
        }
        let want = (rng.size(max_read) as u64).min(total - got) as usize;
        let n = match stream.read(&mut buf[..want]) {
            Ok(0) => return Err(format!("EOF after {got} of {total} bytes")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read failed after {got} of {total} bytes: {e}")),
        };
        pattern
            .check(&buf[..n])
            .map_err(|at| format!("wrong byte at stream offset {at} of {total}"))?;
        got += n as u64;
    }
    Ok(())
}

/// Half-closes the sending side.
pub fn shutdown_write(stream: &TcpStream) {
    stream
        .shutdown(Shutdown::Write)
        .expect("shutdown(Write) of a client socket");
}

/// A path under the target dir for `--stats-json`, unique to this test and backend.
pub fn stats_path(file: &str, backend: &str, test: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{file}-{test}-{backend}-{}.json",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// SIGTERM, exit 0 within 5 s, and the `--stats-json` the server wrote.
pub fn stop_and_read_stats(server: &mut Server, path: &std::path::Path) -> serde_json::Value {
    let backend = server.backend.clone();
    match server.terminate(Duration::from_secs(5)) {
        Some(status) => assert!(
            status.success(),
            "{backend}: exit {status} after SIGTERM; stderr:\n{}",
            server.stderr()
        ),
        None => panic!(
            "{backend}: still running 5 s after SIGTERM; stderr:\n{}",
            server.stderr()
        ),
    }
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{backend}: --stats-json {}: {e}", path.display()));
    let _ = std::fs::remove_file(path);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{backend}: --stats-json is not JSON ({e}):\n{text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_independent_of_chunking() {
        let mut a = Pattern::new(3);
        let mut whole = vec![0u8; 3 * PERIOD];
        a.fill(&mut whole);
        let mut b = Pattern::new(3);
        let mut rng = Rng::new(1);
        let mut at = 0;
        while at < whole.len() {
            let n = rng.size(PERIOD).min(whole.len() - at);
            assert_eq!(b.check(&whole[at..at + n]), Ok(()));
            at += n;
        }
        let mut c = Pattern::new(3);
        whole[PERIOD + 5] ^= 1;
        assert_eq!(c.check(&whole), Err(PERIOD as u64 + 5));
    }
}
