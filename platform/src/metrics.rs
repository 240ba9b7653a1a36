//! `--metrics-listen ADDR`: Prometheus text from counters the loops already keep.
//!
//! The text format is `prometheus-client`'s encoder (Prometheus text 0.0.4); the values
//! are not its metric types (which the loops would have to update) but a [`Collector`]
//! that reads the loops' own counters at scrape time. They are served by a tiny blocking
//! HTTP responder: one thread, one request at a time, `GET /metrics` only, the request
//! head read with a size bound and every read and write under a timeout, so a slow or
//! hostile scraper can hold up the next scrape but never an event loop.

pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::encoding::{prometheus_text, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// The `Content-Type` of the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Largest request head read; a longer one gets 431.
const MAX_HEAD: usize = 8192;
/// Longest a scraper may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// A bad `--metrics-listen` value or a failed bind, phrased for the person who typed it.
#[derive(Debug, thiserror::Error)]
pub enum MetricsListenError {
    #[error("--metrics-listen {value}: not an ADDR:PORT; give e.g. 127.0.0.1:9100 ([::1]:9100 for IPv6, port 0 for any free port)")]
    BadAddr { value: String },
    #[error("--metrics-listen {addr}: the address is already in use; pick another port (0 picks a free one)")]
    InUse { addr: SocketAddr },
    #[error("--metrics-listen {addr}: cannot listen there: {source} (is the address assigned to this machine?)")]
    Other {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// A bound metrics socket, not yet serving: bind early (a bad address is a setup error),
/// serve once the counters exist.
#[derive(Debug)]
pub struct MetricsListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsListener {
    /// Parses and binds `value` (ADDR:PORT).
    pub fn bind(value: &str) -> Result<Self, MetricsListenError> {
        let addr: SocketAddr = value
            .trim()
            .parse()
            .map_err(|_| MetricsListenError::BadAddr {
                value: value.to_string(),
            })?;
        let listener = TcpListener::bind(addr).map_err(|source| match source.kind() {
            io::ErrorKind::AddrInUse => MetricsListenError::InUse { addr },
            _ => MetricsListenError::Other { addr, source },
        })?;
        let addr = listener
            .local_addr()
            .map_err(|source| MetricsListenError::Other { addr, source })?;
        Ok(Self { listener, addr })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves what `collector` reads, as Prometheus text (see [`MetricsListener::serve`]).
    pub fn serve_collector(self, collector: impl Collector) -> io::Result<()> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector));
        self.serve(move || {
            let mut text = String::new();
            // Writing into a String cannot fail; an encoder error leaves what was written.
            let _ = prometheus_text::encode(&mut text, &registry);
            text
        })
    }

    /// Serves `render()` to every `GET /metrics` on a thread of its own, for the rest of
    /// the process, and prints `metrics: http://ADDR/metrics` on stderr.
    pub fn serve<F>(self, render: F) -> io::Result<()>
    where
        F: Fn() -> String + Send + 'static,
    {
        let addr = self.addr;
        std::thread::Builder::new()
            .name("c1m-metrics".into())
            .spawn(move || {
                for stream in self.listener.incoming() {
                    match stream {
                        // A failed exchange concerns that scraper only.
                        Ok(s) => {
                            let _ = answer(s, &render);
                        }
                        // Out of fds, say: try again later rather than spin.
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            })?;
        eprintln!("metrics: http://{addr}/metrics");
        Ok(())
    }
}

/// Reads one request head and answers it; the connection is closed after.
fn answer(mut s: TcpStream, render: &dyn Fn() -> String) -> io::Result<()> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = match read_head(&mut s)? {
        Some(h) => h,
        None => return respond(&mut s, "431 Request Header Fields Too Large", "", ""),
    };
    let mut parts = head.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    match (method, path) {
        (b"GET", b"/metrics") => respond(&mut s, "200 OK", CONTENT_TYPE, &render()),
        (b"GET", _) => respond(&mut s, "404 Not Found", "text/plain", "try /metrics\n"),
        _ => respond(
            &mut s,
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics only\n",
        ),
    }
}

/// The request head up to its blank line; `None` when it passes [`MAX_HEAD`].
fn read_head(s: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(Some(head))
}

fn respond(s: &mut TcpStream, status: &str, content_type: &str, body: &str) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        out.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    s.write_all(out.as_bytes())?;
    s.flush()
}

/// A counter (the name gets `_total`).
pub fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

pub fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

/// One counter per value of `label` (nothing at all when `values` is empty).
pub fn counters_by<'a>(
    enc: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> fmt::Result {
    by(enc, (name, help), MetricType::Counter, label, values)
}

/// One gauge per value of `label`.
pub fn gauges_by<'a>(
    enc: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> fmt::Result {
    by(enc, (name, help), MetricType::Gauge, label, values)
}

fn by<'a>(
    enc: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    kind: MetricType,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> fmt::Result {
    let mut values = values.into_iter().peekable();
    if values.peek().is_none() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (value, v) in values {
        let labels = [(label, value)];
        let mut f = m.encode_family(&labels)?;
        match kind {
            MetricType::Counter => f.encode_counter::<NoLabelSet, _, u64>(&v, None)?,
            _ => f.encode_gauge(&v)?,
        }
    }
    Ok(())
}

/// A histogram from per-bucket (not cumulative) counts by upper bound, ascending; the
/// encoder makes them cumulative and adds `+Inf` = `count`.
pub fn histogram(
    enc: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    sum: f64,
    count: u64,
    buckets: &[(f64, u64)],
) -> fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(sum, count, buckets, None)
}

/// `GET /metrics` from `addr`: the status line and the body (used by tests).
pub fn scrape(addr: SocketAddr, timeout: Duration) -> io::Result<(String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: c1m\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let _ = s.write_all(request);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn serves_metrics_and_nothing_else() {
        let l = MetricsListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.addr();
        l.serve(|| "x_total 1\n".to_string()).expect("serve");
        let (status, body) = scrape(addr, Duration::from_secs(5)).expect("scrape");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, "x_total 1\n");
        assert!(raw(addr, b"GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(raw(addr, b"POST /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 405"));
        let huge = vec![b'a'; 3 * MAX_HEAD];
        assert!(raw(addr, &huge).starts_with("HTTP/1.1 431"));
        // A scraper that connects and says nothing does not block the next one for good.
        let _silent = TcpStream::connect(addr).expect("connect");
        let (status, _) = scrape(addr, Duration::from_secs(5)).expect("scrape after a stall");
        assert_eq!(status, "HTTP/1.1 200 OK");
    }

    #[derive(Debug)]
    struct Fixed;

    impl Collector for Fixed {
        fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
            counter(&mut enc, "t_things", "Things.", 3)?;
            gauges_by(&mut enc, ("t_open", "Open."), "loop", [("0", 1), ("1", 2)])?;
            counters_by(&mut enc, ("t_none", "Absent."), "x", [])?;
            histogram(
                &mut enc,
                ("t_seconds", "Times."),
                0.5,
                3,
                &[(0.1, 1), (1.0, 2)],
            )
        }
    }

    #[test]
    fn collectors_render_as_prometheus_text() {
        let l = MetricsListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.addr();
        l.serve_collector(Fixed).expect("serve");
        let (_, body) = scrape(addr, Duration::from_secs(5)).expect("scrape");
        for line in [
            "# TYPE t_things_total counter",
            "t_things_total 3",
            "t_open{loop=\"1\"} 2",
            "t_seconds_bucket{le=\"0.1\"} 1",
            "t_seconds_bucket{le=\"1\"} 3",
            "t_seconds_bucket{le=\"+Inf\"} 3",
            "t_seconds_count 3",
        ] {
            assert!(body.lines().any(|l| l == line), "{line:?} not in\n{body}");
        }
        assert!(!body.contains("t_none"), "{body}");
    }

    #[test]
    fn bad_addresses_say_how_to_fix_them() {
        let e = MetricsListener::bind("localhost").unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:9100"), "{e}");
        let taken = MetricsListener::bind("127.0.0.1:0").expect("bind");
        let e = MetricsListener::bind(&taken.addr().to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("already in use"), "{e}");
    }
}
