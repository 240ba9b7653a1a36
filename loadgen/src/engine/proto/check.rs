//! Reading a server's answer stream the way the event loop does, in whatever pieces the
//! receives cut it into, and checking what must hold whatever the server sends: every
//! response is verified or counted as wrong, or the stream is declared broken, the same
//! however the stream is cut, with bounded memory and no panic. Shared by the property
//! tests (`proptests.rs`) and the fuzz target (`fuzz/`); a violation panics.

use super::fixed_response::FixedReader;
use super::http_response::{ResponseReader, StreamError, MAX_HEAD};
use super::Wire;
use c1m_platform::pieces::{cut, encode_fuzz_cuts, fuzz_cuts};

/// What the responses must be.
#[derive(Debug, Clone)]
pub enum Answers {
    /// HTTP responses with a body of this many pattern bytes.
    Http { body: usize },
    /// Fixed-length responses, response `i` being `responses[i % len]`, framed by their
    /// first `framing` bytes.
    Fixed {
        responses: Vec<Vec<u8>>,
        framing: usize,
    },
}

impl Answers {
    /// What `wire`'s responses to its first `n` requests (of connection 1) must be.
    pub fn of(wire: &Wire, n: u64) -> Answers {
        match wire.response() {
            super::Response::Http { body } => Answers::Http { body: *body },
            super::Response::Fixed(reply) => Answers::Fixed {
                responses: vec![reply.clone()],
                framing: wire.framing_len(),
            },
            super::Response::Request => Answers::Fixed {
                responses: (0..n.max(1))
                    .map(|seq| {
                        let mut r = vec![0u8; wire.request_len()];
                        wire.fill(&mut r, 1, seq, 1000 + seq);
                        r
                    })
                    .collect(),
                framing: wire.framing_len(),
            },
        }
    }
}

/// Every response's verdict in order (good or bad), ending at a broken stream.
pub type Verdicts = Vec<Result<bool, StreamError>>;

/// Reads `pieces` one after the other as the loop does; panics when a step makes no
/// progress or a reader holds more than its bound.
pub fn read(answers: &Answers, pieces: &[&[u8]]) -> Verdicts {
    let (mut http, mut fixed) = (ResponseReader::default(), FixedReader::default());
    let mut verdicts = Vec::new();
    for piece in pieces {
        let mut p = 0;
        while p < piece.len() {
            let step = match answers {
                Answers::Http { body } => http.step(&piece[p..], *body),
                Answers::Fixed { responses, framing } => {
                    let expected = &responses[verdicts.len() % responses.len()];
                    fixed.step(expected, *framing, &piece[p..])
                }
            };
            assert!(
                step.consumed <= piece.len() - p,
                "consumed more than it got"
            );
            assert!(http.held() <= MAX_HEAD, "held {} head bytes", http.held());
            p += step.consumed;
            match step.done {
                Some(Err(e)) => {
                    verdicts.push(Err(e));
                    return verdicts;
                }
                Some(Ok(good)) => verdicts.push(Ok(good)),
                None => assert!(step.consumed > 0, "a step made no progress"),
            }
        }
    }
    verdicts
}

/// The same verdicts whole, cut at `cuts` and byte by byte; returns them.
pub fn assert_split_invariant(answers: &Answers, stream: &[u8], cuts: &[usize]) -> Verdicts {
    let whole = read(answers, &[stream]);
    assert_eq!(whole, read(answers, &cut(stream, cuts)), "cut at {cuts:?}");
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(whole, read(answers, &bytes), "byte by byte");
    whole
}

/// The wire a fuzzer's two setting bytes choose: http with a body of 0-255 bytes, or echo
/// or frame (echoed or `--reply-size`) of 16-271 bytes.
pub fn fuzz_wire([mode, size]: [u8; 2]) -> Wire {
    let size = usize::from(size);
    match mode % 4 {
        0 => Wire::http(size),
        1 => Wire::echo(super::MIN_SIZE + size),
        2 => Wire::frame(super::MIN_SIZE + size, None),
        _ => Wire::frame(super::MIN_SIZE, Some(size)),
    }
}

/// The fuzz target of the loadgen's answer verification. Input layout:
/// `[mode, size, n, n cuts as u16 LE..., stream...]` (see [`fuzz_wire`]).
pub fn fuzz_response(data: &[u8]) {
    let Some((&[mode, size, n], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let (cuts, stream) = fuzz_cuts(n, rest);
    let answers = Answers::of(&fuzz_wire([mode, size]), 4);
    assert_split_invariant(&answers, stream, &cuts);
}

/// The layout [`fuzz_response`] reads (for seed corpora).
pub fn fuzz_input(mode: u8, size: u8, cuts: &[u16], stream: &[u8]) -> Vec<u8> {
    let mut data = vec![mode, size];
    data.extend(encode_fuzz_cuts(cuts));
    data.extend_from_slice(stream);
    data
}
