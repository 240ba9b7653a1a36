//! Idle connections without an armed recv (`--idle-after-ms`), as in the server's
//! `backend/uring/idle.rs`: a connection with no echo outstanding that has been quiet
//! for the idle time has its multishot recv cancelled ("parked") and a one-shot poll for
//! input armed instead, which holds less kernel memory. A message queued on a parked
//! connection leaves the poll armed: the echo fires it, a one-shot recv reads the echo,
//! and the poll is armed again, so a heartbeat costs no cancel (a cancel walks a bucket
//! of the ring's cancel hash, ~80 requests at 20,000 armed: parking each heartbeat by
//! cancel took 45% of the CPU of a 1M hold). A poll that fires sooner than the idle time
//! after the last input means the connection talks again: its multishot recv comes back.
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
    /// A one-shot poll for input: it fires when the echo of a queued message (or
    /// anything else) arrives.
    Poll,
    /// A one-shot recv of a parked connection whose poll fired after a quiet spell: when
    /// it has read, the poll is armed again (the connection stays parked, no cancel).
    Once,
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
        self.arm_poll(slot);
        true
    }

    /// Arms the one-shot poll of a parked connection.
    pub(super) fn arm_poll(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        c.watch = Watch::Poll;
        let e = opcode::PollAdd::new(types::Fixed(slot), libc::POLLIN as u32)
            .build()
            .user_data(pack(OP_POLL, c.gen, slot));
        self.sqes.push((e, false));
        self.parked += 1;
    }

    /// A one-shot recv into a provided buffer (length 0: the buffer's own), for a parked
    /// connection whose poll fired after a quiet spell.
    fn arm_recv_once(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        c.watch = Watch::Once;
        let e = opcode::Recv::new(types::Fixed(slot), std::ptr::null_mut(), 0)
            .buf_group(self.bgid)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
            .user_data(pack(OP_RECV, c.gen, slot));
        self.sqes.push((e, false));
    }

    /// Data arrived: the connection is not idle.
    pub(super) fn note_input(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        c.t_quiet = self.now;
        if c.watch == Watch::Parking {
            c.watch = Watch::ParkingBusy;
        }
    }

    /// A message is queued on the connection: its echo needs a recv. One being parked
    /// gets it when the cancel is done; a parked one keeps its poll, which the echo fires.
    pub(super) fn unpark_for_send(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        if c.watch == Watch::Parking {
            c.watch = Watch::ParkingBusy;
        }
    }

    /// The poll of a parked connection fired (an echo, or an EOF or an error): a recv
    /// reads it and says which. After a quiet spell of the idle time since the last
    /// input, a one-shot recv, and the connection stays parked; sooner, the multishot.
    pub(super) fn on_poll(&mut self, slot: u32, gen: u32) {
        let j = slot as usize;
        if j < self.n && self.conns[j].gen == gen && self.conns[j].watch == Watch::Poll {
            self.conns[j].watch = Watch::Off;
            if self.conns[j].st == St::Open {
                let quiet = self.now.saturating_sub(self.conns[j].t_quiet)
                    >= self.idle_after_ns.unwrap_or(u64::MAX);
                if quiet {
                    self.arm_recv_once(slot);
                } else {
                    self.arm_recv(slot);
                }
            }
        }
    }
}
