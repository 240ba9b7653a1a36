//! The ledger of quick sends, shared by the server's uring backend and the loadgen.
//!
//! A plain send posts a completion. At partial load that costs a second enter per message:
//! the send completes inside the enter that submitted it, so that enter's wait for one
//! completion returns at once with it, and only the next enter sleeps until the peer's
//! next message. A quick send carries `MSG_DONTWAIT | MSG_WAITALL` and
//! `IOSQE_CQE_SKIP_SUCCESS`: the kernel tries it once, inline, in the submitting enter;
//! with `MSG_DONTWAIT` it never waits for socket space (`REQ_F_NOWAIT`: no poll is armed,
//! no worker takes it), and anything short of the whole buffer (`MSG_WAITALL`) is a
//! failure, which cancels the skip and posts a completion carrying the bytes sent (or
//! -EAGAIN). So once the enter that consumed the SQE has returned, the send is over:
//! either its completion is in the CQ, or everything was sent.
//!
//! Which SQEs an enter consumed: the loop counts every SQE it pushes (`on_pushed`); the
//! kernel's SQ head says how many it took. A loop settles after collecting the CQ: each
//! quick-send completion in the batch is noted (`note_short`), then every consumed quick
//! send without one is over and sent everything (`next_settled`). A completion that
//! overflowed the CQ may show up later: while the CQ reports an overflow, nothing is
//! settled.

use std::collections::{HashMap, VecDeque};

/// A quick send: its `user_data` and how many bytes it asked to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuickSend {
    pub user_data: u64,
    pub len: u32,
}

/// A loop's quick sends not yet settled.
#[derive(Debug, Default)]
pub struct QuickSends {
    /// Quick sends are on (the kernel can skip completions, and the flags allow it).
    pub enabled: bool,
    /// SQEs pushed since the ring was made.
    pushed: u64,
    /// (number of the SQE, the send), in push order.
    pending: VecDeque<(u64, QuickSend)>,
    /// Completions (short sends) seen before their send was settled, by user_data, with a
    /// count: with the CQ overflowing, a connection's short send can be handled before it
    /// is settled and its next one (the same user_data) be pending already.
    short: HashMap<u64, u32>,
}

impl QuickSends {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            ..Self::default()
        }
    }

    /// Counts one SQE pushed to the ring (call for every SQE, in push order); `quick`:
    /// the quick send it carries, if it does.
    pub fn on_pushed(&mut self, quick: Option<QuickSend>) {
        if let Some(q) = quick {
            self.pending.push_back((self.pushed, q));
        }
        self.pushed += 1;
    }

    /// How many SQEs the kernel has consumed, given how many are still queued. Read it
    /// once, before handling a batch (handling pushes more).
    pub fn consumed(&self, sq_len: usize) -> u64 {
        self.pushed - sq_len as u64
    }

    /// A completion of the quick send `user_data` was collected: it was short, and its
    /// completion is handled instead of settling it.
    pub fn note_short(&mut self, user_data: u64) {
        *self.short.entry(user_data).or_default() += 1;
    }

    /// The next quick send that is over and sent everything: consumed (its number below
    /// `consumed`) and without a completion. None when there is no more, or while the CQ
    /// `overflow`s (a short send's completion may still be in the kernel's list).
    pub fn next_settled(&mut self, consumed: u64, overflow: bool) -> Option<QuickSend> {
        if overflow {
            return None;
        }
        while let Some(&(seq, q)) = self.pending.front() {
            if seq >= consumed {
                return None;
            }
            self.pending.pop_front();
            match self.short.get_mut(&q.user_data) {
                Some(n) => {
                    *n -= 1;
                    if *n == 0 {
                        self.short.remove(&q.user_data);
                    }
                }
                None => return Some(q),
            }
        }
        None
    }

    /// Quick sends not settled yet, in push order.
    pub fn pending(&self) -> impl Iterator<Item = QuickSend> + '_ {
        self.pending.iter().map(|&(_, q)| q)
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(user_data: u64) -> Option<QuickSend> {
        Some(QuickSend { user_data, len: 10 })
    }

    fn settled(qs: &mut QuickSends, consumed: u64, overflow: bool) -> Vec<u64> {
        std::iter::from_fn(|| qs.next_settled(consumed, overflow))
            .map(|s| s.user_data)
            .collect()
    }

    #[test]
    fn consumed_sends_without_a_completion_settle_in_order() {
        let mut qs = QuickSends::new(true);
        qs.on_pushed(None);
        qs.on_pushed(q(1));
        qs.on_pushed(q(2));
        qs.on_pushed(q(3));
        // The kernel took three of four SQEs: sends 1 and 2; 2 came back short.
        let consumed = qs.consumed(1);
        assert_eq!(consumed, 3);
        qs.note_short(2);
        assert_eq!(settled(&mut qs, consumed, false), vec![1]);
        assert_eq!(qs.pending().map(|s| s.user_data).collect::<Vec<_>>(), [3]);
        assert_eq!(
            {
                let c = qs.consumed(0);
                settled(&mut qs, c, false)
            },
            vec![3]
        );
        assert!(qs.is_empty());
    }

    #[test]
    fn nothing_settles_while_the_cq_overflows() {
        let mut qs = QuickSends::new(true);
        qs.on_pushed(q(7));
        assert_eq!(
            {
                let c = qs.consumed(0);
                settled(&mut qs, c, true)
            },
            Vec::<u64>::new()
        );
        assert!(!qs.is_empty());
        assert_eq!(
            {
                let c = qs.consumed(0);
                settled(&mut qs, c, false)
            },
            vec![7]
        );
    }

    #[test]
    fn a_repeated_user_data_counts_its_completions() {
        let mut qs = QuickSends::new(true);
        qs.on_pushed(q(5));
        qs.on_pushed(q(5));
        // One completion for the first; the second sent everything.
        qs.note_short(5);
        assert_eq!(
            {
                let c = qs.consumed(0);
                settled(&mut qs, c, false)
            },
            vec![5]
        );
        assert!(qs.is_empty());
    }
}
