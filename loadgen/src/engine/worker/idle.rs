//! Idle connections without an armed recv (`--idle-after-ms`), as in the server's
//! `backend/uring/idle.rs`: a connection with no echo outstanding that has been quiet
//! for the idle time has its multishot recv cancelled ("parked") and a one-shot poll for
//! input armed instead, which holds less kernel memory. The loop knows when it sends, so
//! a parked connection gets its recv back as its next message is queued, before the echo
//! can arrive; the poll only catches what the server sends unasked (an EOF, a reset).
//!
//! No byte is lost or read twice: data stays in the socket until a recv takes it. Data
//! that a recv delivers after its cancel was issued is handled as usual, and the recv is
//! re-armed (not parked) when it ends.

use super::*;

/// What a connection has armed to learn about input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Watch {
    Off,
    /// A multishot recv.
    Recv,
    /// The recv's cancel is in flight: when it ends, a poll takes its place...
    Parking,
    /// ... unless data came or a message was queued meanwhile: then a recv again.
    ParkingBusy,
    /// A one-shot poll for input.
    Poll,
}

impl Core {
    /// Arms the connection's multishot recv.
    pub(super) fn arm_recv(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        c.watch = Watch::Recv;
        let e = opcode::RecvMulti::new(types::Fixed(slot), self.bgid)
            .build()
            .user_data(pack(OP_RECV, c.gen, slot));
        self.sqes.push((e, false));
    }

    /// Parks the open connections with nothing outstanding that have been quiet for
    /// `--idle-after-ms`, a step of the parking walk at a time (`c1m_platform::sweep`).
    pub(super) fn park_idle(&mut self) {
        let Some(after) = self.idle_after_ns else {
            return;
        };
        let Some(slots) = self.park_sweep.due(Duration::from_nanos(self.now), self.n) else {
            return;
        };
        for slot in slots {
            let c = &mut self.conns[slot];
            let quiet = self.now.saturating_sub(c.t_quiet) >= after;
            if c.st == St::Open && c.watch == Watch::Recv && c.tx_seq == c.rx_seq && quiet {
                c.watch = Watch::Parking;
                let e = opcode::AsyncCancel::new(pack(OP_RECV, c.gen, slot as u32))
                    .build()
                    .user_data(pack(OP_CANCEL, c.gen, slot as u32));
                self.sqes.push((e, false));
            }
        }
    }

    /// The recv ended while being parked (`res`: its last status): a poll takes its place,
    /// or a recv again if the connection got busy meanwhile. True if handled here.
    pub(super) fn on_parked_recv_end(&mut self, slot: u32, res: i32) -> bool {
        let c = &mut self.conns[slot as usize];
        let was = c.watch;
        if !matches!(was, Watch::Parking | Watch::ParkingBusy) || res != -libc::ECANCELED {
            return false;
        }
        c.watch = Watch::Off;
        if c.st != St::Open {
            return true;
        }
        if was == Watch::ParkingBusy {
            self.arm_recv(slot);
            return true;
        }
        c.watch = Watch::Poll;
        let e = opcode::PollAdd::new(types::Fixed(slot), libc::POLLIN as u32)
            .build()
            .user_data(pack(OP_POLL, c.gen, slot));
        self.sqes.push((e, false));
        self.parked += 1;
        true
    }

    /// Data arrived: the connection is not idle.
    pub(super) fn note_input(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        c.t_quiet = self.now;
        if c.watch == Watch::Parking {
            c.watch = Watch::ParkingBusy;
        }
    }

    /// A message is queued on the connection: its echo needs a recv. A parked one gets
    /// it now (the poll is cancelled); one being parked gets it when the cancel is done.
    pub(super) fn unpark_for_send(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        match c.watch {
            Watch::Parking => c.watch = Watch::ParkingBusy,
            Watch::Poll => {
                let e = opcode::AsyncCancel::new(pack(OP_POLL, c.gen, slot))
                    .build()
                    .user_data(pack(OP_CANCEL, c.gen, slot));
                self.sqes.push((e, false));
                self.arm_recv(slot);
            }
            Watch::Off | Watch::Recv | Watch::ParkingBusy => {}
        }
    }

    /// The poll of a parked connection fired (input the loop did not ask for, an EOF or
    /// an error): the recv takes over and says which. A poll cancelled because a message
    /// was queued finds the recv already armed.
    pub(super) fn on_poll(&mut self, slot: u32, gen: u32) {
        let j = slot as usize;
        if j < self.n && self.conns[j].gen == gen && self.conns[j].watch == Watch::Poll {
            self.conns[j].watch = Watch::Off;
            if self.conns[j].st == St::Open {
                self.arm_recv(slot);
            }
        }
    }
}
