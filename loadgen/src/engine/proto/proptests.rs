//! Properties of the loadgen's answer verification over generated server answers
//! (proptest): any answer, cut anywhere, gets every response verified or counted as
//! wrong (or the stream declared broken), the same whole, cut and byte by byte, with
//! bounded memory and no panic. Then the committed fuzz seeds (`fuzz/seeds/`) replayed.
//!
//! Cases per property: proptest's default (256, about a second in all here), or
//! `PROPTEST_CASES`.

use super::check::{assert_split_invariant, fuzz_input, fuzz_response, fuzz_wire, Answers};
use super::http_response::StreamError;
use super::{frame_reply, http::BODY_PATTERN};
use proptest::prelude::*;
use proptest::sample::Index;
use std::path::PathBuf;

fn body(n: usize) -> Vec<u8> {
    BODY_PATTERN.iter().cycle().take(n).copied().collect()
}

fn response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Pieces of answers: good and bad responses, heads that break the stream, raw bytes.
fn http_answer(body_len: usize) -> impl Strategy<Value = Vec<u8>> {
    let status = prop::sample::select(&["200 OK", "404 Not Found", "500 Oops", "200"][..]);
    let headers = prop::sample::select(
        &[
            "",
            "Server: c1m\r\nContent-Type: text/plain\r\n",
            "connection: keep-alive\r\n",
            "Transfer-Encoding: chunked\r\n",
            "Content-Length: 7\r\n",
        ][..],
    );
    prop_oneof![
        4 => Just(response("200 OK", "Server: c1m\r\n", &body(body_len))),
        3 => (status, headers, 0usize..40).prop_map(|(s, h, n)| response(s, h, &body(n))),
        1 => prop::collection::vec(any::<u8>(), 0..24),
        1 => "[ -~\r\n]{0,24}".prop_map(String::into_bytes),
    ]
}

/// Pieces of fixed-length answers: the right ones, ones with a flipped byte, raw bytes.
fn fixed_answer(answers: &Answers) -> BoxedStrategy<Vec<u8>> {
    let Answers::Fixed { responses, .. } = answers else {
        unreachable!("fixed answers expected")
    };
    let right = prop::sample::select(responses.clone());
    prop_oneof![
        4 => right.clone(),
        2 => (right, any::<Index>(), 1u8..=255).prop_map(|(mut r, i, x)| {
            let at = i.index(r.len());
            r[at] ^= x;
            r
        }),
        1 => prop::collection::vec(any::<u8>(), 0..24),
    ]
    .boxed()
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<Index>(), 0..8)
        .prop_map(|c| c.iter().map(|i| i.index(usize::MAX)).collect())
}

/// Wires with small sizes, as the fuzz target chooses them.
fn wire() -> impl Strategy<Value = (u8, u8)> {
    (0u8..4, 0u8..48)
}

/// The responses of an echo or frame wire.
fn fixed_wire() -> impl Strategy<Value = Answers> {
    (1u8..4, 0u8..48).prop_map(|(mode, size)| Answers::of(&fuzz_wire([mode, size]), 4))
}

proptest! {
    #[test]
    fn http_answers_are_judged_the_same_however_cut(
        body_len in 0usize..40,
        answer in prop::collection::vec(http_answer(16), 0..8),
        cuts in cuts(),
    ) {
        // Half the streams expect the body the good responses carry (16 bytes).
        let answers = Answers::Http { body: if body_len < 20 { 16 } else { body_len } };
        assert_split_invariant(&answers, &answer.concat(), &cuts);
    }

    #[test]
    fn fixed_answers_are_judged_the_same_however_cut(
        (answers, answer) in fixed_wire().prop_flat_map(|answers| {
            let pieces = prop::collection::vec(fixed_answer(&answers), 0..8);
            (Just(answers), pieces)
        }),
        cuts in cuts(),
    ) {
        let verdicts = assert_split_invariant(&answers, &answer.concat(), &cuts);
        prop_assert!(verdicts.iter().all(|v| v.is_ok() || *v == Err(StreamError::FrameLength)));
    }

    #[test]
    fn a_good_prefix_then_garbage_verifies_the_prefix(
        (mode, size) in wire(),
        n in 0u64..4,
        garbage in prop::collection::vec(any::<u8>(), 1..40),
        cuts in cuts(),
    ) {
        let wire = fuzz_wire([mode, size]);
        let answers = Answers::of(&wire, 4);
        let good: Vec<u8> = (0..n)
            .flat_map(|i| match &answers {
                Answers::Http { body: b } => response("200 OK", "", &body(*b)),
                Answers::Fixed { responses, .. } => responses[i as usize % responses.len()].clone(),
            })
            .collect();
        let stream = [good, garbage].concat();
        let verdicts = assert_split_invariant(&answers, &stream, &cuts);
        prop_assert!(verdicts.len() >= n as usize);
        prop_assert!(verdicts[..n as usize].iter().all(|v| *v == Ok(true)));
    }
}

/// The committed fuzz seeds of `fuzz_target`.
fn seed_dir(fuzz_target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(fuzz_target)
}

/// The seeds: streams of the unit tests, each with its wire and a few cuts.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut nginx = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\ncontent-length: 16\r\nConnection: keep-alive\r\n\r\n".to_vec();
    nginx.extend_from_slice(&body(16));
    let ok = response(
        "200 OK",
        "Server: c1m\r\nContent-Type: text/plain\r\n",
        &body(16),
    );
    let mut reply = frame_reply(16);
    let mut wrong = reply.clone();
    wrong[9] ^= 1;
    reply.extend(wrong);
    let mut echo = vec![0u8; 32];
    fuzz_wire([1, 16]).fill(&mut echo, 1, 0, 1000);
    let streams: Vec<(&str, u8, u8, Vec<u8>)> = vec![
        ("http-ok", 0, 16, ok.repeat(3)),
        ("http-nginx", 0, 16, nginx),
        (
            "http-404",
            0,
            16,
            [response("404 Not Found", "", &body(16)), ok.clone()].concat(),
        ),
        ("http-short-body", 0, 16, response("200 OK", "", &body(15))),
        (
            "http-chunked",
            0,
            16,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n".to_vec(),
        ),
        (
            "http-garbage",
            0,
            16,
            [ok, b"\x00\x01garbage\r\n\r\n".to_vec()].concat(),
        ),
        ("frame-reply", 3, 16, reply),
        ("echo", 1, 16, echo),
    ];
    streams
        .into_iter()
        .map(|(name, mode, size, stream)| {
            let cuts = [1, stream.len() as u16 / 2];
            (name.to_string(), fuzz_input(mode, size, &cuts, &stream))
        })
        .collect()
}

/// Every committed seed passes the checks; `C1M_WRITE_FUZZ_SEEDS=1` writes them anew.
#[test]
fn fuzz_seeds_pass() {
    let dir = seed_dir("loadgen_response");
    if std::env::var_os("C1M_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).expect("create the seed folder");
        for (name, data) in seeds() {
            std::fs::write(dir.join(name), data).expect("write a seed");
        }
    }
    let files = std::fs::read_dir(&dir)
        .expect("fuzz/seeds/loadgen_response: run with C1M_WRITE_FUZZ_SEEDS=1");
    let mut n = 0;
    for file in files {
        let data = std::fs::read(file.expect("a seed").path()).expect("read a seed");
        fuzz_response(&data);
        n += 1;
    }
    assert!(n >= seeds().len(), "{n} seeds in {}", dir.display());
}
