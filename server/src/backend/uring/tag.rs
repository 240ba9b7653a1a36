//! What a completion is about: `user_data` packs the operation, a buffer id, the
//! connection's generation and its fixed-file slot, so a stale completion for a reused
//! slot is recognised.

// user_data: op (8 bits) | buffer id (16) | generation (16) | slot (24)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Op {
    Accept = 1,
    Recv = 2,
    Send = 3,
    Close = 4,
    Cancel = 5,
    /// A send whose completion is skipped on success: a completion means it was short.
    SendQuick = 6,
    /// A one-shot poll for input that stands in for the recv of an idle connection.
    Poll = 7,
    /// A multishot poll on another ring's eventfd (`rings.rs`); the slot is that ring's
    /// index on its thread.
    Ring = 8,
}

const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// The fixed-file table is capped so a slot always fits its user_data field.
pub(super) const MAX_SLOTS: u32 = 1 << SLOT_BITS;

#[inline]
pub(super) fn pack(op: Op, bid: u16, gen: u16, slot: u32) -> u64 {
    (op as u64) << 56 | (bid as u64) << 40 | (gen as u64) << 24 | (slot as u64 & SLOT_MASK)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tag {
    pub op: Option<Op>,
    pub bid: u16,
    pub gen: u16,
    pub slot: u32,
}

#[inline]
pub(super) fn unpack(user_data: u64) -> Tag {
    let op = match (user_data >> 56) as u8 {
        1 => Some(Op::Accept),
        2 => Some(Op::Recv),
        3 => Some(Op::Send),
        4 => Some(Op::Close),
        5 => Some(Op::Cancel),
        6 => Some(Op::SendQuick),
        7 => Some(Op::Poll),
        8 => Some(Op::Ring),
        _ => None,
    };
    Tag {
        op,
        bid: (user_data >> 40) as u16,
        gen: (user_data >> 24) as u16,
        slot: (user_data & SLOT_MASK) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips() {
        for (op, bid, gen, slot) in [
            (Op::Recv, 0, 0, 0),
            (Op::Send, 4095, 65535, MAX_SLOTS - 1),
            (Op::Close, 7, 1, 1_000_000),
            (Op::SendQuick, 3, 2, 5),
            (Op::Poll, 0, 9, 12),
        ] {
            let tag = unpack(pack(op, bid, gen, slot));
            assert_eq!(
                tag,
                Tag {
                    op: Some(op),
                    bid,
                    gen,
                    slot
                }
            );
        }
        assert_eq!(unpack(0).op, None);
    }
}
