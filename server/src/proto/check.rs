//! Feeding a byte stream to a protocol the way a backend does, in pieces, sending the
//! answers between them or not, and checking what must hold whatever the bytes: the same
//! outcome however the stream is cut, bounded sessions and calls. Shared by the property
//! tests (`proptests.rs`) and the fuzz targets (`fuzz/`); a violation panics.

use super::frame::{FrameConfig, HEADER};
use super::http::HttpConfig;
use super::{End, Fed, Protocol, Session, KEEP_CAPACITY};
use c1m_platform::pieces::{cut, encode_fuzz_cuts, fuzz_cuts};
use std::sync::Arc;

/// A byte stream that prints as an escaped byte string when a property fails.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\" ({} bytes)", self.0.escape_ascii(), self.0.len())
    }
}

/// What a connection got for a stream.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub out: Bytes,
    pub requests: u32,
    pub end: Option<End>,
    /// Bytes of an incomplete request held at the end.
    pub held: usize,
}

/// The limits a session and a call must stay under.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Most bytes of one incomplete request.
    pub partial: usize,
    /// Most answer bytes of one call (two bursts, see `Protocol::feed`).
    pub per_call: usize,
}

/// Sends every answer the backlog still holds, as a backend does once its sends complete.
fn drain(p: &Protocol, s: &mut Session, o: &mut Outcome, bounds: Bounds) {
    while s.has_backlog() {
        let (before, waiting) = (o.out.0.len(), s.backlog.len() - s.backlog_start as usize);
        let fed = p.feed(s, &[], &mut o.out.0);
        let left = s.backlog.len() - s.backlog_start as usize;
        assert!(
            o.out.0.len() > before || left < waiting,
            "a backlog call made no progress"
        );
        record(o, fed, before, bounds);
    }
    assert!(
        s.held() <= bounds.partial,
        "held {} > {}",
        s.held(),
        bounds.partial
    );
    let keep = 2 * bounds.partial.max(KEEP_CAPACITY);
    assert!(
        s.partial.capacity() <= keep,
        "partial capacity {}",
        s.partial.capacity()
    );
    assert!(
        s.backlog.capacity() <= KEEP_CAPACITY,
        "backlog capacity {}",
        s.backlog.capacity()
    );
}

fn record(o: &mut Outcome, fed: Fed, before: usize, bounds: Bounds) {
    let produced = o.out.0.len() - before;
    assert!(
        produced <= bounds.per_call,
        "one call produced {produced} bytes"
    );
    o.requests += fed.requests;
    assert!(
        o.end.is_none() || fed == Fed::default(),
        "answers after the end"
    );
    o.end = o.end.or(fed.end);
}

/// Feeds `pieces` one after the other; after piece `i` the answers are sent (the backlog
/// drained) when `send[i]` is true or missing, and always at the end.
pub fn run(p: &Protocol, pieces: &[&[u8]], send: &[bool], bounds: Bounds) -> Outcome {
    let (mut s, mut o) = (Session::default(), Outcome::default());
    for (i, piece) in pieces.iter().enumerate() {
        let before = o.out.0.len();
        let fed = p.feed(&mut s, piece, &mut o.out.0);
        record(&mut o, fed, before, bounds);
        if send.get(i).copied().unwrap_or(true) {
            drain(p, &mut s, &mut o, bounds);
        }
    }
    drain(p, &mut s, &mut o, bounds);
    o.held = s.held();
    o
}

/// A frame protocol's settings: small limits, so that streams reach them.
#[derive(Debug, Clone, Copy)]
pub struct FrameParams {
    pub max: u32,
    pub reply: Option<u32>,
    pub burst: usize,
}

impl FrameParams {
    pub fn protocol(self) -> Protocol {
        Protocol::Frame(Arc::new(FrameConfig::new(self.max, self.reply, self.burst)))
    }

    pub fn bounds(self) -> Bounds {
        let answer = HEADER + self.reply.unwrap_or(self.max) as usize;
        Bounds {
            partial: HEADER + self.max as usize,
            per_call: 2 * (self.burst + answer),
        }
    }
}

/// An HTTP protocol's settings.
#[derive(Debug, Clone, Copy)]
pub struct HttpParams {
    pub body: usize,
    pub max_header: usize,
    pub burst: usize,
}

impl HttpParams {
    pub fn protocol(self) -> Protocol {
        let cfg = HttpConfig::new(self.body, self.max_header, self.burst);
        Protocol::Http(Arc::new(cfg))
    }

    pub fn bounds(self) -> Bounds {
        // The largest answer is a 200 with its body; refusals are shorter than 200 bytes.
        let answer = 200 + self.body;
        Bounds {
            partial: self.max_header,
            per_call: 2 * (self.burst + answer),
        }
    }
}

/// A request frame: the payload's length, then the payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// The same outcome whole, cut at `cuts` (sending answers between pieces as `send`
/// says) and byte by byte.
pub fn assert_split_invariant(
    p: &Protocol,
    bounds: Bounds,
    stream: &[u8],
    cuts: &[usize],
    send: &[bool],
) {
    let whole = run(p, &[stream], &[], bounds);
    let split = run(p, &cut(stream, cuts), send, bounds);
    assert_eq!(&whole, &split);
    let bytes = run(p, &stream.chunks(1).collect::<Vec<_>>(), &[], bounds);
    assert_eq!(whole, bytes);
}

/// A fuzzer's input: settings, cut points and send pattern, then the stream.
///
/// Layout: `[a, b, c, send mask, n, n cuts as u16 LE..., stream...]`; `a`, `b`, `c` are
/// the protocol's settings (see [`FrameParams::decode`], [`HttpParams::decode`]).
pub struct FuzzInput<'a> {
    pub settings: [u8; 3],
    pub cuts: Vec<usize>,
    pub send: Vec<bool>,
    pub stream: &'a [u8],
}

impl<'a> FuzzInput<'a> {
    /// `None` when `data` is too short to hold the settings.
    pub fn decode(data: &'a [u8]) -> Option<Self> {
        let (&[a, b, c, mask, n], rest) = data.split_first_chunk::<5>()?;
        let (cuts, stream) = fuzz_cuts(n, rest);
        Some(FuzzInput {
            settings: [a, b, c],
            cuts,
            send: (0..8).map(|i| mask >> i & 1 == 1).collect(),
            stream,
        })
    }

    /// The layout [`FuzzInput::decode`] reads (for seed corpora).
    pub fn encode(settings: [u8; 3], cuts: &[u16], send_mask: u8, stream: &[u8]) -> Vec<u8> {
        let mut data = settings.to_vec();
        data.push(send_mask);
        data.extend(encode_fuzz_cuts(cuts));
        data.extend_from_slice(stream);
        data
    }
}

impl FrameParams {
    /// `--max-frame` 0-1020, echo or a reply of 0-254 bytes, a burst of 1-1021 bytes.
    pub fn decode([a, b, c]: [u8; 3]) -> Self {
        FrameParams {
            max: u32::from(a) * 4,
            reply: (b & 0x80 == 0).then_some(u32::from(b) * 2),
            burst: usize::from(c) * 4 + 1,
        }
    }
}

impl HttpParams {
    /// A body of 0-63 bytes, `--max-header` 16-2056, a burst of 1-2041 bytes.
    pub fn decode([a, b, c]: [u8; 3]) -> Self {
        HttpParams {
            body: usize::from(a % 64),
            max_header: 16 + usize::from(b) * 8,
            burst: usize::from(c) * 8 + 1,
        }
    }
}

/// The fuzz target of the frame parser: every check of this module on one input.
pub fn fuzz_frame(data: &[u8]) {
    if let Some(input) = FuzzInput::decode(data) {
        let params = FrameParams::decode(input.settings);
        let p = params.protocol();
        assert_split_invariant(&p, params.bounds(), input.stream, &input.cuts, &input.send);
    }
}

/// The fuzz target of the HTTP parser: every check of this module on one input.
pub fn fuzz_http(data: &[u8]) {
    if let Some(input) = FuzzInput::decode(data) {
        let params = HttpParams::decode(input.settings);
        let p = params.protocol();
        assert_split_invariant(&p, params.bounds(), input.stream, &input.cuts, &input.send);
    }
}
