//! The data path: one multishot recv per connection on the loop's provided-buffer ring.
//! Echo: each received buffer is queued on its connection and sent back from the same
//! memory, one send in flight per connection, then returned to the ring. Frame and http
//! hand the received bytes to the protocol layer instead (`protocol.rs`).

use super::tag::{pack, Op, Tag};
use super::{CloseReason, Rx, UringLoop, BUFFER_GROUP, NO_BUFFER};
use crate::conn::ReadControl;
use io_uring::types::Fixed;
use io_uring::{cqueue, opcode, squeue};

impl UringLoop {
    pub(super) fn arm_recv(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        conn.rx = Rx::Recv;
        let gen = conn.gen;
        let entry = opcode::RecvMulti::new(Fixed(slot), BUFFER_GROUP)
            .build()
            .user_data(pack(Op::Recv, 0, gen, slot));
        self.push(entry);
    }

    /// A one-shot recv into a provided buffer (of any length: 0 takes the buffer's own),
    /// for a parked connection whose poll fired (`idle.rs`).
    pub(super) fn arm_recv_once(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        conn.rx = Rx::Once;
        let gen = conn.gen;
        let entry = opcode::Recv::new(Fixed(slot), std::ptr::null_mut(), 0)
            .buf_group(BUFFER_GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
            .user_data(pack(Op::Recv, 0, gen, slot));
        self.push(entry);
    }

    /// Starts sending the head of the connection's queue, unless a send is in flight.
    pub(super) fn send_head(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        if conn.send_in_flight || conn.head == NO_BUFFER || !conn.open {
            return;
        }
        let (bid, sent) = (conn.head, conn.head_sent);
        let (ptr, len) = self.buffers.raw(bid, sent, self.buffer_len[bid as usize]);
        self.push_send(slot, bid, ptr, len);
    }

    pub(super) fn on_recv(&mut self, tag: Tag, result: i32, flags: u32) {
        let bid = cqueue::buffer_select(flags);
        if bid.is_some() {
            self.buffers_available -= 1;
        }
        let more = cqueue::more(flags);
        let slot = tag.slot as usize;
        if !self.is_live(tag) {
            // A completion for a connection that is gone: the buffer goes straight back.
            if let Some(bid) = bid {
                self.give_back(bid);
            }
            return;
        }
        // The recv ended; if it was being parked and delivered nothing since, or was the
        // one-shot recv of a parked connection, a poll takes its place below (`idle.rs`).
        let park = !more && self.conns[slot].rx == Rx::Parking;
        let once = !more && self.conns[slot].rx == Rx::Once;
        if !more {
            self.conns[slot].rx = Rx::Off;
        }
        if result > 0 {
            // Data, even after the cancel was issued: delivered, and the connection is
            // busy again.
            if self.conns[slot].rx == Rx::Parking {
                self.conns[slot].rx = Rx::Recv;
            }
            let Some(bid) = bid else {
                // Cannot happen with buffer select; treat it as a broken connection.
                self.stats.conn_errors.add(1);
                return self.close_conn(tag.slot, CloseReason::Error);
            };
            let n = result as u32;
            self.stats.recvs.add(1);
            self.stats.bytes_in.add(n as u64);
            if self.proto.is_none() {
                self.queue_echo(tag.slot, bid, n);
            } else {
                self.on_request_bytes(tag.slot, bid, n);
            }
        } else if result == 0 {
            if let Some(bid) = bid {
                self.give_back(bid);
            }
            let conn = &mut self.conns[slot];
            conn.state.on_peer_closed();
            if conn.state.finished() {
                return self.close_conn(tag.slot, CloseReason::Finished);
            }
        } else {
            if let Some(bid) = bid {
                self.give_back(bid);
            }
            match -result {
                libc::ENOBUFS => {
                    self.stats.loop_errors.add(1);
                    let conn = &mut self.conns[slot];
                    if !conn.starved {
                        conn.starved = true;
                        self.starved.push((tag.slot, conn.gen));
                    }
                }
                libc::ECANCELED => {}
                _ => {
                    self.stats.conn_errors.add(1);
                    return self.close_conn(tag.slot, CloseReason::Error);
                }
            }
        }
        if !more && self.conns[slot].wants_recv() {
            if (park && result <= 0) || (once && result > 0) {
                self.arm_poll(tag.slot);
            } else {
                self.arm_recv(tag.slot);
            }
        }
    }

    /// Echo: queues received buffer `bid` (`n` bytes) on its connection to be sent back
    /// from the same memory.
    fn queue_echo(&mut self, slot: u32, bid: u16, n: u32) {
        self.buffer_len[bid as usize] = n;
        self.buffer_next[bid as usize] = NO_BUFFER;
        let now = self.clock.now();
        let conn = &mut self.conns[slot as usize];
        if conn.tail == NO_BUFFER {
            conn.head = bid;
        } else {
            self.buffer_next[conn.tail as usize] = bid;
        }
        conn.tail = bid;
        if conn.state.on_received(n as usize, now, &self.limits) == ReadControl::Pause {
            // Too much unsent to this peer: stop reading it until the queue drains.
            self.cancel_recv(slot);
        }
        self.send_head(slot);
    }

    /// Stops the connection's multishot recv, if one is armed; its last completion
    /// (-ECANCELED, without `more`) sets `rx` to `Off`.
    pub(super) fn cancel_recv(&mut self, slot: u32) {
        let conn = &self.conns[slot as usize];
        if conn.rx == Rx::Recv {
            let entry = opcode::AsyncCancel::new(pack(Op::Recv, 0, conn.gen, slot))
                .build()
                .user_data(pack(Op::Cancel, 0, 0, 0));
            self.push(entry);
        }
    }

    /// True if the completion belongs to the connection now in its slot (not to an
    /// earlier one whose slot was reused).
    pub(super) fn is_live(&self, tag: Tag) -> bool {
        self.conns
            .get(tag.slot as usize)
            .is_some_and(|c| c.open && c.gen == tag.gen)
    }

    pub(super) fn on_send(&mut self, tag: Tag, result: i32) {
        let slot = tag.slot as usize;
        if !self.is_live(tag) {
            self.give_back(tag.bid);
            return;
        }
        self.conns[slot].send_in_flight = false;
        self.conns[slot].send_quick = false;
        if result < 0 {
            // The buffer is still the head of the queue; close_conn gives it back.
            self.stats.conn_errors.add(1);
            return self.close_conn(tag.slot, CloseReason::Error);
        }
        let n = result as u32;
        self.stats.sends.add(1);
        self.stats.bytes_out.add(n as u64);
        let now = self.clock.now();
        let conn = &mut self.conns[slot];
        debug_assert_eq!(conn.head, tag.bid);
        conn.head_sent += n;
        let control = conn.state.on_sent(n as usize, now, &self.limits);
        let buffer_done = conn.head_sent >= self.buffer_len[tag.bid as usize];
        if buffer_done {
            conn.head = self.buffer_next[tag.bid as usize];
            if conn.head == NO_BUFFER {
                conn.tail = NO_BUFFER;
                // Caught up with the peer: quick sends again.
                conn.send_blocked = false;
            }
            conn.head_sent = 0;
        }
        let (finished, rearm) = (
            conn.state.finished(),
            control == ReadControl::Resume && conn.wants_recv(),
        );
        if buffer_done {
            self.give_back(tag.bid);
        }
        if finished {
            return self.close_conn(tag.slot, CloseReason::Finished);
        }
        if rearm {
            self.arm_recv(tag.slot);
        }
        self.send_head(tag.slot);
    }
}
