//! Responses waiting to be sent, for a backend whose sends are in flight while more
//! requests arrive (io_uring): new responses go to the back buffer, the front buffer is
//! what a send is reading and never moves until that send completes.

/// Two buffers: `front` (being sent, from `sent` on) and `back` (filling).
#[derive(Debug, Default)]
pub struct Outbox {
    front: Vec<u8>,
    sent: usize,
    back: Vec<u8>,
}

impl Outbox {
    /// Where new responses are appended. Never the buffer a send in flight reads.
    pub fn back(&mut self) -> &mut Vec<u8> {
        &mut self.back
    }

    /// The bytes to send next, or `None` when nothing is waiting. The slice stays valid
    /// and unmoved until [`Outbox::on_sent`], whatever is appended to [`Outbox::back`].
    pub fn to_send(&mut self) -> Option<&[u8]> {
        if self.sent == self.front.len() {
            self.front.clear();
            self.sent = 0;
            std::mem::swap(&mut self.front, &mut self.back);
            super::release_buffer(&mut self.back);
        }
        (!self.front.is_empty()).then(|| &self.front[self.sent..])
    }

    /// `n` bytes of what [`Outbox::to_send`] returned were sent.
    pub fn on_sent(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.front.len());
    }

    /// Bytes not sent yet, in both buffers.
    pub fn pending(&self) -> usize {
        self.front.len() - self.sent + self.back.len()
    }

    /// Drops everything (the connection closed) and gives the memory back.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_does_not_move_while_back_fills() {
        let mut o = Outbox::default();
        o.back().extend_from_slice(b"abc");
        let (ptr, len) = {
            let s = o.to_send().expect("data");
            (s.as_ptr(), s.len())
        };
        assert_eq!(len, 3);
        o.back().extend_from_slice(&[b'x'; 10_000]);
        o.on_sent(1);
        let s = o.to_send().expect("rest");
        assert_eq!(s, b"bc");
        assert_eq!(s.as_ptr(), ptr.wrapping_add(1));
        assert_eq!(o.pending(), 10_002);
        o.on_sent(2);
        assert_eq!(o.to_send().map(<[u8]>::len), Some(10_000));
        o.on_sent(10_000);
        assert_eq!(o.to_send(), None);
        assert_eq!(o.pending(), 0);
    }
}
