//! The accept path: one multishot accept per listener into auto-allocated direct
//! descriptors, and refusals when the fixed-file table or `--max-conns` is full.

use super::tag::{pack, Op};
use super::{Conn, UringLoop, ACCEPT_BACKOFF};
use crate::conn::ConnState;
use crate::refuse::{refuse_pending, Refusal};
use io_uring::types::Fd;
use io_uring::{cqueue, opcode};
use std::os::fd::AsRawFd;
use std::time::Instant;

impl UringLoop {
    pub(super) fn arm_accept(&mut self, listener: usize) {
        let fd = self.listeners[listener].as_raw_fd();
        let entry = opcode::AcceptMulti::new(Fd(fd))
            .allocate_file_index(true)
            .build()
            .user_data(pack(Op::Accept, 0, 0, listener as u32));
        self.push(entry);
    }

    pub(super) fn on_accept(&mut self, listener: usize, result: i32, flags: u32) {
        if result >= 0 {
            let slot = result as u32;
            // `accepted` counts served connections only, so accepted - closed = open.
            if self.counts.try_open(self.limits.max_conns) {
                self.stats.accepted.add(1);
                self.open_conn(slot);
            } else {
                self.stats.refused(Refusal::MaxConns, 1);
                self.close_slot(slot);
            }
        } else if result == -libc::ENFILE {
            // The fixed-file table is full. The kernel accepted the connection and, with
            // no slot for it, closed it: one refused. Whatever else waits in the backlog
            // cannot get a slot either: accept it as an ordinary fd and close it now,
            // rather than leave those clients waiting for a slot that may never free.
            let fd = self.listeners[listener].as_raw_fd();
            let drained = refuse_pending(fd, &mut self.spare);
            self.stats.refused(Refusal::FixedTable, 1 + drained.refused);
            if drained.stuck {
                // Even an ordinary accept fails: do not spin on the same error.
                self.stats.loop_errors.add(1);
                if !cqueue::more(flags) {
                    self.accept_paused_until[listener] = Some(Instant::now() + ACCEPT_BACKOFF);
                }
                return;
            }
        } else {
            self.stats.loop_errors.add(1);
        }
        if !cqueue::more(flags) && self.accept_paused_until[listener].is_none() {
            self.arm_accept(listener);
        }
    }

    pub(super) fn open_conn(&mut self, slot: u32) {
        let index = slot as usize;
        if index >= self.conns.len() {
            self.conns.resize(index + 1, Conn::default());
        }
        let conn = &mut self.conns[index];
        *conn = Conn {
            state: ConnState::new(self.clock.now()),
            gen: conn.gen,
            open: true,
            ..Conn::default()
        };
        if let Some(p) = self.proto.as_mut() {
            p.open(slot);
        }
        // A server holding many connections parks new ones at once (`idle.rs`): most
        // are quiet, and parking each later costs a cancel. One that talks at once
        // gets its multishot recv at its first message.
        if self.idle_after_ms.is_some() && self.counts.open() >= self.start_parked_from {
            self.arm_poll(slot);
        } else {
            self.arm_recv(slot);
        }
    }
}
