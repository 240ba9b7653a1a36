//! The http request and the body every response must carry.
//!
//! Request (the same length every time, so it fits the fixed send-ring slots):
//! `GET /<16 hex digits seq><16 hex digits send ts ns> HTTP/1.1\r\nHost: c1m\r\n\r\n`.
//! Body: the first `--body-size` bytes of `0123456789abcdef` repeated.

const PREFIX: &[u8] = b"GET /";
const SUFFIX: &[u8] = b" HTTP/1.1\r\nHost: c1m\r\n\r\n";
const HEX: &[u8; 16] = b"0123456789abcdef";
/// Where the timestamp's hex digits start.
const TS_AT: usize = PREFIX.len() + 16;

/// Bytes of every request.
pub const REQUEST_LEN: usize = PREFIX.len() + 32 + SUFFIX.len();

/// A guess at a response head's length (status line and a few headers), for sizing
/// receive buffers; nothing depends on it being right.
pub const HEAD_ESTIMATE: usize = 128;

/// The body pattern, repeated.
pub const BODY_PATTERN: &[u8; 16] = b"0123456789abcdef";

fn put_hex(out: &mut [u8], v: u64) {
    for (i, b) in out.iter_mut().enumerate().take(16) {
        *b = HEX[(v >> (60 - 4 * i) & 0xF) as usize];
    }
}

fn read_hex(digits: &[u8]) -> u64 {
    digits.iter().take(16).fold(0u64, |acc, &d| {
        let nibble = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => 0,
        };
        acc << 4 | u64::from(nibble)
    })
}

/// Writes request `seq` sent at `ts_ns` into `buf` ([`REQUEST_LEN`] bytes).
pub fn fill_request(buf: &mut [u8], seq: u64, ts_ns: u64) {
    debug_assert_eq!(buf.len(), REQUEST_LEN);
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    put_hex(&mut buf[PREFIX.len()..TS_AT], seq);
    put_hex(&mut buf[TS_AT..TS_AT + 16], ts_ns);
    buf[TS_AT + 16..].copy_from_slice(SUFFIX);
}

/// The send timestamp of a request written by [`fill_request`].
pub fn timestamp(request: &[u8]) -> u64 {
    read_hex(&request[TS_AT..TS_AT + 16])
}

/// The sequence number of a request written by [`fill_request`].
#[cfg(test)]
pub fn sequence(request: &[u8]) -> u64 {
    read_hex(&request[PREFIX.len()..TS_AT])
}

/// True when `data` equals the body pattern from body offset `offset` on.
pub fn body_matches(offset: usize, data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .all(|(i, &b)| b == BODY_PATTERN[(offset + i) % BODY_PATTERN.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_the_contract_text() {
        let mut r = vec![0u8; REQUEST_LEN];
        fill_request(&mut r, 0x2a, 0x0000_1234_5678_9abc);
        assert_eq!(
            std::str::from_utf8(&r).expect("ascii"),
            "GET /000000000000002a0000123456789abc HTTP/1.1\r\nHost: c1m\r\n\r\n"
        );
        assert_eq!(REQUEST_LEN, 61);
        assert_eq!(sequence(&r), 0x2a);
        assert_eq!(timestamp(&r), 0x0000_1234_5678_9abc);
    }

    #[test]
    fn request_parses_as_http() {
        let mut r = vec![0u8; REQUEST_LEN];
        fill_request(&mut r, u64::MAX, 1);
        let mut headers = [httparse::EMPTY_HEADER; 4];
        let mut req = httparse::Request::new(&mut headers);
        assert_eq!(req.parse(&r), Ok(httparse::Status::Complete(REQUEST_LEN)));
        assert_eq!(req.method, Some("GET"));
        assert_eq!(req.path, Some("/ffffffffffffffff0000000000000001"));
        assert_eq!(req.version, Some(1));
        assert_eq!(req.headers[0].name, "Host");
    }

    #[test]
    fn body_pattern_at_any_offset() {
        let body: Vec<u8> = BODY_PATTERN.iter().cycle().take(40).copied().collect();
        for off in 0..40 {
            assert!(body_matches(off, &body[off..]));
        }
        assert!(body_matches(3, b""));
        assert!(!body_matches(0, b"0123x"));
        assert!(!body_matches(1, b"0123"));
    }
}
