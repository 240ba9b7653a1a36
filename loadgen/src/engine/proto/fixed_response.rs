//! Reading fixed-length responses (echo, frame) off one connection's byte stream, without
//! I/O: each response is compared byte for byte with what it must be (the request's copy,
//! or the one `--reply-size` frame) as its bytes arrive, in whatever pieces.
//!
//! A response with a wrong byte is bad and the stream goes on (its length is known); a
//! wrong frame length is an error: what follows cannot be told apart any more, and the
//! caller drops the connection.

use super::http_response::{Step, StreamError};

/// One connection's place in its response stream: 8 bytes, no heap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixedReader {
    /// Bytes of the current response received so far.
    off: u32,
    /// The current response has a byte that differs from what was expected.
    bad: bool,
}

impl FixedReader {
    /// At the start of a response (`const`, for the loop's empty connection).
    pub const fn new() -> Self {
        FixedReader { off: 0, bad: false }
    }

    /// Reads from `data` up to the end of the current response (or of `data`), which must
    /// be `expected`; its first `framing` bytes frame the stream (a frame's length).
    /// Call again with the rest of `data` until it is used up.
    pub fn step(&mut self, expected: &[u8], framing: usize, data: &[u8]) -> Step {
        let off = self.off as usize;
        let take = (expected.len() - off).min(data.len());
        let (want, got) = (&expected[off..off + take], &data[..take]);
        if want != got {
            let h = framing.saturating_sub(off).min(take);
            if want[..h] != got[..h] {
                return Step {
                    consumed: 0,
                    done: Some(Err(StreamError::FrameLength)),
                };
            }
            self.bad = true;
        }
        self.off += take as u32;
        if (self.off as usize) < expected.len() {
            return Step {
                consumed: take,
                done: None,
            };
        }
        let good = !self.bad;
        *self = FixedReader::new();
        Step {
            consumed: take,
            done: Some(Ok(good)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::proto::check::{read, Answers, Verdicts};
    use crate::engine::proto::frame_reply;

    fn feed(expected: &[u8], framing: usize, pieces: &[&[u8]]) -> Verdicts {
        let responses = vec![expected.to_vec()];
        read(&Answers::Fixed { responses, framing }, pieces)
    }

    #[test]
    fn good_and_bad_replies_split_anywhere() {
        let reply = frame_reply(10);
        let mut wrong = reply.clone();
        wrong[9] ^= 1;
        let stream = [reply.clone(), wrong, reply.clone()].concat();
        for cut in 0..=stream.len() {
            let got = feed(&reply, 4, &[&stream[..cut], &stream[cut..]]);
            assert_eq!(got, vec![Ok(true), Ok(false), Ok(true)], "cut at {cut}");
        }
    }

    #[test]
    fn a_wrong_frame_length_breaks_the_stream() {
        let reply = frame_reply(10);
        let mut wrong = reply.clone();
        wrong[3] = 11;
        let stream = [reply.clone(), wrong].concat();
        for cut in 0..=stream.len() {
            let got = feed(&reply, 4, &[&stream[..cut], &stream[cut..]]);
            assert_eq!(
                got,
                vec![Ok(true), Err(StreamError::FrameLength)],
                "cut at {cut}"
            );
        }
        // Without framing (echo) the same byte only makes the response bad.
        assert_eq!(feed(&reply, 0, &[&stream]), vec![Ok(true), Ok(false)]);
    }
}
