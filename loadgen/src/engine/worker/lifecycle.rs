//! Connection lifecycle of a loop: starting connects, connect completions, failed connects, losses by
//! cause, closing a slot and what a slot does next.

use super::*;

impl Core {
    pub(super) fn on_connect(&mut self, slot: u32, gen: u32, res: i32) {
        let j = slot as usize;
        if j >= self.n || self.conns[j].gen != gen || self.conns[j].st != St::Connecting {
            return;
        }
        self.connecting -= 1;
        if res < 0 {
            // -ECANCELED here means the linked timeout fired first.
            let name = if -res == libc::ECANCELED {
                "ETIMEDOUT".to_string()
            } else {
                errno_name(-res)
            };
            self.connect_failed(slot, name, true);
            return;
        }
        let c = &mut self.conns[j];
        c.st = St::Open;
        c.t_quiet = self.now;
        let latency = self.now.saturating_sub(c.t_connect).max(1);
        self.unrecorded += u64::from(!record_ns(&mut self.connect_hist, latency));
        self.connects_ok += 1;
        self.shared
            .connects_ok
            .store(self.connects_ok, Ordering::Relaxed);
        if self.in_window() {
            self.connects_measured += 1;
        }
        if self.phase == Phase::Ramp {
            self.last_ramp_established_ns = Some(self.now);
        }
        self.open += 1;
        self.peak_open = self.peak_open.max(self.open);
        self.shared.open.store(self.open, Ordering::Relaxed);
        // A heartbeat connection is quiet between beats: it starts parked (`idle.rs`),
        // rather than have its recv cancelled after the idle time.
        if self.idle_after_ns.is_some() && matches!(self.plan.mode, Mode::Heartbeat(_)) {
            self.arm_poll(slot);
        } else {
            self.arm_recv(slot);
        }
        if self.phase == Phase::Load {
            self.kick(slot);
        }
    }

    /// Counts a failed connect; frees the slot (churn tries the slot again).
    pub(super) fn connect_failed(&mut self, slot: u32, name: String, registered: bool) {
        *self.connect_errors.entry(name).or_default() += 1;
        self.connects_failed += 1;
        self.shared
            .connects_failed
            .store(self.connects_failed, Ordering::Relaxed);
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        let c = &mut self.conns[slot as usize];
        if registered {
            c.st = St::Closing;
            let e = opcode::Close::new(types::Fixed(slot))
                .build()
                .user_data(pack(OP_CLOSE, c.gen, slot));
            self.sqes.push((e, false));
        } else {
            c.st = St::Dead;
            if self.plan.mode == Mode::Churn && self.phase == Phase::Load {
                c.st = St::Idle;
                self.to_connect.push_back(slot);
            }
        }
    }

    /// The receive's own status: EOF, errors, and re-arming a multishot that ended.
    pub(super) fn on_recv_status(&mut self, slot: u32, res: i32, more: bool) {
        let j = slot as usize;
        // A parked connection's one-shot recv that read its echo: back to the poll.
        let once = !more && self.conns[j].watch == idle::Watch::Once;
        if res > 0 {
            self.note_input(slot);
        }
        if !more && self.on_parked_recv_end(slot, res) {
            return;
        }
        if !more {
            self.conns[j].watch = idle::Watch::Off;
        }
        let st = self.conns[j].st;
        if res == 0 {
            if st == St::ShutSent {
                self.close_slot(slot);
            } else if st == St::Open {
                self.lose(slot, "EOF from server".into());
            }
            return;
        }
        if res < 0 && res != -libc::ENOBUFS {
            if st == St::Open || st == St::ShutSent {
                self.lose(slot, errno_name(-res));
            }
            return;
        }
        // Data, or out of buffers (-ENOBUFS: they are back by the next submit).
        if once && res > 0 && st == St::Open {
            self.arm_poll(slot);
        } else if !more && matches!(st, St::Open | St::ShutSent) {
            self.arm_recv(slot);
        }
    }

    pub(super) fn on_shutdown_failed(&mut self, slot: u32, gen: u32, res: i32) {
        let j = slot as usize;
        if j < self.n && self.conns[j].gen == gen && self.conns[j].st == St::ShutSent {
            self.lose(slot, errno_name(-res));
        }
    }

    /// A connection lost after it was established: counted by cause, closed.
    pub(super) fn lose(&mut self, slot: u32, cause: String) {
        *self.connection_errors.entry(cause).or_default() += 1;
        let c = &self.conns[slot as usize];
        self.lost_echoes += c.tx_seq - c.rx_seq;
        if c.rx_seq == 0 {
            self.closed_before_echo += 1;
        }
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        self.close_slot(slot);
    }

    /// Cancels the receive if it is still armed (it holds the socket open) and removes
    /// the socket from the fixed table.
    pub(super) fn close_slot(&mut self, slot: u32) {
        let c = &mut self.conns[slot as usize];
        if matches!(c.st, St::Closing | St::Idle | St::Dead) {
            return;
        }
        if c.st == St::Open {
            self.open -= 1;
            self.shared.open.store(self.open, Ordering::Relaxed);
        }
        c.st = St::Closing;
        let armed = match c.watch {
            idle::Watch::Off => None,
            idle::Watch::Poll => Some(OP_POLL),
            _ => Some(OP_RECV),
        };
        if let Some(op) = armed {
            let e = opcode::AsyncCancel::new(pack(op, c.gen, slot))
                .build()
                .user_data(pack(OP_CANCEL, c.gen, slot));
            self.sqes.push((e, false));
        }
        let e = opcode::Close::new(types::Fixed(slot))
            .build()
            .user_data(pack(OP_CLOSE, c.gen, slot));
        self.sqes.push((e, false));
    }

    pub(super) fn on_close(&mut self, slot: u32, gen: u32) {
        let j = slot as usize;
        if j >= self.n || self.conns[j].gen != gen || self.conns[j].st != St::Closing {
            return;
        }
        // Churn opens the slot again; a connect that failed during the ramp is not
        // retried (the ramp would never end against a server that refuses).
        let churn_again =
            self.plan.mode == Mode::Churn && self.phase == Phase::Load && !self.stopped_early;
        let c = &mut self.conns[j];
        if churn_again {
            c.st = St::Idle;
            self.to_connect.push_back(slot);
        } else {
            // Lost (or a failed connect): not tried again outside churn.
            c.st = if c.rx_seq == c.tx_seq && self.plan.mode == Mode::Churn {
                St::Idle
            } else {
                St::Dead
            };
        }
    }
}

impl Loop {
    /// Opens sockets for slots waiting to connect, within the in-flight and rate limits.
    pub(super) fn start_connects(&mut self) {
        loop {
            let c = &mut self.core;
            if c.connecting >= c.max_connecting {
                break;
            }
            if let Some(rate) = c.connect_rate {
                let allowed = (c.now.saturating_sub(c.ramp_start) as f64 * rate / 1e9) as u64 + 1;
                if c.connects_started >= allowed {
                    break;
                }
            }
            let Some(slot) = c.to_connect.pop_front() else {
                break;
            };
            self.connect(slot);
        }
    }

    /// Socket (a normal fd, for bind and socket options), into fixed slot `slot`, fd
    /// closed at once; then a connect on the fixed slot with a linked timeout.
    pub(super) fn connect(&mut self, slot: u32) {
        let c = &mut self.core;
        c.connects_started += 1;
        if c.first_connect_ns.is_none() {
            c.first_connect_ns = Some(c.now);
        }
        let j = slot as usize;
        let ti = usize::from(c.target_index[j]);
        let target = c.plan.targets[ti];
        let registered = client_socket(target, c.sources[j]).and_then(|sock| {
            self.ring
                .submitter()
                .register_files_update(slot, &[sock.as_raw_fd()])
                .map(drop)
            // `sock` closes here: the fixed table holds its own reference.
        });
        let c = &mut self.core;
        if let Err(e) = registered {
            let name = e.raw_os_error().map_or_else(|| e.to_string(), errno_name);
            c.connect_failed(slot, name, false);
            return;
        }
        let conn = &mut c.conns[j];
        conn.gen = conn.gen.wrapping_add(1) & 0xFF_FFFF;
        conn.incarnation = conn.incarnation.wrapping_add(1);
        conn.st = St::Connecting;
        conn.t_connect = c.now;
        conn.tx_seq = 0;
        conn.rx_seq = 0;
        conn.tx_sent = 0;
        conn.rx = FixedReader::new();
        conn.send_busy = false;
        conn.send_blocked = false;
        conn.watch = idle::Watch::Off;
        let gen = conn.gen;
        if let Some(r) = c.readers.get_mut(j) {
            r.reset();
        }
        let addr = &c.targets[ti];
        let connect = opcode::Connect::new(types::Fixed(slot), addr.as_ptr().cast(), addr.len())
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(pack(OP_CONNECT, gen, slot));
        let timeout = opcode::LinkTimeout::new(&c.connect_timeout)
            .build()
            .user_data(pack(OP_TIMEOUT, gen, slot));
        c.sqes.push((connect, true));
        c.sqes.push((timeout, false));
        c.connecting += 1;
    }
}
