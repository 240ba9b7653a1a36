//! Sends completing and responses coming back: every received byte is checked, response
//! by response, against what the protocol says it must be (an echo against the copy that
//! was sent).

use super::*;
use crate::engine::proto::http_response::StreamError;

impl Core {
    pub(super) fn on_send(&mut self, slot: u32, gen: u32, res: i32) {
        let j = slot as usize;
        if j >= self.n || self.conns[j].gen != gen {
            return;
        }
        let c = &mut self.conns[j];
        c.send_busy = false;
        if res < 0 {
            if c.st == St::Open {
                self.lose(slot, errno_name(-res));
            }
            return;
        }
        c.tx_sent += res as u64;
        if c.tx_sent >= c.tx_seq * self.req_len as u64 {
            // Caught up: quick sends again (`quick.rs`).
            c.send_blocked = false;
        } else if !c.dirty {
            c.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Checks received bytes, response by response, as the protocol says.
    pub(super) fn on_data(&mut self, slot: u32, data: &[u8]) {
        match self.plan.wire.response() {
            Response::Http { body } => {
                let body = *body;
                self.on_http_data(slot, data, body);
            }
            Response::Request | Response::Fixed(_) => self.on_fixed_data(slot, data),
        }
    }

    /// The connection's stream no longer makes sense: a verify error, and the connection
    /// is dropped.
    fn broken_stream(&mut self, slot: u32, why: String) {
        self.verify_errors += 1;
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        self.lose(slot, format!("verify: {why}"));
    }

    /// True when `slot` may still take response bytes; drops it when it has none
    /// outstanding (more bytes than were ever asked for).
    fn expects_data(&mut self, slot: u32) -> bool {
        let c = &self.conns[slot as usize];
        if c.st != St::Open && c.st != St::ShutSent {
            return false;
        }
        if c.rx_seq >= c.tx_seq {
            self.broken_stream(slot, "bytes beyond what was sent".into());
            return false;
        }
        true
    }

    /// echo and frame: responses of a fixed length, each compared byte for byte with the
    /// request's copy (echo) or with the one fixed reply (frame `--reply-size`).
    fn on_fixed_data(&mut self, slot: u32, data: &[u8]) {
        let j = slot as usize;
        let mut p = 0;
        while p < data.len() {
            if !self.expects_data(slot) {
                return;
            }
            let c = &mut self.conns[j];
            let expected = match self.plan.wire.response() {
                Response::Fixed(reply) => &reply[..],
                _ => {
                    let base = j * self.ring_bytes + (c.rx_seq % self.cap) as usize * self.req_len;
                    &self.txbuf[base..base + self.resp_len]
                }
            };
            let step = c.rx.step(expected, self.framing_len, &data[p..]);
            p += step.consumed;
            if step.done.is_some_and(|done| !self.on_response(slot, done)) {
                return;
            }
        }
    }

    /// http: responses read by the connection's [`ResponseReader`]; latency from the
    /// send time in the request's copy.
    fn on_http_data(&mut self, slot: u32, data: &[u8], body: usize) {
        let mut p = 0;
        while p < data.len() {
            if !self.expects_data(slot) {
                return;
            }
            let Some(reader) = self.readers.get_mut(slot as usize) else {
                return;
            };
            let step = reader.step(&data[p..], body);
            p += step.consumed;
            match step.done {
                None if step.consumed == 0 => return,
                None => {}
                Some(done) if !self.on_response(slot, done) => return,
                Some(_) => {}
            }
        }
    }

    /// Response `rx_seq` is complete (good or bad), or the stream broke; false when the
    /// connection was dropped.
    fn on_response(&mut self, slot: u32, done: Result<bool, StreamError>) -> bool {
        let good = match done {
            Ok(good) => good,
            Err(e) => {
                self.broken_stream(slot, e.to_string());
                return false;
            }
        };
        let j = slot as usize;
        let c = &mut self.conns[j];
        let base = j * self.ring_bytes + (c.rx_seq % self.cap) as usize * self.req_len;
        c.rx_seq += 1;
        let ts = self
            .plan
            .wire
            .timestamp(&self.txbuf[base..base + self.req_len]);
        self.message_done(slot, !good, ts);
        true
    }

    pub(super) fn message_done(&mut self, slot: u32, bad: bool, ts: u64) {
        self.received_total += 1;
        self.shared
            .received
            .store(self.received_total, Ordering::Relaxed);
        if bad {
            self.verify_errors += 1;
            self.shared.errors.fetch_add(1, Ordering::Relaxed);
        } else {
            let latency = self.now.saturating_sub(ts).max(1);
            self.unrecorded += u64::from(!record_ns(&mut self.ivl, latency));
            if self.in_window() {
                self.unrecorded += u64::from(!record_ns(&mut self.measured, latency));
            }
        }
        if self.in_window() {
            self.received_measured += 1;
        }
        match self.plan.mode {
            Mode::Closed if self.phase == Phase::Load => {
                self.enqueue(slot, self.now);
            }
            Mode::Churn => {
                // The exchange is done: FIN, then wait for the server's EOF and close.
                let c = &mut self.conns[slot as usize];
                if c.st == St::Open {
                    c.st = St::ShutSent;
                    self.open -= 1;
                    self.shared.open.store(self.open, Ordering::Relaxed);
                    let e = opcode::Shutdown::new(types::Fixed(slot), libc::SHUT_WR)
                        .build()
                        .user_data(pack(OP_SHUTDOWN, c.gen, slot));
                    self.sqes.push((e, false));
                }
            }
            _ => {}
        }
    }
}
