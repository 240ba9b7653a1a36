//! `--link` for real: a server and a client namespace joined by one veth (the netns
//! topology's guard builds them, with a random suffix and 198.18.0.0/15 addresses), the
//! client's end shaped with netem, read back, and the round trip measured with a short
//! TCP exchange. Root only, and the shaping half needs a kernel with netem: each test
//! prints why it skips what it cannot do. Every wait is bounded; the namespaces are
//! deleted on every exit path (the guard's drop) and checked gone with `ip netns list`.

use c1m_bench::topology::netns::link::{self, LinkSpec};
use c1m_bench::topology::netns::{
    in_netns, random_suffix, LinkOptions, Netns, NetnsPlan, SERVER_ADDR,
};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// Why nothing here can run, if it cannot.
fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces and tc need CAP_NET_ADMIN)".into());
    }
    for (argv, what) in [
        (&["ip", "netns", "list"][..], "`ip netns`"),
        (&["tc", "-V"][..], "tc (iproute2)"),
    ] {
        match Command::new(argv[0]).args(&argv[1..]).output() {
            Ok(o) if o.status.success() => {}
            _ => return Some(format!("{what} is not available")),
        }
    }
    None
}

/// A fresh private folder for the topology's record, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The namespaces `ip netns list` shows with this suffix.
fn left_with(suffix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.ends_with(&format!("-{suffix}")))
        .map(str::to_owned)
        .collect()
}

/// Round trips of one byte over a fresh TCP connection from `client_ns` to a listener
/// in `server_ns`: the connect (SYN to SYN-ACK) first, then `n` echoes.
fn round_trips(server_ns: &str, client_ns: &str, n: usize) -> Vec<Duration> {
    let listener = in_netns(server_ns, || TcpListener::bind((SERVER_ADDR, 0)))
        .expect("joining the server namespace")
        .expect("listening on the server address");
    let addr: SocketAddr = listener.local_addr().expect("local address");
    listener.set_nonblocking(true).expect("nonblocking");
    let echo = std::thread::spawn(move || {
        let deadline = Instant::now() + WAIT;
        let mut conn = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("no connection within {WAIT:?}: {e}"),
            }
        };
        conn.set_nonblocking(false).expect("blocking");
        conn.set_read_timeout(Some(WAIT)).expect("timeout");
        conn.set_nodelay(true).expect("nodelay");
        let mut b = [0u8; 1];
        while matches!(conn.read(&mut b), Ok(1)) {
            conn.write_all(&b).expect("echo");
        }
    });
    let started = Instant::now();
    let mut conn = in_netns(client_ns, || TcpStream::connect_timeout(&addr, WAIT))
        .expect("joining the client namespace")
        .expect("connecting across the veth");
    let mut rtts = vec![started.elapsed()];
    conn.set_read_timeout(Some(WAIT)).expect("timeout");
    conn.set_nodelay(true).expect("nodelay");
    for i in 0..n {
        let t = Instant::now();
        conn.write_all(&[i as u8]).expect("send");
        let mut b = [0u8; 1];
        conn.read_exact(&mut b).expect("echo back");
        assert_eq!(b[0], i as u8);
        rtts.push(t.elapsed());
    }
    drop(conn);
    echo.join().expect("the echo thread");
    rtts
}

#[test]
fn a_link_is_applied_read_back_and_felt_and_nothing_is_left() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let suffix = random_suffix().expect("reading /dev/urandom");
    let scratch = Scratch(std::env::temp_dir().join(format!("c1m-link-test-{suffix}")));
    c1m_bench::safe_fs::create_dir_new(&scratch.0).expect("a private folder");
    let plan = NetnsPlan::new(1, 1, LinkOptions::default(), &suffix).expect("a plan");
    let mut netns = Netns::create(plan, &scratch.0.join("netns.record")).expect("the topology");
    let (cli, dev) = link::client_side(netns.plan())[0];
    let (cli, dev) = (cli.to_owned(), dev.to_owned());
    let srv = netns.plan().server_ns().to_owned();
    let before = link::read_back(&cli, &dev).expect("the bare veth's qdisc");
    assert_eq!(before.kind, "noqueue", "{before:?}");
    let bare = round_trips(&srv, &cli, 3);
    eprintln!("bare veth: connect and 3 echoes took {bare:?}");

    let full = LinkSpec::parse("delay=50ms,jitter=5ms,loss=0.5%,rate=1gbit").expect("spec");
    match link::apply(&cli, &dev, &full) {
        Err(e) => {
            let text = format!("{e:#}");
            assert!(text.contains("this kernel has no netem qdisc"), "{text}");
            let after = link::read_back(&cli, &dev).expect("read back");
            assert_eq!(after, before, "a refused link changes nothing");
            eprintln!("skipping the shaping half: {text}");
        }
        Ok(applied) => {
            let netem = applied.kernel.netem.as_ref().expect("netem read back");
            assert_eq!(netem.rate_bytes_per_s, Some(125_000_000), "{netem:?}");
            assert!((netem.delay_s - 0.05).abs() < 1e-6, "{netem:?}");
            assert_eq!(applied.describe()["kernel"]["kind"], "netem");
            // The next spec replaces this one whole: no rate is left over.
            let delay = LinkSpec::parse("delay=20ms").expect("spec");
            let applied = link::apply(&cli, &dev, &delay).expect("a second spec");
            assert_eq!(applied.commands.len(), 2, "{:?}", applied.commands);
            let netem = applied.kernel.netem.as_ref().expect("netem read back");
            assert_eq!(netem.rate_bytes_per_s, None, "{netem:?}");
            // The server's side stays bare: delay= is the round trip.
            assert_eq!(
                link::read_back(&srv, &dev).expect("server side").kind,
                "noqueue"
            );
            let rtts = round_trips(&srv, &cli, 5);
            eprintln!("delay=20ms: connect and 5 echoes took {rtts:?}");
            let floor = Duration::from_micros(delay.delay_us);
            assert!(rtts.iter().all(|r| *r >= floor), "{rtts:?} < {floor:?}");
        }
    }
    netns.teardown().expect("teardown");
    assert_eq!(left_with(&suffix), Vec::<String>::new());
}
