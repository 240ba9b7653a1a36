//! How big a loop's rings and provided-buffer ring are, from its connections and plan.

use super::super::plan::{Mode, Plan};

/// Receive buffer memory per loop at most.
const MAX_RECV_MEMORY: usize = 16 << 20;

/// Ring sizes: the SQ takes one iteration's submissions, the CQ every completion that can
/// be outstanding (one send, one receive, connect + timeout per connection, plus one per
/// provided buffer), so it does not overflow in normal operation.
pub(super) fn ring_sizes(conns: usize, bufs: usize) -> (u32, u32) {
    let sq = 4096u32;
    let cq = (4 * conns + bufs + 1024)
        .next_power_of_two()
        .clamp(8192, 65536) as u32;
    (sq, cq)
}

/// Provided receive buffers: enough for every connection's echo to land at once in
/// closed loop (small rings for hold mode, where few messages are in flight), within
/// `MAX_RECV_MEMORY` per loop.
pub(super) fn buffer_geometry(plan: &Plan, conns: usize) -> (u16, u32) {
    let in_flight_bytes = plan.wire.response_len() * plan.inflight_cap;
    let buf_size = in_flight_bytes.next_power_of_two().clamp(2048, 65536);
    let count = match plan.mode {
        Mode::Heartbeat(_) => 256,
        _ => (conns * 2).next_power_of_two().clamp(256, 4096),
    };
    let count = count.min(MAX_RECV_MEMORY / buf_size).max(64);
    (count as u16, buf_size as u32)
}
