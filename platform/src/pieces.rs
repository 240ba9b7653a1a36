//! A byte stream cut into the pieces receives might deliver it in: the parser checks of
//! the server and the loadgen (`proto::check` in each, run by property tests and fuzz
//! targets) feed every stream whole and cut this way, and expect the same answers.

/// Cuts `stream` at `cuts` (any order, repeats allowed, each taken modulo the length + 1).
pub fn cut<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut from = 0;
    for to in at.into_iter().chain([stream.len()]) {
        out.push(&stream[from..to]);
        from = to;
    }
    out
}

/// Splits a fuzzer's input into cut positions (`n % 8` of them, u16 little-endian, as far
/// as `data` holds them) and the rest.
pub fn fuzz_cuts(n: u8, data: &[u8]) -> (Vec<usize>, &[u8]) {
    let n = usize::from(n % 8).min(data.len() / 2);
    let (cuts, rest) = data.split_at(2 * n);
    let cuts = cuts
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    (cuts, rest)
}

/// The bytes [`fuzz_cuts`] reads back as `cuts` (at most 7), after their count.
pub fn encode_fuzz_cuts(cuts: &[u16]) -> Vec<u8> {
    let cuts = &cuts[..cuts.len().min(7)];
    let mut data = vec![cuts.len() as u8];
    cuts.iter().for_each(|c| data.extend(c.to_le_bytes()));
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_cover_the_stream_in_order() {
        let s = b"abcdef";
        assert_eq!(cut(s, &[]), vec![&s[..]]);
        assert_eq!(cut(s, &[4, 1, 1]), vec![&b"a"[..], b"", b"bcd", b"ef"]);
        assert_eq!(cut(s, &[13]), vec![&b"abcdef"[..], b""]);
        assert_eq!(cut(b"", &[5]), vec![&b""[..], b""]);
    }

    #[test]
    fn fuzz_cuts_round_trip() {
        let mut data = encode_fuzz_cuts(&[3, 500]);
        data.extend_from_slice(b"xyz");
        assert_eq!(fuzz_cuts(data[0], &data[1..]), (vec![3, 500], &b"xyz"[..]));
        assert_eq!(
            fuzz_cuts(7, b"abc"),
            (vec![usize::from(u16::from_le_bytes(*b"ab"))], &b"c"[..])
        );
    }
}
