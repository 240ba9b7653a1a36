//! Idle connections without an armed recv (`--idle-after-ms`).
//!
//! An armed multishot recv holds kernel memory besides its request (the recv's async
//! state and its internal poll entry, on top of the `io_kiocb`); a one-shot poll for
//! input holds only its request. So a connection quiet for the idle time has its recv
//! cancelled ("parked") and a poll armed in its place. When the poll fires after another
//! quiet spell (a heartbeat), a one-shot recv reads what came and the poll is armed again:
//! the connection stays parked, and no cancel is needed. A cancel finds its request in the
//! ring's cancel hash (at most 256 buckets), so with 20,000 requests armed on a ring it
//! walks ~80 of them: parking every heartbeat by cancel took 45% of a 1M loadgen's CPU.
//! When the poll fires sooner, the connection is talking again: the multishot recv is
//! armed and reads the rest. A one-shot poll rather than a multishot one: it is replaced
//! at its first event anyway, and a one-shot needs no cancel.
//!
//! No byte is lost or read twice: bytes stay in the socket until a recv takes them. A
//! recv completion with data that arrives after the cancel was issued is delivered as
//! usual and makes the connection busy again (the recv is re-armed when it ends, not
//! parked). The poll is armed only after the recv's last completion, and a poll armed on
//! a socket that already holds data fires at once.

use super::tag::{pack, Op, Tag};

/// Open connections (in the whole server) from which a new connection starts parked, by
/// default (`--start-parked-from`):
/// above the 10,000 of the equal-load and closed-loop scenarios, where every connection
/// talks at once, and far below a hold, where waiting for the idle time would have each
/// recv cancelled, and the last seconds of a ramp held armed recvs at the memory peak.
pub const START_PARKED_FROM: usize = 16_384;
use super::{Rx, UringLoop};
use io_uring::opcode;
use io_uring::types::Fixed;
use std::ops::Range;

impl UringLoop {
    /// Parks the connections among `slots` whose recv saw no traffic for `after_ms`.
    pub(super) fn park_idle(&mut self, after_ms: u32, slots: Range<usize>) {
        let now = self.clock.now();
        for slot in slots {
            let c = &self.conns[slot];
            if c.open && c.rx == Rx::Recv && c.state.quiet_ms(now) >= after_ms {
                let entry = opcode::AsyncCancel::new(pack(Op::Recv, 0, c.gen, slot as u32))
                    .build()
                    .user_data(pack(Op::Cancel, 0, 0, 0));
                self.conns[slot].rx = Rx::Parking;
                self.push(entry);
            }
        }
    }

    /// Arms the one-shot poll that stands in for the recv of a parked connection.
    pub(super) fn arm_poll(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        conn.rx = Rx::Poll;
        let entry = opcode::PollAdd::new(Fixed(slot), libc::POLLIN as u32)
            .build()
            .user_data(pack(Op::Poll, 0, conn.gen, slot));
        self.stats.parked.add(1);
        self.push(entry);
    }

    /// The poll of a parked connection fired (input, end of stream or an error): a recv
    /// finds out which. After a quiet spell of the idle time it is a one-shot recv and the
    /// connection stays parked (a heartbeat); sooner, it talks again: a multishot recv.
    pub(super) fn on_poll(&mut self, tag: Tag, _result: i32) {
        if !self.is_live(tag) {
            return;
        }
        let now = self.clock.now();
        let after_ms = self.idle_after_ms.unwrap_or(u32::MAX);
        let conn = &mut self.conns[tag.slot as usize];
        if conn.rx != Rx::Poll {
            return;
        }
        conn.rx = Rx::Off;
        self.stats.woken.add(1);
        if conn.wants_recv() {
            if conn.state.quiet_ms(now) >= after_ms {
                self.stats.woken_parked.add(1);
                self.arm_recv_once(tag.slot);
            } else {
                self.arm_recv(tag.slot);
            }
        }
    }
}
