//! What goes over the wire, per `--protocol`: the request the loadgen sends and what
//! the response must be. The event loop asks [`Wire`] and never matches on the protocol
//! itself.
//!
//! Every request carries its sequence number and send timestamp, and the sender keeps
//! its own copy of each request until the response is complete (the loop's `txbuf`), so
//! latency is read from that copy and an echoed response is checked with a `memcmp`.
//!
//! - echo: the request is the [`message`], `--size` bytes; the response is the same bytes.
//! - frame: `[u32 BE S][S-byte message]`; the response is the request frame byte for byte,
//!   or with `--reply-size N` always `[u32 BE N][N bytes, byte i = i % 251]`; echo and
//!   frame responses are read by [`fixed_response::FixedReader`].
//! - http: a fixed-length GET with seq and timestamp in hex in its path ([`http`]); the
//!   response is read by [`http_response::ResponseReader`] (status 200, a body of
//!   `--body-size` bytes of the `0123456789abcdef` pattern).

pub mod check;
pub mod fixed_response;
pub mod http;
pub mod http_response;
pub mod message;
#[cfg(test)]
mod proptests;

use crate::cli::Protocol;

/// The smallest echo message or frame payload: it carries seq and timestamp.
pub const MIN_SIZE: usize = message::HEADER;
/// `--size` when not given.
pub const DEFAULT_SIZE: usize = 64;
/// `--body-size` when not given.
pub const DEFAULT_BODY_SIZE: usize = 16;
/// Largest message, frame payload, reply or body.
pub const MAX_SIZE: usize = 1 << 20;
/// The length prefix of a frame.
pub const FRAME_HEADER: usize = 4;

/// What a response must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The request, byte for byte (echo; frame without `--reply-size`).
    Request,
    /// The same bytes every time (frame with `--reply-size`).
    Fixed(Vec<u8>),
    /// An HTTP/1.1 response: status 200 and a body of this many pattern bytes.
    Http { body: usize },
}

/// The protocol of a run with its sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    protocol: Protocol,
    /// echo: the message; frame: the payload; http: unused (0).
    size: usize,
    response: Response,
}

impl Wire {
    /// Raw echo of `size`-byte messages.
    pub fn echo(size: usize) -> Wire {
        Wire {
            protocol: Protocol::Echo,
            size,
            response: Response::Request,
        }
    }

    /// Frames of `size`-byte payloads, echoed, or answered with `reply` pattern bytes.
    pub fn frame(size: usize, reply: Option<usize>) -> Wire {
        let response = match reply {
            None => Response::Request,
            Some(n) => Response::Fixed(frame_reply(n)),
        };
        Wire {
            protocol: Protocol::Frame,
            size,
            response,
        }
    }

    /// HTTP/1.1 GETs answered with `body`-byte bodies.
    pub fn http(body: usize) -> Wire {
        Wire {
            protocol: Protocol::Http,
            size: 0,
            response: Response::Http { body },
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// `--size`: the echo message or the frame payload (none for http).
    pub fn size(&self) -> Option<usize> {
        (self.protocol != Protocol::Http).then_some(self.size)
    }

    pub fn response(&self) -> &Response {
        &self.response
    }

    /// Bytes of one request on the wire (the same for every request of a run).
    pub fn request_len(&self) -> usize {
        match self.protocol {
            Protocol::Echo => self.size,
            Protocol::Frame => FRAME_HEADER + self.size,
            Protocol::Http => http::REQUEST_LEN,
        }
    }

    /// Bytes of one response: exact for echo and frame, an estimate for http (whose
    /// headers are the server's).
    pub fn response_len(&self) -> usize {
        match &self.response {
            Response::Request => self.request_len(),
            Response::Fixed(bytes) => bytes.len(),
            Response::Http { body } => http::HEAD_ESTIMATE + body,
        }
    }

    /// Leading bytes of a fixed-length response that frame it (a frame's length): when
    /// they differ from what was expected the rest of the stream cannot be read.
    pub fn framing_len(&self) -> usize {
        match self.protocol {
            Protocol::Frame => FRAME_HEADER,
            Protocol::Echo | Protocol::Http => 0,
        }
    }

    /// Writes request `seq` of connection `conn_id`, sent at `ts_ns`, into `buf` (exactly
    /// [`Wire::request_len`] bytes).
    pub fn fill(&self, buf: &mut [u8], conn_id: u64, seq: u64, ts_ns: u64) {
        match self.protocol {
            Protocol::Echo => message::fill_message(buf, conn_id, seq, ts_ns),
            Protocol::Frame => {
                let (len, payload) = buf.split_at_mut(FRAME_HEADER);
                len.copy_from_slice(&(payload.len() as u32).to_be_bytes());
                message::fill_message(payload, conn_id, seq, ts_ns);
            }
            Protocol::Http => http::fill_request(buf, seq, ts_ns),
        }
    }

    /// The send timestamp of a request written by [`Wire::fill`].
    pub fn timestamp(&self, request: &[u8]) -> u64 {
        match self.protocol {
            Protocol::Echo => message::timestamp(request),
            Protocol::Frame => message::timestamp(&request[FRAME_HEADER..]),
            Protocol::Http => http::timestamp(request),
        }
    }
}

/// The response frame of `--reply-size n`: `[u32 BE n][n bytes, byte i = i % 251]`.
pub fn frame_reply(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(FRAME_HEADER + n);
    v.extend_from_slice(&(n as u32).to_be_bytes());
    v.extend((0..n).map(|i| (i % 251) as u8));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_is_the_message() {
        let w = Wire::echo(40);
        assert_eq!(
            (w.request_len(), w.response_len(), w.framing_len()),
            (40, 40, 0)
        );
        let mut a = vec![0u8; 40];
        let mut b = vec![0u8; 40];
        w.fill(&mut a, 3, 9, 77);
        message::fill_message(&mut b, 3, 9, 77);
        assert_eq!(a, b);
        assert_eq!(w.timestamp(&a), 77);
        assert_eq!(w.size(), Some(40));
    }

    #[test]
    fn frame_request_is_length_then_message() {
        let w = Wire::frame(16, None);
        assert_eq!(w.request_len(), 20);
        assert_eq!(w.response(), &Response::Request);
        let mut f = vec![0u8; 20];
        w.fill(&mut f, 1, 2, 123_456);
        assert_eq!(f[..4], [0, 0, 0, 16]);
        let mut m = vec![0u8; 16];
        message::fill_message(&mut m, 1, 2, 123_456);
        assert_eq!(f[4..], m[..]);
        assert_eq!(w.timestamp(&f), 123_456);
        assert_eq!(w.framing_len(), 4);
    }

    #[test]
    fn frame_reply_is_the_pattern() {
        let w = Wire::frame(64, Some(300));
        let Response::Fixed(r) = w.response() else {
            panic!("fixed reply expected");
        };
        assert_eq!(r.len(), 304);
        assert_eq!(r[..4], 300u32.to_be_bytes());
        assert_eq!(r[4], 0);
        assert_eq!(r[4 + 250], 250);
        assert_eq!(r[4 + 251], 0);
        assert_eq!(r[303], (299 % 251) as u8);
        assert_eq!(w.response_len(), 304);
        assert_eq!(w.request_len(), 68);
        assert_eq!(frame_reply(0), vec![0, 0, 0, 0]);
    }

    #[test]
    fn http_request_has_a_fixed_length() {
        let w = Wire::http(16);
        assert_eq!(w.request_len(), http::REQUEST_LEN);
        assert_eq!(w.size(), None);
        let mut r = vec![0u8; w.request_len()];
        w.fill(&mut r, 5, u64::MAX, 0x0123_4567_89ab_cdef);
        assert_eq!(w.timestamp(&r), 0x0123_4567_89ab_cdef);
    }
}
