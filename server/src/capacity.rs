//! Saying which limit the server hit: the first refusal of each kind at once, then at
//! most one line per [`REPEAT`], each naming the limit, how many were refused, and the fix.

use crate::config::Backend;
use crate::stats::Totals;
use std::time::{Duration, Instant};

/// Least time between two lines about the same limit.
pub const REPEAT: Duration = Duration::from_secs(5);

/// What the server holds, for the messages.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    pub backend: Backend,
    pub rings: usize,
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    pub max_conns: Option<usize>,
    pub fixed_slots: Option<u32>,
}

impl Capacity {
    /// The start-up line of the uring backend: how many connections its tables hold.
    pub fn uring_startup_line(&self) -> Option<String> {
        let slots = self.fixed_slots?;
        let total = slots as u64 * self.rings as u64;
        Some(match self.max_conns {
            Some(max) => format!(
                "c1m-server: uring: {} x {slots} fixed-file slots ({total} in all) for \
                 --max-conns {max}",
                self.rings_text()
            ),
            None => format!(
                "c1m-server: uring: holds up to {total} connections ({} x {slots} \
                 fixed-file slots; one table may hold at most RLIMIT_NOFILE {} slots); \
                 connections past a full table are refused. Give --max-conns N to size the \
                 tables for N connections.",
                self.rings_text(),
                self.nofile_soft
            ),
        })
    }

    fn fixed_table_line(&self, refused: u64) -> String {
        format!(
            "c1m-server: refusing connections: the fixed-file table is full ({} slots per ring, \
             {}); {refused} refused so far. Fix: start with --max-conns N to size the \
             rings for N connections (more rings are made when one table cannot hold its \
             share), raise `ulimit -n` (a table holds at most RLIMIT_NOFILE {} slots), or run \
             more server processes on the port (SO_REUSEPORT).",
            self.fixed_slots.unwrap_or(0),
            self.rings_text(),
            self.nofile_soft
        )
    }

    /// "1 ring", "57 rings".
    fn rings_text(&self) -> String {
        match self.rings {
            1 => "1 ring".into(),
            n => format!("{n} rings"),
        }
    }

    fn fd_limit_line(&self, refused: u64) -> String {
        let fix = if self.backend == Backend::Uring {
            ""
        } else {
            ", or use --backend uring (direct descriptors need no fd per connection)"
        };
        format!(
            "c1m-server: refusing connections: out of file descriptors (RLIMIT_NOFILE {}, hard \
             {}; or the system-wide fs.file-max); {refused} refused so far. Fix: raise `ulimit \
             -n`, or run more server processes on the same port (SO_REUSEPORT){fix}.",
            self.nofile_soft, self.nofile_hard
        )
    }

    fn max_conns_line(&self, refused: u64) -> String {
        format!(
            "c1m-server: refusing connections: --max-conns {} reached; {refused} refused so far. \
             Fix: a larger --max-conns if the machine can hold more.",
            self.max_conns.unwrap_or(0)
        )
    }
}

/// Remembers when each kind of refusal was last reported.
#[derive(Debug, Default)]
pub struct RefusalWarnings {
    /// Per kind: (count reported, when).
    last: [Option<(u64, Instant)>; 3],
}

impl RefusalWarnings {
    /// Lines to print now for `totals` (first refusal of a kind at once, then at most
    /// one per [`REPEAT`] while the count grows).
    pub fn lines(&mut self, cap: &Capacity, totals: &Totals, now: Instant) -> Vec<String> {
        let counts = [
            totals.refused_fixed_table,
            totals.refused_fd_limit,
            totals.rejected,
        ];
        let mut out = Vec::new();
        for (i, &count) in counts.iter().enumerate() {
            let due = match self.last[i] {
                None => count > 0,
                Some((seen, at)) => count > seen && now.duration_since(at) >= REPEAT,
            };
            if !due {
                continue;
            }
            self.last[i] = Some((count, now));
            out.push(match i {
                0 => cap.fixed_table_line(count),
                1 => cap.fd_limit_line(count),
                _ => cap.max_conns_line(count),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_refusal_at_once_then_rate_limited() {
        let cap = Capacity {
            backend: Backend::Epoll,
            rings: 1,
            nofile_soft: 64,
            nofile_hard: 64,
            max_conns: None,
            fixed_slots: None,
        };
        let mut w = RefusalWarnings::default();
        let t0 = Instant::now();
        let mut totals = Totals::default();
        assert!(w.lines(&cap, &totals, t0).is_empty());
        totals.refused_fd_limit = 3;
        let lines = w.lines(&cap, &totals, t0);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("RLIMIT_NOFILE 64"), "{lines:?}");
        assert!(lines[0].contains("3 refused"), "{lines:?}");
        totals.refused_fd_limit = 10;
        assert!(w
            .lines(&cap, &totals, t0 + Duration::from_secs(1))
            .is_empty());
        assert_eq!(w.lines(&cap, &totals, t0 + REPEAT).len(), 1);
        // No new refusals: nothing more to say.
        assert!(w.lines(&cap, &totals, t0 + REPEAT * 3).is_empty());
    }
}
