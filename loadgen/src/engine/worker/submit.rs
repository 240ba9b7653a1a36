//! Handing work to the kernel: queued SQEs into the submission queue (never splitting a
//! linked pair), the sleeping enter with its timeout and batch, and the non-sleeping one.

use super::*;

impl Loop {
    /// Submits what is queued and runs the ring's deferred completion work, without
    /// sleeping (on a DEFER_TASKRUN ring only an enter with GETEVENTS runs that work).
    pub(super) fn enter_nowait(&mut self) -> anyhow::Result<()> {
        self.push_sqes()?;
        let to_submit = self.ring.submission().len() as u32;
        self.core.enters += 1;
        // SAFETY: a plain enter with no argument structure; the SQEs it submits point
        // only into memory this loop owns (see `push_sqes`).
        let r = unsafe {
            self.ring.submitter().enter::<libc::sigset_t>(
                to_submit,
                0,
                IORING_ENTER_GETEVENTS,
                None,
            )
        };
        match r {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EBUSY)) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("io_uring_enter failed: {e}")),
        }
    }

    /// Pushes the queued SQEs (never splitting a linked pair across submissions) and
    /// makes one `io_uring_enter` that submits and waits up to `timeout_ns`.
    pub(super) fn submit_and_wait(&mut self, timeout_ns: u64) -> anyhow::Result<()> {
        self.push_sqes()?;
        let c = &mut self.core;
        let ts = types::Timespec::new()
            .sec(timeout_ns / SECOND)
            .nsec((timeout_ns % SECOND) as u32);
        let (want, min_wait_us) = c.wait_batch();
        let args = types::SubmitArgs::new()
            .timespec(&ts)
            .min_wait_usec(min_wait_us);
        c.enters += 1;
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow::anyhow!("io_uring_enter failed: {e}")),
        }
    }

    /// Moves the queued SQEs into the SQ, submitting whenever it fills (never splitting a
    /// linked pair across submissions); what is left is submitted by the next enter.
    pub(super) fn push_sqes(&mut self) -> anyhow::Result<()> {
        let c = &mut self.core;
        let mut i = 0;
        while i < c.sqes.len() {
            let mut pushed = 0;
            {
                let mut sq = self.ring.submission();
                sq.sync();
                let room = sq.capacity() - sq.len();
                let mut n = room.min(c.sqes.len() - i);
                if i + n < c.sqes.len() && n > 0 && c.sqes[i + n - 1].1 {
                    n -= 1;
                }
                for (e, _) in &c.sqes[i..i + n] {
                    // SAFETY: every entry points only into memory this loop owns for its
                    // whole life (send rings in `txbuf`, target addresses in `targets`,
                    // the connect timeout in `connect_timeout`); none of it moves or is
                    // freed before the ring is dropped, which happens first.
                    if unsafe { sq.push(e) }.is_err() {
                        break;
                    }
                    let ud = e.get_user_data();
                    let quick = (ud >> 56 == OP_SEND_QUICK).then(|| QuickSend {
                        user_data: ud,
                        len: c.conns.get(unpack(ud).2 as usize).map_or(0, |c| c.send_len),
                    });
                    c.quick.on_pushed(quick);
                    pushed += 1;
                }
            }
            i += pushed;
            if i < c.sqes.len() {
                // SQ full: hand this batch to the kernel and go on.
                match self.ring.submit() {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => break,
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                    Err(e) => return Err(anyhow::anyhow!("io_uring submit failed: {e}")),
                }
                c.enters += 1;
            }
        }
        c.sqes.drain(..i);
        Ok(())
    }
}
