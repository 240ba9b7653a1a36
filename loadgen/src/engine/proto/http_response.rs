//! Reading HTTP/1.1 responses off one connection's byte stream, without I/O: the bytes
//! come in whatever pieces the receives cut them into (a response split at any byte,
//! several responses in one piece), and every response is judged as it completes.
//!
//! A response is good when its status is 200, its `Content-Length` is the expected body
//! length and the body is the pattern ([`super::http::body_matches`]). A bad response
//! whose length is known is read to its end, so the stream stays in step and the next
//! response is judged on its own. A stream that cannot be followed (a malformed head, a
//! head over [`MAX_HEAD`] bytes, no `Content-Length`, a `Transfer-Encoding`) is an error:
//! the caller drops the connection.
//!
//! The head is parsed in place when it arrives whole; only a head split across receives
//! is copied, into a per-connection buffer that is freed once the head is complete, so an
//! idle connection holds no heap memory.

use super::http::body_matches;

/// Most bytes of one response head held for a connection.
pub const MAX_HEAD: usize = 8192;
/// Most header fields in a response head.
const MAX_HEADERS: usize = 32;
/// Longest body of a bad response read over to stay in step; beyond it the connection
/// is dropped.
const MAX_SKIP: u64 = 16 << 20;

/// Why a connection's responses cannot be read any further (http, and a frame's length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("malformed response head ({0})")]
    Malformed(httparse::Error),
    #[error("response without Content-Length (bodies are read by Content-Length)")]
    NoContentLength,
    #[error("response with an invalid or repeated Content-Length")]
    BadContentLength,
    #[error("response with a Transfer-Encoding (bodies are read by Content-Length)")]
    TransferEncoding,
    #[error("response Content-Length {0} is too large")]
    BodyTooLarge(u64),
    #[error("frame length differs from what was expected")]
    FrameLength,
}

/// What one [`ResponseReader::step`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input used (more than 0 unless `done` is an error).
    pub consumed: usize,
    /// A response completed: good (true) or bad (false); or the stream is broken.
    pub done: Option<Result<bool, StreamError>>,
}

/// What a response head says.
struct Head {
    status: u16,
    content_length: Option<u64>,
    transfer_encoding: bool,
}

/// One connection's response stream.
#[derive(Debug, Default)]
pub struct ResponseReader {
    /// A head split across receives, so far (empty otherwise).
    held: Vec<u8>,
    /// Reading a body: bytes still to come, and how many came already.
    in_body: bool,
    body_left: u32,
    body_seen: u32,
    /// The response being read is good so far.
    ok: bool,
}

impl ResponseReader {
    /// Forgets everything (a new connection on the slot).
    pub fn reset(&mut self) {
        *self = ResponseReader::default();
    }

    /// Bytes of a split head held so far (at most [`MAX_HEAD`]).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Reads from `data` up to the end of the current response (or of `data`).
    /// `body_len` is the body every good response has. Call again with the rest of
    /// `data` until it is used up.
    pub fn step(&mut self, data: &[u8], body_len: usize) -> Step {
        if self.in_body {
            self.body(data)
        } else {
            self.head(data, body_len)
        }
    }

    fn head(&mut self, data: &[u8], body_len: usize) -> Step {
        let parsed = if self.held.is_empty() {
            // The same bound whether or not the head came in one piece: only what a held
            // head may keep is parsed, so a fault past it is the same error either way.
            match parse_head(&data[..data.len().min(MAX_HEAD)]) {
                Ok(Some((head, n))) => (head, n),
                Ok(None) if data.len() >= MAX_HEAD => return broken(StreamError::HeadTooLarge),
                Ok(None) => {
                    self.held.extend_from_slice(data);
                    return Step {
                        consumed: data.len(),
                        done: None,
                    };
                }
                Err(e) => return broken(e),
            }
        } else {
            // Add what may still belong to the head; what follows it is handed back.
            let old = self.held.len();
            let add = data.len().min(MAX_HEAD.saturating_sub(old));
            self.held.extend_from_slice(&data[..add]);
            match parse_head(&self.held) {
                Ok(Some((head, n))) => {
                    self.held = Vec::new();
                    (head, n.saturating_sub(old))
                }
                Ok(None) if self.held.len() >= MAX_HEAD => {
                    return broken(StreamError::HeadTooLarge)
                }
                Ok(None) => {
                    return Step {
                        consumed: add,
                        done: None,
                    }
                }
                Err(e) => return broken(e),
            }
        };
        let (head, consumed) = parsed;
        if head.transfer_encoding {
            return broken(StreamError::TransferEncoding);
        }
        let Some(len) = head.content_length else {
            return broken(StreamError::NoContentLength);
        };
        if len > MAX_SKIP {
            return broken(StreamError::BodyTooLarge(len));
        }
        self.ok = head.status == 200 && len == body_len as u64;
        if len == 0 {
            return Step {
                consumed,
                done: Some(Ok(self.ok)),
            };
        }
        self.in_body = true;
        self.body_left = len as u32;
        self.body_seen = 0;
        Step {
            consumed,
            done: None,
        }
    }

    fn body(&mut self, data: &[u8]) -> Step {
        let take = data.len().min(self.body_left as usize);
        if self.ok && !body_matches(self.body_seen as usize, &data[..take]) {
            self.ok = false;
        }
        self.body_left -= take as u32;
        self.body_seen += take as u32;
        if self.body_left > 0 {
            return Step {
                consumed: take,
                done: None,
            };
        }
        self.in_body = false;
        Step {
            consumed: take,
            done: Some(Ok(self.ok)),
        }
    }
}

fn broken(e: StreamError) -> Step {
    Step {
        consumed: 0,
        done: Some(Err(e)),
    }
}

/// Parses a complete head at the start of `buf`: the head and its length, or None when
/// `buf` ends inside the head.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, StreamError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(StreamError::Malformed(e)),
    };
    let mut head = Head {
        status: resp.code.unwrap_or(0),
        content_length: None,
        transfer_encoding: false,
    };
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = parse_length(h.value).ok_or(StreamError::BadContentLength)?;
            if head.content_length.is_some_and(|c| c != v) {
                return Err(StreamError::BadContentLength);
            }
            head.content_length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.transfer_encoding = true;
        }
    }
    Ok(Some((head, n)))
}

/// A Content-Length value: decimal digits only (optional surrounding blanks).
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The response c1m-server sends (see the wire contract).
    fn response(status: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nServer: c1m\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    fn body(n: usize) -> Vec<u8> {
        b"0123456789abcdef"
            .iter()
            .cycle()
            .take(n)
            .copied()
            .collect()
    }

    /// Feeds `pieces` in order; every outcome, stopping at a broken stream.
    fn feed(
        r: &mut ResponseReader,
        pieces: &[&[u8]],
        body_len: usize,
    ) -> Vec<Result<bool, StreamError>> {
        let mut out = Vec::new();
        for piece in pieces {
            let mut p = 0;
            while p < piece.len() {
                let s = r.step(&piece[p..], body_len);
                p += s.consumed;
                match s.done {
                    Some(Err(e)) => {
                        out.push(Err(e));
                        return out;
                    }
                    Some(Ok(ok)) => out.push(Ok(ok)),
                    None => assert!(s.consumed > 0, "no progress"),
                }
            }
        }
        out
    }

    fn stream(n: usize, body_len: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|_| response("200 OK", &body(body_len)))
            .collect()
    }

    #[test]
    fn one_whole_response() {
        let mut r = ResponseReader::default();
        let resp = response("200 OK", &body(16));
        assert_eq!(feed(&mut r, &[&resp], 16), vec![Ok(true)]);
        assert!(r.held.capacity() == 0 && !r.in_body);
    }

    #[test]
    fn pipelined_responses_in_one_piece() {
        let mut r = ResponseReader::default();
        let s = stream(5, 33);
        assert_eq!(feed(&mut r, &[&s], 33), vec![Ok(true); 5]);
    }

    #[test]
    fn split_at_every_byte() {
        for body_len in [0, 1, 16, 100] {
            let s = stream(3, body_len);
            for cut in 0..=s.len() {
                let mut r = ResponseReader::default();
                let got = feed(&mut r, &[&s[..cut], &s[cut..]], body_len);
                assert_eq!(got, vec![Ok(true); 3], "body {body_len}, cut at {cut}");
            }
            // And one byte at a time.
            let mut r = ResponseReader::default();
            let pieces: Vec<&[u8]> = s.chunks(1).collect();
            assert_eq!(feed(&mut r, &pieces, body_len), vec![Ok(true); 3]);
            assert_eq!(r.held.capacity(), 0, "the head buffer is freed");
        }
    }

    #[test]
    fn other_servers_heads_read_too() {
        // nginx-like: more headers, keep-alive, mixed case.
        let mut resp = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 30 Nov 2026 12:00:00 GMT\r\ncontent-type: text/plain\r\ncontent-length: 16\r\nConnection: keep-alive\r\n\r\n".to_vec();
        resp.extend_from_slice(&body(16));
        let mut r = ResponseReader::default();
        assert_eq!(feed(&mut r, &[&resp, &resp], 16), vec![Ok(true); 2]);
    }

    #[test]
    fn wrong_status_is_bad_and_the_stream_goes_on() {
        let mut s = response("404 Not Found", &body(16));
        s.extend(response("200 OK", &body(16)));
        s.extend(response("500 Internal Server Error", b""));
        s.extend(response("200 OK", &body(16)));
        let mut r = ResponseReader::default();
        assert_eq!(
            feed(&mut r, &[&s], 16),
            vec![Ok(false), Ok(true), Ok(false), Ok(true)]
        );
    }

    #[test]
    fn short_long_and_wrong_bodies_are_bad() {
        for (b, want) in [(body(15), false), (body(17), false), (body(16), true)] {
            let mut s = response("200 OK", &b);
            s.extend(response("200 OK", &body(16)));
            for cut in 0..s.len() {
                let mut r = ResponseReader::default();
                assert_eq!(
                    feed(&mut r, &[&s[..cut], &s[cut..]], 16),
                    vec![Ok(want), Ok(true)],
                    "body {}, cut at {cut}",
                    b.len()
                );
            }
        }
        let mut b = body(16);
        b[7] = b'x';
        let s = response("200 OK", &b);
        let mut r = ResponseReader::default();
        assert_eq!(feed(&mut r, &[&s[..30], &s[30..]], 16), vec![Ok(false)]);
    }

    #[test]
    fn huge_head_breaks_the_stream() {
        let mut s = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        s.resize(s.len() + MAX_HEAD, b'a');
        s.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        let mut r = ResponseReader::default();
        assert_eq!(feed(&mut r, &[&s], 0), vec![Err(StreamError::HeadTooLarge)]);
        // The same in small pieces: held bytes stay bounded.
        let mut r = ResponseReader::default();
        let pieces: Vec<&[u8]> = s.chunks(100).collect();
        assert_eq!(
            feed(&mut r, &pieces, 0),
            vec![Err(StreamError::HeadTooLarge)]
        );
        assert!(r.held.len() <= MAX_HEAD);
    }

    #[test]
    fn a_fault_past_the_bound_is_the_same_error_whole_or_split() {
        let mut s = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        s.resize(MAX_HEAD + 10, b'a');
        s.extend_from_slice(b"\x00\r\n\r\n");
        for chunk in [s.len(), 1000, 1] {
            let mut r = ResponseReader::default();
            let pieces: Vec<&[u8]> = s.chunks(chunk).collect();
            let got = feed(&mut r, &pieces, 0);
            assert_eq!(
                got,
                vec![Err(StreamError::HeadTooLarge)],
                "pieces of {chunk}"
            );
        }
    }

    #[test]
    fn unreadable_streams_are_errors() {
        let cases: &[(&[u8], StreamError)] = &[
            (b"HTTP/1.1 200 OK\r\n\r\n", StreamError::NoContentLength),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n",
                StreamError::TransferEncoding,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: +16\r\n\r\n",
                StreamError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Length: 17\r\n\r\n",
                StreamError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
                StreamError::BodyTooLarge(99_999_999_999),
            ),
        ];
        for (s, want) in cases {
            let mut r = ResponseReader::default();
            assert_eq!(feed(&mut r, &[s], 16), vec![Err(*want)], "{s:?}");
        }
        let mut r = ResponseReader::default();
        let got = feed(&mut r, &[b"HTTX/1.1 200 OK\r\n\r\n"], 16);
        assert!(
            matches!(got[..], [Err(StreamError::Malformed(_))]),
            "{got:?}"
        );
        // Garbage after a good response.
        let mut s = response("200 OK", &body(16));
        s.extend_from_slice(b"\x00\x01garbage\r\n\r\n");
        let mut r = ResponseReader::default();
        let got = feed(&mut r, &[&s], 16);
        assert!(
            matches!(got[..], [Ok(true), Err(StreamError::Malformed(_))]),
            "{got:?}"
        );
    }

    #[test]
    fn repeated_equal_lengths_and_reset() {
        let s = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n01";
        let mut r = ResponseReader::default();
        assert_eq!(feed(&mut r, &[s], 2), vec![Ok(true)]);
        // Half a head, then a new connection on the slot.
        assert_eq!(feed(&mut r, &[&s[..10]], 2), vec![]);
        r.reset();
        assert_eq!(feed(&mut r, &[s], 2), vec![Ok(true)]);
    }
}
