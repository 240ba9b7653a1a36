//! Quick sends: a send that posts no completion when it sends everything at once, so a
//! loop at partial load makes one `io_uring_enter` per message instead of two (the
//! server's `backend/uring/send.rs` explains the mechanism and why it is safe). The
//! request bytes stay where they are until their response has come back, so buffer reuse
//! never depends on a send's completion here; what a quick send changes is only when the
//! loop learns how much went out. A quick send carries `MSG_DONTWAIT | MSG_WAITALL` and
//! `IOSQE_CQE_SKIP_SUCCESS`: short, it posts a completion with the bytes sent (or
//! -EAGAIN) and the rest goes out as a plain send; without a completion by the time the
//! enter that took it has returned, everything was sent. Each pushed SQE is numbered; the
//! SQ head says which ones an enter took.

use super::*;
use std::collections::HashMap;

/// The loop's quick sends not yet settled.
#[derive(Debug, Default)]
pub(super) struct QuickSends {
    pub(super) enabled: bool,
    /// SQEs pushed since the ring was made.
    pub(super) pushed: u64,
    /// (number of the SQE, its user_data), in push order.
    pending: VecDeque<(u64, u64)>,
    /// Completions (short sends) seen before their send was settled, by user_data.
    short: HashMap<u64, u32>,
}

impl QuickSends {
    pub(super) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            ..Self::default()
        }
    }

    /// Called for every SQE pushed, in order.
    pub(super) fn on_pushed(&mut self, user_data: u64) {
        if user_data >> 56 == OP_SEND_QUICK {
            self.pending.push_back((self.pushed, user_data));
        }
        self.pushed += 1;
    }
}

impl Loop {
    /// Settles the quick sends an enter has taken; `cqes` is what was just collected from
    /// the CQ (its short sends are handled by their completion). Call before walking it.
    pub(super) fn settle_quick(&mut self, cqes: &[(u64, i32, u32)]) {
        let (consumed, overflow) = {
            let sq = self.ring.submission();
            (self.core.quick.pushed - sq.len() as u64, sq.cq_overflow())
        };
        let q = &mut self.core.quick;
        for &(user_data, _, _) in cqes {
            if user_data >> 56 == OP_SEND_QUICK {
                *q.short.entry(user_data).or_default() += 1;
            }
        }
        if overflow {
            // A short send's completion may still wait in the kernel's overflow list.
            return;
        }
        while let Some(&(seq, user_data)) = self.core.quick.pending.front() {
            if seq >= consumed {
                break;
            }
            let q = &mut self.core.quick;
            q.pending.pop_front();
            if let Some(n) = q.short.get_mut(&user_data) {
                *n -= 1;
                if *n == 0 {
                    q.short.remove(&user_data);
                }
                continue;
            }
            let (_, gen, slot) = unpack(user_data);
            let len = self.core.conns.get(slot as usize).map_or(0, |c| c.send_len);
            self.core.on_send(slot, gen, len as i32);
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
        self.quick.pending.iter().any(|&(_, user_data)| {
            let (_, gen, slot) = unpack(user_data);
            self.conns.get(slot as usize).is_some_and(|c| {
                c.gen == gen && c.tx_sent + u64::from(c.send_len) < c.tx_seq * self.req_len as u64
            })
        })
    }
}
