//! What is free right now: server ports nothing listens on, and a results-folder stamp
//! no existing name uses.

use crate::plan::{PORT_HI, PORT_LO};
use std::collections::BTreeSet;

/// `count` consecutive ports in PORT_LO..=PORT_HI none of which is in `busy`.
pub fn pick_ports(count: u64, busy: &BTreeSet<u16>) -> Option<Vec<u16>> {
    let count = u16::try_from(count).ok().filter(|&c| c > 0)?;
    let mut base = PORT_LO;
    while u32::from(base) + u32::from(count) - 1 <= u32::from(PORT_HI) {
        match (base..base + count).find(|p| busy.contains(p)) {
            Some(p) => base = p + 1,
            None => return Some((base..base + count).collect()),
        }
    }
    None
}

/// The folder stamp: `base`, or `base-2` .. `base-99` when a name of that stamp is
/// taken already; None when all are. `taken(stamp)` says whether any name the run
/// would create with that stamp exists (as anything, a dangling symlink too).
pub fn pick_stamp(base: &str, taken: impl Fn(&str) -> bool) -> Option<String> {
    (1..100)
        .map(|n| match n {
            1 => base.to_owned(),
            n => format!("{base}-{n}"),
        })
        .find(|stamp| !taken(stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_skip_busy_ones() {
        let busy: BTreeSet<u16> = [7000, 7002].into_iter().collect();
        assert_eq!(pick_ports(1, &busy), Some(vec![7001]));
        assert_eq!(pick_ports(2, &busy), Some(vec![7003, 7004]));
        assert_eq!(
            pick_ports(200, &BTreeSet::new()).map(|p| p.len()),
            Some(200)
        );
        assert_eq!(pick_ports(199, &busy), None);
        assert_eq!(pick_ports(0, &busy), None);
    }

    #[test]
    fn stamps_do_not_reuse_folders() {
        assert_eq!(
            pick_stamp("2026-01-01-1200", |_| false).as_deref(),
            Some("2026-01-01-1200")
        );
        let taken = |st: &str| st == "2026-01-01-1200" || st == "2026-01-01-1200-2";
        assert_eq!(
            pick_stamp("2026-01-01-1200", taken).as_deref(),
            Some("2026-01-01-1200-3")
        );
        assert_eq!(pick_stamp("2026-01-01-1200", |_| true), None);
    }
}
