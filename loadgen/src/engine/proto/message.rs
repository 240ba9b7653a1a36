//! The echo message: `size` bytes, `[seq u64 LE][timestamp ns u64 LE][payload]` (also the
//! payload of a frame request).
//!
//! The payload is a pattern derived from (connection id, sequence number), so a flipped,
//! lost, duplicated or reordered byte changes what arrives at some offset. Echoes are
//! checked against the sender's own copy of the message (kept until its echo is complete),
//! so verification is a `memcmp`, not a re-computation.

/// Bytes of the header: sequence number and timestamp.
pub const HEADER: usize = 16;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64 finaliser: a cheap, well-mixed seed per (connection, message).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes message `seq` of connection `conn_id` with timestamp `ts_ns` into `buf`
/// (its whole length is the message).
pub fn fill_message(buf: &mut [u8], conn_id: u64, seq: u64, ts_ns: u64) {
    debug_assert!(buf.len() >= HEADER);
    let (header, payload) = buf.split_at_mut(HEADER);
    header[..8].copy_from_slice(&seq.to_le_bytes());
    header[8..].copy_from_slice(&ts_ns.to_le_bytes());
    // Eight bytes at a time: the pattern costs about as much as copying the message.
    let seed = mix(conn_id.rotate_left(32) ^ seq.wrapping_mul(GOLDEN));
    let mut word = seed;
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&word.to_le_bytes());
        word = word.wrapping_add(GOLDEN);
    }
    let rest = chunks.into_remainder();
    let n = rest.len();
    rest.copy_from_slice(&word.to_le_bytes()[..n]);
}

/// The timestamp field of a message.
pub fn timestamp(msg: &[u8]) -> u64 {
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&msg[8..16]);
    u64::from_le_bytes(ts)
}

/// The sequence number field of a message.
#[cfg(test)]
pub fn sequence(msg: &[u8]) -> u64 {
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&msg[..8]);
    u64::from_le_bytes(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut m = vec![0u8; 37];
        fill_message(&mut m, 7, 42, 123_456_789);
        assert_eq!(sequence(&m), 42);
        assert_eq!(timestamp(&m), 123_456_789);
    }

    #[test]
    fn payload_depends_on_connection_and_sequence() {
        let mut a = vec![0u8; 64];
        let mut b = vec![0u8; 64];
        fill_message(&mut a, 1, 5, 0);
        fill_message(&mut b, 2, 5, 0);
        assert_ne!(a[HEADER..], b[HEADER..]);
        fill_message(&mut b, 1, 6, 0);
        assert_ne!(a[HEADER..], b[HEADER..]);
        fill_message(&mut b, 1, 5, 0);
        assert_eq!(a, b);
        // Neighbouring words differ, so a shifted stream does not look right.
        assert_ne!(a[16..24], a[24..32]);
    }

    #[test]
    fn minimum_size_is_header_only() {
        let mut m = vec![0u8; HEADER];
        fill_message(&mut m, 1, 2, 3);
        assert_eq!(sequence(&m), 2);
    }
}
