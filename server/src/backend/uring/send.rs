//! Sends, and the quick send that makes one `io_uring_enter` per message possible.
//!
//! A plain send posts a completion. At partial load that costs a second enter per message:
//! the send completes inside the enter that submitted it, so that enter's wait for one
//! completion returns at once with it, and only the next enter sleeps until the peer's
//! next message. A quick send carries `MSG_DONTWAIT | MSG_WAITALL` and
//! `IOSQE_CQE_SKIP_SUCCESS`: the kernel tries it once, inline, in the submitting enter;
//! with `MSG_DONTWAIT` it never waits for socket space (`REQ_F_NOWAIT`: no poll is armed,
//! no worker takes it), and anything short of the whole buffer (`MSG_WAITALL`) is a
//! failure, which cancels the skip and posts a completion carrying the bytes sent (or
//! -EAGAIN). So once the enter that consumed the SQE has returned, the send is over:
//! either its completion is in the CQ, or everything was sent. The loop settles quick
//! sends only then (`settle`), after collecting the CQ; a short one is resumed with a
//! plain send, which waits for room, and the connection keeps to plain sends until its
//! backlog has drained (a peer that reads slowly would make every quick send fail).
//!
//! Which SQEs an enter consumed: the loop numbers every SQE it pushes; the kernel's SQ
//! head says how many it took. A completion that overflowed the CQ may show up later:
//! while the CQ reports an overflow, nothing is settled.

use super::tag::{pack, unpack, Op, Tag};
use super::{UringLoop, NO_BUFFER};
use io_uring::types::Fixed;
use io_uring::{opcode, squeue};
use std::collections::{HashMap, VecDeque};

/// A quick send that may still post a completion.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Its number among all SQEs the loop pushed.
    seq: u64,
    user_data: u64,
    len: u32,
}

/// The loop's quick sends not yet settled.
#[derive(Debug, Default)]
pub(super) struct QuickSends {
    enabled: bool,
    /// In push order, so in `seq` order.
    pending: VecDeque<Pending>,
    /// Completions of quick sends (short ones) seen before their send was settled, by
    /// user_data, with a count (a user_data may repeat: see `settle`).
    short: HashMap<u64, u32>,
}

impl QuickSends {
    pub(super) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            ..Self::default()
        }
    }
}

impl UringLoop {
    /// Queues a send of `len` bytes at `ptr` on the connection in `slot`; `bid` goes into
    /// the user_data (echo: the receive buffer, so it comes back with the completion).
    pub(super) fn push_send(&mut self, slot: u32, bid: u16, ptr: *const u8, len: u32) {
        let conn = &mut self.conns[slot as usize];
        let quick = self.quick.enabled && !conn.send_blocked;
        conn.send_in_flight = true;
        conn.send_quick = quick;
        let (op, flags) = if quick {
            (
                Op::SendQuick,
                libc::MSG_NOSIGNAL | libc::MSG_WAITALL | libc::MSG_DONTWAIT,
            )
        } else {
            (Op::Send, libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
        };
        let user_data = pack(op, bid, conn.gen, slot);
        let mut entry = opcode::Send::new(Fixed(slot), ptr, len)
            .flags(flags)
            .build()
            .user_data(user_data);
        if quick {
            entry = entry.flags(squeue::Flags::SKIP_SUCCESS);
        }
        let seq = self.push(entry);
        if quick {
            self.quick.pending.push_back(Pending {
                seq,
                user_data,
                len,
            });
        }
    }

    /// Settles every quick send that an enter has consumed: one with a completion in
    /// `batch` (or seen earlier) was short and is handled by that completion; the others
    /// sent everything. Call after collecting the CQ, before walking `batch`.
    pub(super) fn settle(&mut self, batch: &[(u64, i32, u32)], consumed: u64, overflow: bool) {
        for &(user_data, _, _) in batch {
            if unpack(user_data).op == Some(Op::SendQuick) {
                *self.quick.short.entry(user_data).or_default() += 1;
            }
        }
        if overflow {
            // A short send's completion may still be in the kernel's overflow list.
            return;
        }
        while let Some(&p) = self.quick.pending.front() {
            if p.seq >= consumed {
                break;
            }
            self.quick.pending.pop_front();
            // With the CQ overflowing, a connection's short send can be handled before it
            // is settled and the next one (the same user_data, for a protocol outbox) be
            // pending already: hence the count.
            if let Some(n) = self.quick.short.get_mut(&p.user_data) {
                *n -= 1;
                if *n == 0 {
                    self.quick.short.remove(&p.user_data);
                }
                continue;
            }
            self.on_send_result(unpack(p.user_data), p.len as i32);
        }
    }

    /// True when a quick send not yet settled holds up work that no completion will wake
    /// the loop for: its connection has more to send behind it, waits for it to resume
    /// reading or to close, or connections wait for receive buffers it holds. Then the loop
    /// settles before it sleeps. A lone answer holds up nothing: the loop sleeps at once,
    /// in the enter that sent it.
    pub(super) fn quick_holds_up_work(&self) -> bool {
        if self.quick.pending.is_empty() {
            return false;
        }
        if !self.starved.is_empty() {
            return true;
        }
        self.quick.pending.iter().any(|p| {
            let tag = unpack(p.user_data);
            if !self.is_live(tag) {
                return false;
            }
            let conn = &self.conns[tag.slot as usize];
            if conn.state.paused() || conn.state.peer_closed() {
                return true;
            }
            match &self.proto {
                None => self
                    .buffer_next
                    .get(usize::from(tag.bid))
                    .is_none_or(|&next| next != NO_BUFFER),
                Some(proto) => proto.more_after_send(tag.slot, p.len as usize),
            }
        })
    }

    /// The completion of a quick send: it was short (bytes sent, or -EAGAIN for none) or
    /// failed. The rest goes out as plain sends until the connection's backlog drains.
    pub(super) fn on_quick_short(&mut self, tag: Tag, result: i32) {
        if self.is_live(tag) {
            self.conns[tag.slot as usize].send_blocked = true;
        }
        let result = if result == -libc::EAGAIN { 0 } else { result };
        self.on_send_result(tag, result);
    }

    /// A send is over: `result` bytes sent, or an error.
    pub(super) fn on_send_result(&mut self, tag: Tag, result: i32) {
        if self.proto.is_none() {
            self.on_send(tag, result);
        } else {
            self.on_outbox_sent(tag, result);
        }
    }
}
