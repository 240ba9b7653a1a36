//! Sends, and the quick send that makes one `io_uring_enter` per message possible: a send
//! whose completion is skipped when it sent everything (the mechanism, and why a
//! buffer is never reused before the kernel is done with it, is explained with the
//! ledger in `c1m_platform::quick`). The loop settles quick sends after collecting the CQ
//! (`settle`); a short one is resumed with a plain send, which waits for room, and the
//! connection keeps to plain sends until its backlog has drained (a peer that reads
//! slowly would make every quick send fail).

use super::tag::{pack, unpack, Op, Tag};
use super::{UringLoop, NO_BUFFER};
use c1m_platform::quick::QuickSend;
use io_uring::types::Fixed;
use io_uring::{opcode, squeue};

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
        let quick = quick.then_some(QuickSend { user_data, len });
        self.push_counted(entry, quick);
    }

    /// Settles every quick send that an enter has consumed: one with a completion in
    /// `batch` (or seen earlier) was short and is handled by that completion; the others
    /// sent everything. Call after collecting the CQ, before walking `batch`.
    pub(super) fn settle(&mut self, batch: &[(u64, i32, u32)], consumed: u64, overflow: bool) {
        for &(user_data, _, _) in batch {
            if unpack(user_data).op == Some(Op::SendQuick) {
                self.quick.note_short(user_data);
            }
        }
        while let Some(p) = self.quick.next_settled(consumed, overflow) {
            self.on_send_result(unpack(p.user_data), p.len as i32);
        }
    }

    /// True when a quick send not yet settled holds up work that no completion will wake
    /// the loop for: its connection has more to send behind it, waits for it to resume
    /// reading or to close, or connections wait for receive buffers it holds. Then the loop
    /// settles before it sleeps. A lone answer holds up nothing: the loop sleeps at once,
    /// in the enter that sent it.
    pub(super) fn quick_holds_up_work(&self) -> bool {
        if self.quick.is_empty() {
            return false;
        }
        if !self.starved.is_empty() {
            return true;
        }
        self.quick.pending().any(|p| {
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
