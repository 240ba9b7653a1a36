//! Length-prefixed frames, the framing of the classic Go network-server design: a 4-byte
//! big-endian payload length, then the payload. Each complete request frame gets one
//! response frame, in order: the request echoed, or a fixed reply of `--reply-size` bytes.
//! Nothing is answered before the whole request frame has arrived.

use super::{End, Fed, Session};

/// Bytes of the length prefix.
pub const HEADER: usize = 4;

/// Default `--max-frame`: the largest request payload a connection may send.
pub const DEFAULT_MAX_FRAME: u32 = 64 * 1024;

#[derive(Debug, Clone)]
pub struct FrameConfig {
    /// Largest payload accepted; a longer length closes the connection.
    pub max_frame: u32,
    /// Answers one `feed` may produce before it keeps the rest of its input for later.
    burst: usize,
    /// The whole response frame when replies are fixed (`--reply-size`), else `None`: echo.
    reply: Option<Box<[u8]>>,
}

impl FrameConfig {
    /// `reply_size`: payload bytes of every response (`None`: echo the request payload).
    /// `burst`: response bytes one call may produce (see [`super::Protocol::feed`]).
    pub fn new(max_frame: u32, reply_size: Option<u32>, burst: usize) -> Self {
        let reply = reply_size.map(|n| {
            let mut frame = Vec::with_capacity(HEADER + n as usize);
            frame.extend_from_slice(&n.to_be_bytes());
            frame.extend((0..n).map(|i| (i % 251) as u8));
            frame.into_boxed_slice()
        });
        Self {
            max_frame,
            burst: burst.max(1),
            reply,
        }
    }

    fn respond(&self, request: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(self.reply.as_deref().unwrap_or(request));
    }
}

fn payload_len(header: &[u8]) -> u32 {
    u32::from_be_bytes([header[0], header[1], header[2], header[3]])
}

/// Answers the complete frames in `session`'s held bytes followed by `input`, until the
/// answers reach the burst bound; returns how much of `input` it used.
pub(super) fn feed(
    cfg: &FrameConfig,
    s: &mut Session,
    mut input: &[u8],
    out: &mut Vec<u8>,
) -> (Fed, usize) {
    let (total, produced_before) = (input.len(), out.len());
    let mut fed = Fed::default();
    // First complete the frame that an earlier read left unfinished, copying only it.
    if !s.partial.is_empty() {
        loop {
            let want = if s.partial.len() < HEADER {
                HEADER
            } else {
                HEADER + payload_len(&s.partial) as usize
            };
            let take = (want - s.partial.len()).min(input.len());
            s.partial.extend_from_slice(&input[..take]);
            input = &input[take..];
            if s.partial.len() == HEADER && payload_len(&s.partial) > cfg.max_frame {
                fed.end = Some(End::Error);
                return (fed, total);
            }
            if s.partial.len() < want {
                return (fed, total); // input used up, frame still incomplete
            }
            if want > HEADER || payload_len(&s.partial) == 0 {
                break; // a whole frame (a zero-length one is whole at its header)
            }
        }
        cfg.respond(&s.partial, out);
        fed.requests += 1;
        s.release_partial();
    }
    // Then whole frames straight from the input, without copying them.
    while input.len() >= HEADER {
        if out.len() - produced_before >= cfg.burst {
            return (fed, total - input.len());
        }
        let len = payload_len(input);
        if len > cfg.max_frame {
            fed.end = Some(End::Error);
            return (fed, total);
        }
        let whole = HEADER + len as usize;
        if input.len() < whole {
            break;
        }
        cfg.respond(&input[..whole], out);
        fed.requests += 1;
        input = &input[whole..];
    }
    s.partial.extend_from_slice(input);
    (fed, total)
}

#[cfg(test)]
mod tests {
    use super::super::Protocol;
    use super::*;
    use std::sync::Arc;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    fn echo(max: u32) -> Protocol {
        Protocol::Frame(Arc::new(FrameConfig::new(max, None, 1 << 20)))
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let p = echo(1024);
        let mut stream = frame(b"hello, frames");
        stream.extend(frame(b""));
        stream.extend(frame(&[7u8; 300]));
        for cut in 0..=stream.len() {
            let mut s = Session::default();
            let mut out = Vec::new();
            let a = p.feed(&mut s, &stream[..cut], &mut out);
            let b = p.feed(&mut s, &stream[cut..], &mut out);
            assert_eq!(out, stream, "cut at {cut}");
            assert_eq!(a.requests + b.requests, 3);
            assert_eq!(s.held(), 0);
        }
    }

    #[test]
    fn byte_by_byte_holds_only_the_incomplete_frame() {
        let p = echo(1024);
        let stream = frame(&[1, 2, 3, 4, 5]);
        let mut s = Session::default();
        let mut out = Vec::new();
        for (i, b) in stream.iter().enumerate() {
            let fed = p.feed(&mut s, std::slice::from_ref(b), &mut out);
            let last = i + 1 == stream.len();
            assert_eq!(fed.requests, u32::from(last));
            assert_eq!(s.held(), if last { 0 } else { i + 1 });
        }
        assert_eq!(out, stream);
    }

    #[test]
    fn fifty_frames_in_one_write_answered_in_order() {
        let p = echo(1024);
        let stream: Vec<u8> = (0..50u8)
            .flat_map(|i| frame(&vec![i; i as usize]))
            .collect();
        let mut s = Session::default();
        let mut out = Vec::new();
        assert_eq!(p.feed(&mut s, &stream, &mut out).requests, 50);
        assert_eq!(out, stream);
    }

    #[test]
    fn oversized_length_ends_the_connection_without_holding_it() {
        let p = echo(16);
        let mut s = Session::default();
        let mut out = Vec::new();
        let mut stream = frame(b"ok");
        stream.extend_from_slice(&17u32.to_be_bytes());
        let fed = p.feed(&mut s, &stream, &mut out);
        assert_eq!(fed.requests, 1);
        assert_eq!(fed.end, Some(End::Error));
        assert_eq!(out, frame(b"ok"));
        assert!(s.ended() && s.held() == 0);
        // Later input is ignored.
        assert_eq!(p.feed(&mut s, &frame(b"x"), &mut out), Fed::default());
        // Also when the bad length arrives split.
        let mut s = Session::default();
        p.feed(&mut s, &[0, 0], &mut out);
        assert_eq!(p.feed(&mut s, &[1, 0], &mut out).end, Some(End::Error));
    }

    #[test]
    fn zero_length_frames_split_or_not() {
        let p = echo(16);
        let mut s = Session::default();
        let mut out = Vec::new();
        assert_eq!(p.feed(&mut s, &[0, 0], &mut out).requests, 0);
        assert_eq!(p.feed(&mut s, &[0, 0, 0, 0, 0, 0], &mut out).requests, 2);
        assert_eq!(out, vec![0u8; 8]);
        assert_eq!(s.held(), 0);
    }

    #[test]
    fn fixed_reply_size() {
        let p = Protocol::Frame(Arc::new(FrameConfig::new(1024, Some(300), 1 << 20)));
        let mut s = Session::default();
        let mut out = Vec::new();
        let mut stream = frame(b"a");
        stream.extend(frame(b"bb"));
        assert_eq!(p.feed(&mut s, &stream, &mut out).requests, 2);
        assert_eq!(out.len(), 2 * 304);
        assert_eq!(&out[..4], &300u32.to_be_bytes());
        assert_eq!(out[4 + 250], 250);
        assert_eq!(out[4 + 251], 0);
        assert_eq!(out[..304], out[304..]);
    }

    #[test]
    fn big_replies_stop_at_the_burst_and_continue_from_the_backlog() {
        // 4,096 empty frames in one read, each answered with 10,000 bytes: 41 MB if all
        // were answered at once. With a 100 kB burst, each call answers 10.
        let p = Protocol::Frame(Arc::new(FrameConfig::new(1024, Some(10_000), 100_000)));
        let input = vec![0u8; 4 * 4096];
        let mut s = Session::default();
        let mut out = Vec::new();
        let mut answered = p.feed(&mut s, &input, &mut out).requests;
        assert_eq!(answered, 10);
        assert!(s.has_backlog());
        assert_eq!(s.held(), input.len() - 40);
        // New input joins the end of the backlog, in order.
        answered += p.feed(&mut s, &frame(b"last"), &mut out).requests;
        while s.has_backlog() {
            out.clear();
            let fed = p.feed(&mut s, &[], &mut out);
            assert!(fed.requests <= 10 && out.len() <= 110_000);
            answered += fed.requests;
        }
        assert_eq!(answered, 4097);
        assert_eq!(s.held(), 0);
    }
}
