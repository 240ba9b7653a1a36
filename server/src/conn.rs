//! The per-connection state machine, without I/O. Every backend feeds it the same events
//! (bytes received, bytes sent, peer closed, clock ticks) and asks it the same questions
//! (keep reading? close now? idle?), so backends differ only in how they move bytes.

use crate::config::Limits;
use crate::proto::Session;
use std::time::{Duration, Instant};

/// Milliseconds since the loop started; a `u32` keeps the state small (wraps after 49 days,
/// which only matters for idle checks, and those use wrapping arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tick(pub u32);

/// A coarse per-loop clock, read once per loop iteration rather than per event.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    now: Tick,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            now: Tick(0),
        }
    }

    /// Re-reads the time; call once per loop iteration.
    pub fn update(&mut self) -> Tick {
        self.now = Tick(self.start.elapsed().as_millis() as u32);
        self.now
    }

    pub fn now(&self) -> Tick {
        self.now
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// What the backend should do about reading after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadControl {
    /// Nothing changes.
    Keep,
    /// Unsent bytes reached the bound: stop reading this connection.
    Pause,
    /// Unsent bytes drained: start reading again.
    Resume,
}

/// State of one connection: 16 bytes, so a million of them cost 16 MB.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnState {
    /// Bytes received and not yet written back (echo), or responses not yet written
    /// (frame, http).
    unsent: u32,
    /// Bytes of incomplete requests the protocol holds (frame, http). They count toward
    /// the pause bound, never toward resuming: only sending frees what blocks a resume.
    held: u32,
    last_active: Tick,
    paused: bool,
    peer_closed: bool,
    /// Complete requests wait in the protocol's backlog: not finished, whatever is sent.
    backlog: bool,
}

impl ConnState {
    pub fn new(now: Tick) -> Self {
        Self {
            last_active: now,
            ..Self::default()
        }
    }

    /// `n` bytes arrived and are waiting to be echoed.
    pub fn on_received(&mut self, n: usize, now: Tick, limits: &Limits) -> ReadControl {
        self.unsent = self.unsent.saturating_add(n as u32);
        self.last_active = now;
        if !self.paused && self.unsent as usize >= limits.max_unsent {
            self.paused = true;
            return ReadControl::Pause;
        }
        ReadControl::Keep
    }

    /// A protocol parsed what arrived: `produced` response bytes are now waiting to be
    /// sent, and `session` holds what it has not answered yet.
    pub fn on_parsed(
        &mut self,
        produced: usize,
        session: &Session,
        now: Tick,
        limits: &Limits,
    ) -> ReadControl {
        self.unsent = self.unsent.saturating_add(produced as u32);
        self.held = session.held() as u32;
        self.backlog = session.has_backlog();
        self.last_active = now;
        if !self.paused && self.unsent as usize + self.held as usize >= limits.max_unsent {
            self.paused = true;
            return ReadControl::Pause;
        }
        ReadControl::Keep
    }

    /// The last response of the connection was produced (the client asked to close, or
    /// broke the protocol): read no more, close once everything is sent.
    pub fn on_last_response(&mut self) {
        self.peer_closed = true;
        self.held = 0;
        self.backlog = false;
    }

    /// `n` bytes were written back to the peer.
    pub fn on_sent(&mut self, n: usize, now: Tick, limits: &Limits) -> ReadControl {
        debug_assert!(n as u32 <= self.unsent, "sent more than was received");
        self.unsent = self.unsent.saturating_sub(n as u32);
        self.last_active = now;
        if self.paused && self.unsent as usize <= limits.resume_unsent {
            self.paused = false;
            if !self.peer_closed {
                return ReadControl::Resume;
            }
        }
        ReadControl::Keep
    }

    /// The peer shut down its sending side (read returned 0).
    pub fn on_peer_closed(&mut self) {
        self.peer_closed = true;
    }

    /// True when nothing more will ever be echoed or answered: the peer is done sending
    /// (or got its last response), everything produced was written back, and no complete
    /// request waits in a backlog. Then the connection closes.
    pub fn finished(&self) -> bool {
        self.peer_closed && self.unsent == 0 && !self.backlog
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    pub fn unsent(&self) -> usize {
        self.unsent as usize
    }

    /// Bytes of incomplete requests held (frame, http).
    pub fn held(&self) -> usize {
        self.held as usize
    }

    /// Milliseconds since the connection last received or sent.
    pub fn quiet_ms(&self, now: Tick) -> u32 {
        now.0.wrapping_sub(self.last_active.0)
    }

    /// True if the connection saw no traffic for the idle timeout.
    pub fn idle(&self, now: Tick, limits: &Limits) -> bool {
        limits
            .idle_timeout
            .is_some_and(|t| now.0.wrapping_sub(self.last_active.0) as u128 >= t.as_millis())
    }
}

/// How often a loop should look for idle connections: a quarter of the timeout, so a
/// connection is closed at most 25% late, but not more often than every 50 ms.
pub fn idle_sweep_every(limits: &Limits) -> Option<Duration> {
    limits
        .idle_timeout
        .map(|t| (t / 4).max(Duration::from_millis(50)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_unsent: 1000,
            resume_unsent: 250,
            idle_timeout: Some(Duration::from_millis(100)),
            max_conns: None,
        }
    }

    #[test]
    fn pauses_at_bound_and_resumes_when_drained() {
        let l = limits();
        let mut c = ConnState::new(Tick(0));
        assert_eq!(c.on_received(600, Tick(1), &l), ReadControl::Keep);
        assert_eq!(c.on_received(400, Tick(1), &l), ReadControl::Pause);
        assert_eq!(c.on_received(10, Tick(1), &l), ReadControl::Keep);
        assert_eq!(c.on_sent(500, Tick(2), &l), ReadControl::Keep);
        assert_eq!(c.on_sent(300, Tick(2), &l), ReadControl::Resume);
        assert!(!c.paused());
        assert_eq!(c.unsent(), 210);
    }

    #[test]
    fn finishes_after_peer_close_once_drained() {
        let l = limits();
        let mut c = ConnState::new(Tick(0));
        c.on_received(10, Tick(0), &l);
        c.on_peer_closed();
        assert!(!c.finished());
        c.on_sent(10, Tick(0), &l);
        assert!(c.finished());
    }

    #[test]
    fn no_resume_after_peer_closed() {
        let l = limits();
        let mut c = ConnState::new(Tick(0));
        c.on_received(2000, Tick(0), &l);
        c.on_peer_closed();
        assert_eq!(c.on_sent(2000, Tick(0), &l), ReadControl::Keep);
    }

    #[test]
    fn idle_after_timeout_only() {
        let l = limits();
        let mut c = ConnState::new(Tick(0));
        assert!(!c.idle(Tick(99), &l));
        assert!(c.idle(Tick(100), &l));
        c.on_received(1, Tick(100), &l);
        assert!(!c.idle(Tick(150), &l));
        let no_timeout = Limits {
            idle_timeout: None,
            ..l
        };
        assert!(!c.idle(Tick(u32::MAX), &no_timeout));
    }

    #[test]
    fn state_is_small() {
        assert!(std::mem::size_of::<ConnState>() <= 16);
    }

    /// A frame session holding `n` bytes of an incomplete request.
    fn holding(n: usize) -> Session {
        use crate::proto::{frame::FrameConfig, Protocol};
        let p = Protocol::Frame(std::sync::Arc::new(FrameConfig::new(4096, None, 4096)));
        let mut s = Session::default();
        let mut request = 4000u32.to_be_bytes().to_vec();
        request.resize(n, 0);
        p.feed(&mut s, &request, &mut Vec::new());
        assert_eq!(s.held(), n);
        s
    }

    #[test]
    fn held_bytes_pause_but_never_block_a_resume() {
        let l = limits();
        let mut c = ConnState::new(Tick(0));
        let s = holding(800);
        assert_eq!(c.on_parsed(100, &s, Tick(1), &l), ReadControl::Keep);
        assert_eq!(c.on_parsed(100, &s, Tick(1), &l), ReadControl::Pause);
        // Responses drain; the held partial request (800 > resume bound) does not matter.
        assert_eq!(c.on_sent(200, Tick(2), &l), ReadControl::Resume);
    }

    #[test]
    fn last_response_closes_once_sent() {
        let l = limits();
        let mut c = ConnState::new(Tick(0));
        c.on_parsed(50, &Session::default(), Tick(0), &l);
        c.on_last_response();
        assert!(c.peer_closed() && !c.finished());
        c.on_sent(50, Tick(0), &l);
        assert!(c.finished());
    }

    #[test]
    fn a_backlog_keeps_a_closed_peer_unfinished() {
        use crate::proto::{frame::FrameConfig, Protocol};
        let l = limits();
        // Ten empty frames, each answered with 100 bytes, 200 bytes per call.
        let p = Protocol::Frame(std::sync::Arc::new(FrameConfig::new(16, Some(96), 200)));
        let (mut s, mut out) = (Session::default(), Vec::new());
        let mut c = ConnState::new(Tick(0));
        p.feed(&mut s, &[0u8; 40], &mut out);
        c.on_parsed(out.len(), &s, Tick(0), &l);
        c.on_peer_closed();
        c.on_sent(out.len(), Tick(0), &l);
        assert!(!c.finished(), "eight requests still wait");
        while s.has_backlog() {
            out.clear();
            p.feed(&mut s, &[], &mut out);
            c.on_parsed(out.len(), &s, Tick(0), &l);
            c.on_sent(out.len(), Tick(0), &l);
        }
        assert!(c.finished());
    }
}
