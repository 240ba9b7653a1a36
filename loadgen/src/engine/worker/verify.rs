//! Sends completing and echoes coming back: every received byte is checked against the
//! copy that was sent, message by message.

use super::*;

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
        if c.tx_sent < c.tx_seq * self.size as u64 && !c.dirty {
            c.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Checks received bytes against the sent copy, message by message.
    pub(super) fn on_data(&mut self, slot: u32, data: &[u8]) {
        let j = slot as usize;
        let size = self.size;
        let mut p = 0;
        while p < data.len() {
            let c = &mut self.conns[j];
            if c.st != St::Open && c.st != St::ShutSent {
                return;
            }
            if c.rx_seq >= c.tx_seq {
                // More bytes than were ever sent on this connection.
                self.verify_errors += 1;
                self.shared.errors.fetch_add(1, Ordering::Relaxed);
                self.lose(slot, "verify: bytes beyond what was sent".into());
                return;
            }
            let off = c.rx_off as usize;
            let take = (size - off).min(data.len() - p);
            let base = j * self.ring_bytes + (c.rx_seq % self.cap) as usize * size;
            let sent = &self.txbuf[base + off..base + off + take];
            if sent != &data[p..p + take] {
                c.bad = true;
            }
            p += take;
            c.rx_off += take as u32;
            if c.rx_off as usize == size {
                let bad = c.bad;
                c.bad = false;
                c.rx_off = 0;
                c.rx_seq += 1;
                let ts = proto::timestamp(&self.txbuf[base..base + size]);
                self.message_done(slot, bad, ts);
            }
        }
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
            let _ = self.ivl.record(latency);
            if self.in_window() {
                let _ = self.measured.record(latency);
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
