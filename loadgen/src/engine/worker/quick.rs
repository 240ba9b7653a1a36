//! Quick sends: a send that posts no completion when it sends everything at once, so a
//! loop at partial load makes one `io_uring_enter` per message instead of two (the ledger
//! and the reason it is safe: `c1m_platform::quick`). The request bytes stay where they
//! are until their response has come back, so buffer reuse never depends on a send's
//! completion here; what a quick send changes is only when the loop learns how much went
//! out. Short, it posts a completion with the bytes sent (or -EAGAIN) and the rest goes
//! out as a plain send.

use super::*;

impl Loop {
    /// Settles the quick sends an enter has taken; `cqes` is what was just collected from
    /// the CQ (its short sends are handled by their completion). Call before walking it.
    pub(super) fn settle_quick(&mut self, cqes: &[(u64, i32, u32)]) {
        let (consumed, overflow) = {
            let sq = self.ring.submission();
            (self.core.quick.consumed(sq.len()), sq.cq_overflow())
        };
        for &(user_data, _, _) in cqes {
            if user_data >> 56 == OP_SEND_QUICK {
                self.core.quick.note_short(user_data);
            }
        }
        while let Some(q) = self.core.quick.next_settled(consumed, overflow) {
            let (_, gen, slot) = unpack(q.user_data);
            self.core.on_send(slot, gen, q.len as i32);
        }
    }
}

impl Core {
    /// A quick send came back short (bytes sent, or -EAGAIN for none): the rest goes out
    /// as plain sends, which wait for room, until the connection has caught up.
    pub(super) fn on_quick_short(&mut self, slot: u32, gen: u32, res: i32) {
        if let Some(c) = self.conns.get_mut(slot as usize) {
            if c.gen == gen {
                c.send_blocked = true;
            }
        }
        self.on_send(slot, gen, if res == -libc::EAGAIN { 0 } else { res });
    }

    /// True when a quick send not yet settled holds up more bytes of its connection:
    /// then the loop settles it before sleeping (nothing else would wake it for them).
    pub(super) fn quick_holds_up_work(&self) -> bool {
        self.quick.pending().any(|q| {
            let (_, gen, slot) = unpack(q.user_data);
            self.conns.get(slot as usize).is_some_and(|c| {
                c.gen == gen && c.tx_sent + u64::from(c.send_len) < c.tx_seq * self.req_len as u64
            })
        })
    }
}
