//! The loopback placement spreads source addresses exactly as the plan's port limits say
//! (the placement's own rules are tested in c1m-topology).

use super::placement::{Placement, ShardLoad};
use crate::plan::Limits;

/// The value of `--flag` in `args`, if given.
fn arg_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

#[test]
fn loopback_sources_follow_the_ports_per_pair_rule() {
    let l = Limits::new(20_000, (1024, 65535), 22 * 1024 * 1024, None);
    let p = Placement::loopback("1", l.ports_per_pair);
    for (conns, targets) in [(100, 1), (27_095, 1), (1_000_000, 1), (1_000_000, 57)] {
        let shards = p.shards(&ShardLoad::closed(conns), targets).expect("fits");
        assert_eq!(shards.len(), 1);
        let s = &shards[0];
        assert_eq!((s.conns, s.subdir.as_deref()), (conns, None));
        // The same --source-ips the loopback run always had.
        let old = l.source_ips_for(conns, targets).expect("fits");
        let new = arg_value(&s.args, "--source-ips").map(str::to_owned);
        assert_eq!(new, old, "{conns} over {targets}");
    }
}
