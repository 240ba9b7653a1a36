//! The `user_data` of every SQE the loop submits: what completed, for which slot and
//! which connection of that slot; and the `io_uring_enter` flag the loop waits with.

/// Completion kinds, in the top byte of `user_data`.
pub(super) const OP_CONNECT: u64 = 1;
pub(super) const OP_TIMEOUT: u64 = 2;
pub(super) const OP_RECV: u64 = 3;
pub(super) const OP_SEND: u64 = 4;
pub(super) const OP_SHUTDOWN: u64 = 5;
pub(super) const OP_CLOSE: u64 = 6;
pub(super) const OP_CANCEL: u64 = 7;
/// A send whose completion is skipped on success (`quick.rs`).
pub(super) const OP_SEND_QUICK: u64 = 8;
/// A one-shot poll for input on a parked connection (`idle.rs`).
pub(super) const OP_POLL: u64 = 9;

/// `io_uring_enter` flag: reap completions (on a DEFER_TASKRUN ring: run the deferred
/// completion work), from `<linux/io_uring.h>`.
pub(super) const IORING_ENTER_GETEVENTS: u32 = 1;

/// `user_data` = op (8 bits) | generation (24 bits) | slot (32 bits). The generation
/// tells a late completion of a slot's previous connection from the current one.
pub(super) fn pack(op: u64, gen: u32, slot: u32) -> u64 {
    op << 56 | u64::from(gen & 0xFF_FFFF) << 32 | u64::from(slot)
}

pub(super) fn unpack(ud: u64) -> (u64, u32, u32) {
    (ud >> 56, (ud >> 32) as u32 & 0xFF_FFFF, ud as u32)
}
