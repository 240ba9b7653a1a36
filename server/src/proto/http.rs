//! HTTP/1.1 keep-alive on the `httparse` crate: every request gets `200` with a fixed body.
//!
//! - Pipelined requests are answered in order; a request split across reads is held until
//!   its head is complete (at most `--max-header` bytes, else `431`).
//! - `Connection: close`, or HTTP/1.0 without `Connection: keep-alive`, is honoured: the
//!   answer says `Connection: close` and the connection ends after it.
//! - A malformed request gets `400`; more than [`MAX_HEADERS`] headers `431`; any
//!   `Transfer-Encoding` (chunked bodies are not supported) `501`. Each ends the
//!   connection.
//! - The answer never depends on how the stream was cut into reads: a head is judged on
//!   its first `--max-header` + 1 bytes, and a fault only once a newline follows it
//!   (property-tested in `proto/proptests.rs`, fuzzed in `fuzz/`).
//! - A request body is read and discarded by `Content-Length`, never held.

use super::{End, Fed, Session};

/// Default `--body-size`.
pub const DEFAULT_BODY_SIZE: usize = 16;
/// Default `--max-header`: the largest request head (request line and headers).
pub const DEFAULT_MAX_HEADER: usize = 16 * 1024;
/// Headers a request may have.
pub const MAX_HEADERS: usize = 64;

/// What the body is made of: its first `--body-size` bytes, repeated as needed.
const BODY_PATTERN: &[u8] = b"0123456789abcdef";

/// The server's settings and every response, rendered once.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub max_header: usize,
    /// Answers one `feed` may produce before it keeps the rest of its input for later.
    burst: usize,
    ok: Box<[u8]>,
    ok_close: Box<[u8]>,
    head_ok: Box<[u8]>,
    head_ok_close: Box<[u8]>,
}

/// The body every `200` carries: the first `len` bytes of `0123456789abcdef0123...`.
pub fn body(len: usize) -> Vec<u8> {
    BODY_PATTERN.iter().copied().cycle().take(len).collect()
}

fn render(status: &str, body_len: usize, close: bool) -> String {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 {status}\r\nServer: c1m\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n{connection}\r\n"
    )
}

impl HttpConfig {
    /// `burst`: response bytes one call may produce (see [`super::Protocol::feed`]).
    pub fn new(body_size: usize, max_header: usize, burst: usize) -> Self {
        let with_body = |head: String| {
            let mut r = head.into_bytes();
            r.extend_from_slice(&body(body_size));
            r.into_boxed_slice()
        };
        Self {
            max_header,
            burst: burst.max(1),
            ok: with_body(render("200 OK", body_size, false)),
            ok_close: with_body(render("200 OK", body_size, true)),
            head_ok: render("200 OK", body_size, false).into_bytes().into(),
            head_ok_close: render("200 OK", body_size, true).into_bytes().into(),
        }
    }

    fn answer(&self, request: &Request, out: &mut Vec<u8>) {
        let response = match (request.head, request.close) {
            (false, false) => &self.ok,
            (false, true) => &self.ok_close,
            (true, false) => &self.head_ok,
            (true, true) => &self.head_ok_close,
        };
        out.extend_from_slice(response);
    }
}

/// An error answer: no body, and the connection ends.
fn refuse(status: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(render(status, 0, true).as_bytes());
}

/// What the server needs to know of a parsed request.
#[derive(Debug, Clone, Copy)]
struct Request {
    /// Bytes of the head (request line and headers).
    len: usize,
    head: bool,
    close: bool,
    body: u64,
}

/// Why a head cannot be answered with 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    BadRequest,
    TooLarge,
    NotImplemented,
}

impl Refusal {
    fn status(self) -> &'static str {
        match self {
            Refusal::BadRequest => "400 Bad Request",
            Refusal::TooLarge => "431 Request Header Fields Too Large",
            Refusal::NotImplemented => "501 Not Implemented",
        }
    }
}

/// Parses one request head from the start of `buf`: `Ok(None)` while it is incomplete.
fn parse(buf: &[u8]) -> Result<Option<Request>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TooLarge),
        Err(_) => return Err(Refusal::BadRequest),
    };
    let http10 = req.version == Some(0);
    let (mut close, mut keep_alive, mut body) = (false, false, None::<u64>);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Refusal::NotImplemented);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = content_length(h.value).ok_or(Refusal::BadRequest)?;
            // Two different lengths: which one frames the body is ambiguous (RFC 9112 6.3).
            if body.is_some_and(|b| b != n) {
                return Err(Refusal::BadRequest);
            }
            body = Some(n);
        }
    }
    Ok(Some(Request {
        len,
        head: req.method == Some("HEAD"),
        // HTTP/1.0 keeps the connection only when asked to.
        close: close || (http10 && !keep_alive),
        body: body.unwrap_or(0),
    }))
}

/// The verdict on the head at the start of `buf`, the same however the stream was cut:
/// only its first `max_header + 1` bytes count (what a held head keeps), and a malformed
/// head is refused only once a newline follows the fault (a held head is parsed only when
/// a newline arrives, so that a head sent a byte at a time is not parsed once per byte).
/// `Ok(None)`: incomplete, and within the bound.
fn judge(buf: &[u8], max_header: usize) -> Result<Option<Request>, Refusal> {
    let buf = &buf[..buf.len().min(max_header + 1)];
    let parsed = match parse(buf) {
        // httparse stops at the first fault, so the lines before it decide.
        Err(_) if buf.last() != Some(&b'\n') => match buf.iter().rposition(|&b| b == b'\n') {
            Some(nl) => parse(&buf[..=nl]),
            None => Ok(None),
        },
        parsed => parsed,
    };
    match parsed {
        Ok(Some(r)) if r.len > max_header => Err(Refusal::TooLarge),
        Ok(None) if buf.len() > max_header => Err(Refusal::TooLarge),
        parsed => parsed,
    }
}

fn content_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Answers the complete requests in `session`'s held bytes followed by `input`, until the
/// answers reach the burst bound; returns how much of `input` it used.
pub(super) fn feed(
    cfg: &HttpConfig,
    s: &mut Session,
    mut input: &[u8],
    out: &mut Vec<u8>,
) -> (Fed, usize) {
    let (total, produced_before) = (input.len(), out.len());
    let mut fed = Fed::default();
    loop {
        // A body being discarded comes before anything else.
        if s.skip > 0 {
            let n = s.skip.min(input.len() as u64);
            s.skip -= n;
            input = &input[n as usize..];
        }
        if input.is_empty() {
            return (fed, total);
        }
        if out.len() - produced_before >= cfg.burst {
            return (fed, total - input.len());
        }
        let parsed = if s.partial.is_empty() {
            judge(input, cfg.max_header).map(|r| r.map(|r| (r, r.len)))
        } else {
            // Hold at most one byte past the bound: enough to know it was passed.
            let held = s.partial.len();
            let take = (cfg.max_header + 1).saturating_sub(held).min(input.len());
            s.partial.extend_from_slice(&input[..take]);
            // Judging stops at the last newline: without a new one the verdict stands.
            let parsed = if input[..take].contains(&b'\n') {
                judge(&s.partial, cfg.max_header)
            } else if s.partial.len() > cfg.max_header {
                Err(Refusal::TooLarge)
            } else {
                Ok(None)
            };
            // Bytes of this input that belong to the request (or all that were taken).
            parsed.map(|r| r.map(|r| (r, r.len - held)))
        };
        match parsed {
            Ok(None) => {
                if s.partial.is_empty() {
                    s.partial.extend_from_slice(input);
                }
                return (fed, total);
            }
            Ok(Some((request, used))) => {
                cfg.answer(&request, out);
                fed.requests += 1;
                s.release_partial();
                input = &input[used..];
                s.skip = request.body;
                if request.close {
                    fed.end = Some(End::Requested);
                    return (fed, total);
                }
            }
            Err(refusal) => {
                refuse(refusal.status(), out);
                fed.end = Some(End::Error);
                return (fed, total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Protocol;
    use super::*;
    use std::sync::Arc;

    const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: c1m\r\n\r\n";

    fn http() -> Protocol {
        Protocol::Http(Arc::new(HttpConfig::new(16, 1024, 1 << 20)))
    }

    fn ok() -> Vec<u8> {
        let mut r = render("200 OK", 16, false).into_bytes();
        r.extend_from_slice(b"0123456789abcdef");
        r
    }

    fn status_of(out: &[u8]) -> &str {
        std::str::from_utf8(&out[9..12]).unwrap_or("???")
    }

    #[test]
    fn three_pipelined_requests_in_one_write() {
        let p = http();
        let (mut s, mut out) = (Session::default(), Vec::new());
        let fed = p.feed(&mut s, &GET.repeat(3), &mut out);
        assert_eq!(
            fed,
            Fed {
                requests: 3,
                end: None
            }
        );
        assert_eq!(out, ok().repeat(3));
    }

    #[test]
    fn request_split_at_every_byte() {
        let p = http();
        let stream = GET.repeat(2);
        for cut in 0..=stream.len() {
            let (mut s, mut out) = (Session::default(), Vec::new());
            let a = p.feed(&mut s, &stream[..cut], &mut out);
            let b = p.feed(&mut s, &stream[cut..], &mut out);
            assert_eq!(a.requests + b.requests, 2, "cut at {cut}");
            assert_eq!(out, ok().repeat(2));
            assert_eq!(s.held(), 0);
        }
        let (mut s, mut out) = (Session::default(), Vec::new());
        for b in GET {
            p.feed(&mut s, std::slice::from_ref(b), &mut out);
        }
        assert_eq!(out, ok());
    }

    #[test]
    fn connection_close_and_http10() {
        let p = http();
        for (request, closes) in [
            (&b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"[..], true),
            (b"GET / HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false),
        ] {
            let (mut s, mut out) = (Session::default(), Vec::new());
            let mut stream = request.to_vec();
            stream.extend_from_slice(GET);
            let fed = p.feed(&mut s, &stream, &mut out);
            let text = String::from_utf8_lossy(&out);
            if closes {
                assert_eq!(
                    fed,
                    Fed {
                        requests: 1,
                        end: Some(End::Requested)
                    }
                );
                assert!(text.contains("Connection: close\r\n"), "{text}");
                assert!(s.ended());
            } else {
                assert_eq!(
                    fed,
                    Fed {
                        requests: 2,
                        end: None
                    }
                );
            }
        }
    }

    #[test]
    fn garbage_gets_400_and_ends() {
        let p = http();
        let (mut s, mut out) = (Session::default(), Vec::new());
        let mut stream = GET.to_vec();
        stream.extend_from_slice(b"\x00\x01 garbage \xff\r\n\r\n");
        let fed = p.feed(&mut s, &stream, &mut out);
        assert_eq!(
            fed,
            Fed {
                requests: 1,
                end: Some(End::Error)
            }
        );
        assert_eq!(status_of(&out[ok().len()..]), "400");
        assert_eq!(p.feed(&mut s, GET, &mut out), Fed::default());
    }

    #[test]
    fn huge_head_gets_431_whether_split_or_not() {
        let p = http();
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        while big.len() < 200_000 {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        big.extend_from_slice(b"\r\n");
        let (mut s, mut out) = (Session::default(), Vec::new());
        assert_eq!(p.feed(&mut s, &big, &mut out).end, Some(End::Error));
        assert_eq!(status_of(&out), "431");
        for chunk in [1, 7, 1000] {
            let (mut s, mut out) = (Session::default(), Vec::new());
            let mut end = None;
            for piece in big.chunks(chunk) {
                end = end.or(p.feed(&mut s, piece, &mut out).end);
                assert!(s.held() <= 1025, "held {}", s.held());
            }
            assert_eq!(end, Some(End::Error), "chunks of {chunk}");
            assert_eq!(status_of(&out), "431");
        }
        // Too many headers is the same answer.
        let many: Vec<u8> = [&b"GET / HTTP/1.1\r\n"[..], &b"A: b\r\n".repeat(65), b"\r\n"].concat();
        let (mut s, mut out) = (Session::default(), Vec::new());
        p.feed(&mut s, &many, &mut out);
        assert_eq!(status_of(&out), "431");
    }

    #[test]
    fn a_fault_gets_the_same_answer_however_the_stream_is_cut() {
        // A fault is refused once a newline follows it, and a head is judged on its first
        // `--max-header` + 1 bytes, whole or split (found by the split-invariance property).
        let small = Protocol::Http(Arc::new(HttpConfig::new(16, 16, 1 << 20)));
        for (p, stream, status) in [
            (http(), &b"G\x00T / HTTP/1.1\r\n"[..], Some("400")),
            (http(), b"G\x00T / HTTP/1.1", None),
            (small, b"\r\nConnection: close\r\n", Some("431")),
        ] {
            for chunk in [stream.len(), 1] {
                let (mut s, mut out) = (Session::default(), Vec::new());
                for piece in stream.chunks(chunk) {
                    p.feed(&mut s, piece, &mut out);
                }
                let got = (!out.is_empty()).then(|| status_of(&out));
                assert_eq!(got, status, "{stream:?} in pieces of {chunk}");
                assert_eq!(s.ended(), status.is_some());
            }
        }
    }

    #[test]
    fn body_is_discarded_by_content_length() {
        let p = http();
        let mut stream = b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789".to_vec();
        stream.extend_from_slice(GET);
        for cut in 0..=stream.len() {
            let (mut s, mut out) = (Session::default(), Vec::new());
            p.feed(&mut s, &stream[..cut], &mut out);
            p.feed(&mut s, &stream[cut..], &mut out);
            assert_eq!(out, ok().repeat(2), "cut at {cut}");
        }
        for bad in ["x", "-1", "1, 2", ""] {
            let req = format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n");
            let (mut s, mut out) = (Session::default(), Vec::new());
            p.feed(&mut s, req.as_bytes(), &mut out);
            assert_eq!(status_of(&out), "400", "{bad:?}");
        }
    }

    #[test]
    fn chunked_is_501() {
        let p = http();
        let (mut s, mut out) = (Session::default(), Vec::new());
        let req = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(p.feed(&mut s, req, &mut out).end, Some(End::Error));
        assert_eq!(status_of(&out), "501");
    }

    #[test]
    fn head_has_no_body() {
        let p = http();
        let (mut s, mut out) = (Session::default(), Vec::new());
        p.feed(&mut s, b"HEAD / HTTP/1.1\r\n\r\n", &mut out);
        assert_eq!(out, render("200 OK", 16, false).into_bytes());
    }

    #[test]
    fn ten_thousand_requests_keep_the_session_empty() {
        let p = http();
        let (mut s, mut out) = (Session::default(), Vec::new());
        for _ in 0..10_000 {
            out.clear();
            assert_eq!(p.feed(&mut s, GET, &mut out).requests, 1);
        }
        assert_eq!(s.held(), 0);
    }

    #[test]
    fn big_bodies_stop_at_the_burst() {
        let p = Protocol::Http(Arc::new(HttpConfig::new(50_000, 1024, 100_000)));
        let (mut s, mut out) = (Session::default(), Vec::new());
        assert_eq!(p.feed(&mut s, &GET.repeat(5), &mut out).requests, 2);
        assert!(s.has_backlog());
        assert_eq!(p.feed(&mut s, &[], &mut out).requests, 2);
        assert_eq!(p.feed(&mut s, &[], &mut out).requests, 1);
        assert!(!s.has_backlog() && s.held() == 0);
    }

    #[test]
    fn body_pattern() {
        assert_eq!(body(20), b"0123456789abcdef0123");
        assert!(body(0).is_empty());
    }
}
