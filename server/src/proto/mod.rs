//! What the bytes of a connection mean: the request/response protocols, without I/O.
//!
//! - `echo`: every byte goes back as it came; backends send it from the receive buffer and
//!   never call into this module.
//! - `frame`: a 4-byte big-endian length, then the payload; one response frame per complete
//!   request frame ([`frame`]).
//! - `http`: HTTP/1.1 keep-alive, a fixed 200 answer to every request ([`http`]).
//!
//! A backend feeds each received chunk to [`Protocol::feed`] with the connection's
//! [`Session`] and sends what it appended to `out`. Parsing lives here and nowhere else, so
//! backends still differ only in how they move bytes.

pub mod check;
pub mod frame;
pub mod http;
mod outbox;
#[cfg(test)]
mod proptests;

pub use outbox::Outbox;

use std::sync::Arc;

/// The protocols a server (and the loadgen) can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolKind {
    /// Raw bytes back: the pure I/O measure.
    Echo,
    /// Length-prefixed frames: `[u32 BE length][payload]`, one response frame per request.
    Frame,
    /// HTTP/1.1 keep-alive: 200 with a fixed body for every request.
    Http,
}

impl ProtocolKind {
    pub fn name(self) -> &'static str {
        match self {
            ProtocolKind::Echo => "echo",
            ProtocolKind::Frame => "frame",
            ProtocolKind::Http => "http",
        }
    }
}

/// A protocol with its settings and precomputed responses; shared read-only by all loops.
#[derive(Debug, Clone)]
pub enum Protocol {
    Echo,
    Frame(Arc<frame::FrameConfig>),
    Http(Arc<http::HttpConfig>),
}

impl Protocol {
    pub fn kind(&self) -> ProtocolKind {
        match self {
            Protocol::Echo => ProtocolKind::Echo,
            Protocol::Frame(_) => ProtocolKind::Frame,
            Protocol::Http(_) => ProtocolKind::Http,
        }
    }

    /// True for echo: the backend sends received bytes back itself, without a [`Session`].
    pub fn is_echo(&self) -> bool {
        matches!(self, Protocol::Echo)
    }

    /// Parses `input` (the next bytes of the connection) and appends every response it
    /// completes to `out`. Incomplete requests are kept in `session`. After a response that
    /// ends the connection, further input is ignored.
    ///
    /// Answers can be much larger than requests (`--reply-size`, `--body-size`), so one
    /// call stops producing at the protocol's burst bound and keeps the rest of the input
    /// as a backlog ([`Session::has_backlog`]); the backend calls `feed` again, with no new
    /// input, once it has sent what was produced.
    pub fn feed(&self, session: &mut Session, input: &[u8], out: &mut Vec<u8>) -> Fed {
        if session.ended {
            return Fed::default();
        }
        let mut fed = Fed::default();
        if session.has_backlog() {
            let backlog = std::mem::take(&mut session.backlog);
            let start = session.backlog_start as usize;
            let used = self.feed_some(session, &backlog[start..], out, &mut fed);
            session.backlog = backlog;
            session.backlog_start += used as u32;
            if fed.end.is_none() && session.has_backlog() {
                session.backlog.extend_from_slice(input);
                return fed;
            }
            // Answered: give back what a big read grew it to, as for `partial`.
            release_buffer(&mut session.backlog);
            session.backlog_start = 0;
        }
        if fed.end.is_none() {
            let used = self.feed_some(session, input, out, &mut fed);
            if fed.end.is_none() && used < input.len() {
                session.backlog.extend_from_slice(&input[used..]);
            }
        }
        if fed.end.is_some() {
            session.ended = true;
            session.release();
        }
        fed
    }

    /// One protocol step over `input`; returns the bytes of it that were used.
    fn feed_some(&self, s: &mut Session, input: &[u8], out: &mut Vec<u8>, fed: &mut Fed) -> usize {
        let (step, used) = match self {
            Protocol::Echo => {
                out.extend_from_slice(input);
                (Fed::default(), input.len())
            }
            Protocol::Frame(cfg) => frame::feed(cfg, s, input, out),
            Protocol::Http(cfg) => http::feed(cfg, s, input, out),
        };
        fed.requests += step.requests;
        fed.end = fed.end.or(step.end);
        used
    }
}

/// Why a connection ends once its responses are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client asked (`Connection: close`, HTTP/1.0).
    Requested,
    /// The request broke the protocol or its bounds; the reply (if any) says why.
    Error,
}

/// What one [`Protocol::feed`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fed {
    /// Requests answered (responses appended to `out`).
    pub requests: u32,
    /// Set when the connection must close after sending what is in `out`.
    pub end: Option<End>,
}

/// Shrink a buffer back to nothing once it is empty and grew beyond this, so a
/// connection that once sent a big request (or got a big answer) does not keep its memory.
pub const KEEP_CAPACITY: usize = 4096;

/// Per-connection protocol state: empty (no allocation) between requests.
#[derive(Debug, Default)]
pub struct Session {
    /// The start of a request whose end has not arrived (a frame, an HTTP head).
    partial: Vec<u8>,
    /// Input not parsed yet because the answers already produced reached the burst bound,
    /// from `backlog_start` on.
    backlog: Vec<u8>,
    backlog_start: u32,
    /// HTTP: request body bytes still to read and discard.
    skip: u64,
    /// A response that ends the connection was produced.
    ended: bool,
}

impl Session {
    /// Bytes of incomplete requests held for this connection (bounded by the protocol's
    /// `--max-frame` or `--max-header`); they count toward back-pressure.
    pub fn held(&self) -> usize {
        self.partial.len() + self.backlog.len() - self.backlog_start as usize
    }

    /// True when received requests wait to be parsed: call [`Protocol::feed`] again (with
    /// no new input) once what it produced has been sent.
    pub fn has_backlog(&self) -> bool {
        (self.backlog_start as usize) < self.backlog.len()
    }

    /// True once a response that ends the connection was produced.
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn release_partial(&mut self) {
        release_buffer(&mut self.partial);
    }

    fn release(&mut self) {
        release_buffer(&mut self.partial);
        release_buffer(&mut self.backlog);
        self.backlog_start = 0;
    }
}

/// Empties `buf`, and frees it if it grew beyond [`KEEP_CAPACITY`].
pub fn release_buffer(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_CAPACITY {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_small() {
        assert!(std::mem::size_of::<Session>() <= 64);
    }

    #[test]
    fn an_answered_backlog_gives_its_memory_back() {
        // 10,000 empty frames in one read, a burst of one answer: nearly all of the read
        // waits in the backlog. Once it is answered, the session keeps no big buffer.
        let p = Protocol::Frame(Arc::new(frame::FrameConfig::new(16, None, 1)));
        let (mut s, mut out) = (Session::default(), Vec::new());
        p.feed(&mut s, &[0u8; 40_000], &mut out);
        assert!(s.backlog.capacity() >= 39_996);
        while s.has_backlog() {
            p.feed(&mut s, &[], &mut out);
        }
        assert_eq!(out.len(), 40_000);
        assert!(s.backlog.capacity() <= KEEP_CAPACITY && s.partial.capacity() <= KEEP_CAPACITY);
    }
}
