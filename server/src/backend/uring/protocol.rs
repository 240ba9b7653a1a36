//! The protocol data path (`--protocol frame|http`). Each received buffer is fed to the
//! protocol layer ([`crate::proto`]) and goes back to the kernel at once: whatever the
//! protocol needs later (the start of an incomplete request) it copied into the
//! connection's [`Session`], and its answers went to the connection's [`Outbox`]. Sends
//! read the outbox's front buffer, which never moves while a send is in flight (new
//! answers go to its back buffer); one send per connection is in flight at a time.
//!
//! Memory: echo mode has none of this (`UringLoop::proto` is `None`). In protocol mode
//! every slot in use has one [`ProtoConn`] (an empty `Session` and `Outbox`, no heap
//! memory while the connection is idle: the outbox gives its buffers back whenever it
//! drains, the session keeps at most a small buffer after a split request).

use super::tag::{pack, Op, Tag};
use super::{CloseReason, UringLoop};
use crate::conn::ReadControl;
use crate::proto::{End, Outbox, Protocol, Session};
use std::collections::HashMap;

/// The buffer-id field of a protocol send's `user_data`: its bytes are in the
/// connection's outbox, not in a receive buffer.
const OUTBOX_SEND: u16 = 0;

/// One connection's protocol state.
#[derive(Debug, Default)]
pub(super) struct ProtoConn {
    session: Session,
    outbox: Outbox,
}

/// The protocol state of a loop in frame/http mode.
pub(super) struct ProtoState {
    protocol: Protocol,
    /// Indexed by fixed-file slot, like `UringLoop::conns`.
    conns: Vec<ProtoConn>,
    /// Outboxes of connections that closed while a send read from them, kept until that
    /// send completes (the kernel may still be reading them), by the send's `user_data`.
    parked: HashMap<u64, Outbox>,
}

impl ProtoState {
    /// `None` for echo, which needs no per-connection protocol state at all.
    pub(super) fn new(protocol: &Protocol, slots: usize) -> Option<Self> {
        (!protocol.is_echo()).then(|| Self {
            protocol: protocol.clone(),
            // Reserved, not touched: only slots in use become resident.
            conns: Vec::with_capacity(slots),
            parked: HashMap::new(),
        })
    }

    /// A connection opened in `slot`: it starts with an empty session and outbox.
    pub(super) fn open(&mut self, slot: u32) {
        let index = slot as usize;
        if index >= self.conns.len() {
            self.conns.resize_with(index + 1, ProtoConn::default);
        }
        self.conns[index] = ProtoConn::default();
    }

    /// The connection in `slot` (generation `gen`) closed: its state is dropped, except an
    /// outbox that a send in flight still reads, which waits for that send's completion.
    pub(super) fn close(&mut self, slot: u32, gen: u16, send_in_flight: bool) {
        let Some(conn) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let ProtoConn { outbox, .. } = std::mem::take(conn);
        if send_in_flight {
            self.parked.insert(send_user_data(gen, slot), outbox);
        }
    }
}

impl ProtoState {
    /// True when the connection in `slot` has work behind its send of `in_flight` bytes:
    /// more answers, or requests kept back for after the send.
    pub(super) fn more_after_send(&self, slot: u32, in_flight: usize) -> bool {
        self.conns
            .get(slot as usize)
            .is_some_and(|c| c.outbox.pending() > in_flight || c.session.has_backlog())
    }
}

/// The `user_data` of a protocol send on connection `slot`, generation `gen`.
fn send_user_data(gen: u16, slot: u32) -> u64 {
    pack(Op::Send, OUTBOX_SEND, gen, slot)
}

/// The buffer-id field of every protocol send's `user_data`.
pub(super) fn send_bid() -> u16 {
    OUTBOX_SEND
}

impl UringLoop {
    /// `n` bytes arrived for the connection in `slot`, in receive buffer `bid`.
    pub(super) fn on_request_bytes(&mut self, slot: u32, bid: u16, n: u32) {
        self.answer(slot, Some((bid, n)));
    }

    /// Feeds the protocol what arrived (`received`: buffer and length), or nothing, to
    /// answer the requests its backlog kept; queues the answers and sends.
    fn answer(&mut self, slot: u32, received: Option<(u16, u32)>) {
        let Some(p) = self.proto.as_mut() else {
            return;
        };
        let ProtoConn { session, outbox } = &mut p.conns[slot as usize];
        let input = match received {
            Some((bid, n)) => self.buffers.data(bid, n as usize),
            None => &[],
        };
        let out = outbox.back();
        let before = out.len();
        let fed = p.protocol.feed(session, input, out);
        let produced = out.len() - before;
        let now = self.clock.now();
        let conn = &mut self.conns[slot as usize];
        let control = conn.state.on_parsed(produced, session, now, &self.limits);
        // Every byte was answered or copied into the session: the buffer is free again.
        if let Some((bid, _)) = received {
            self.give_back(bid);
        }
        if fed.requests > 0 {
            self.stats.requests.add(u64::from(fed.requests));
        }
        let conn = &mut self.conns[slot as usize];
        if let Some(end) = fed.end {
            if end == End::Error {
                self.stats.proto_errors.add(1);
            }
            // Close once the answers are sent. The recv stays armed: what else arrives is
            // read and ignored, so the close is less likely to find unread data (which
            // would make it a reset).
            conn.state.on_last_response();
            if conn.state.finished() {
                return self.close_conn(slot, CloseReason::Finished);
            }
        } else if control == ReadControl::Pause {
            // Too much unsent to this peer: stop reading it until the outbox drains.
            self.cancel_recv(slot);
        }
        self.send_outbox(slot);
    }

    /// Starts sending what the connection's outbox holds, unless a send is in flight. An
    /// outbox with nothing left gives its memory back.
    fn send_outbox(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        if conn.send_in_flight || !conn.open {
            return;
        }
        let Some(p) = self.proto.as_mut() else {
            return;
        };
        let outbox = &mut p.conns[slot as usize].outbox;
        let Some(bytes) = outbox.to_send() else {
            outbox.clear();
            return;
        };
        // A short send is resumed from where it stopped; ConnState bounds the outbox far
        // below 4 GiB, the cap only keeps the cast honest.
        let len = bytes.len().min(u32::MAX as usize) as u32;
        let ptr = bytes.as_ptr();
        self.push_send(slot, OUTBOX_SEND, ptr, len);
    }

    /// A send from the connection's outbox completed.
    pub(super) fn on_outbox_sent(&mut self, tag: Tag, result: i32) {
        if !self.is_live(tag) {
            // The connection closed while this send was in flight: its outbox can go.
            if let Some(p) = self.proto.as_mut() {
                p.parked.remove(&send_user_data(tag.gen, tag.slot));
            }
            return;
        }
        let slot = tag.slot as usize;
        self.conns[slot].send_in_flight = false;
        self.conns[slot].send_quick = false;
        if result < 0 {
            self.stats.conn_errors.add(1);
            return self.close_conn(tag.slot, CloseReason::Error);
        }
        let n = result as usize;
        self.stats.sends.add(1);
        self.stats.bytes_out.add(n as u64);
        // Requests the protocol kept for later (answers beyond its burst bound) are answered
        // once everything produced before them is sent.
        let mut backlog = false;
        if let Some(p) = self.proto.as_mut() {
            let pc = &mut p.conns[slot];
            pc.outbox.on_sent(n);
            backlog = pc.outbox.pending() == 0 && pc.session.has_backlog();
            if pc.outbox.pending() == 0 {
                // Caught up with the peer: quick sends again.
                self.conns[slot].send_blocked = false;
            }
        }
        let now = self.clock.now();
        let conn = &mut self.conns[slot];
        let control = conn.state.on_sent(n, now, &self.limits);
        if conn.state.finished() {
            return self.close_conn(tag.slot, CloseReason::Finished);
        }
        if control == ReadControl::Resume && conn.wants_recv() {
            self.arm_recv(tag.slot);
        }
        if backlog {
            return self.answer(tag.slot, None);
        }
        self.send_outbox(tag.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::FrameConfig;
    use std::sync::Arc;

    #[test]
    fn echo_has_no_protocol_state() {
        assert!(ProtoState::new(&Protocol::Echo, 1000).is_none());
    }

    #[test]
    fn protocol_state_per_connection_is_small() {
        // What a million idle connections cost in frame/http mode, beyond echo's `Conn`.
        assert!(std::mem::size_of::<ProtoConn>() <= 120);
    }

    #[test]
    fn a_closed_connection_keeps_only_an_outbox_being_sent() {
        let protocol = Protocol::Frame(Arc::new(FrameConfig::new(1024, None, 4096)));
        let mut p = ProtoState::new(&protocol, 8).expect("frame has state");
        p.open(5);
        assert_eq!(p.conns.len(), 6);
        p.conns[5].outbox.back().extend_from_slice(b"answer");
        p.close(5, 7, true);
        assert_eq!(p.conns[5].outbox.pending(), 0);
        assert_eq!(p.parked.len(), 1);
        assert!(p.parked.remove(&send_user_data(7, 5)).is_some());
        p.open(5);
        p.conns[5].outbox.back().extend_from_slice(b"answer");
        p.close(5, 8, false);
        assert!(p.parked.is_empty());
    }
}
