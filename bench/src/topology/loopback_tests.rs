//! The loopback placement spreads source addresses exactly as the plan's port limits say.

use super::placement::{parse_addresses, Placement, ShardLoad};
use crate::plan::Limits;

/// The value of `--flag` in `args`, if given.
fn arg_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn closed(conns: u64) -> ShardLoad {
    ShardLoad::closed(conns)
}

/// `conns` connections with source addresses of their own.
fn own(conns: u64, sources: &str) -> ShardLoad {
    ShardLoad {
        sources: Some(parse_addresses(sources).expect("addresses")),
        ..ShardLoad::closed(conns)
    }
}

#[test]
fn loopback_sources_follow_the_ports_per_pair_rule() {
    let l = Limits::new(20_000, (1024, 65535), 22 * 1024 * 1024, None);
    let p = Placement::loopback("1", l.ports_per_pair);
    assert_eq!(p.listen(7000), "127.0.0.1:7000");
    assert!(p.server.site.prefix.is_empty());
    for (conns, targets) in [(100, 1), (27_095, 1), (1_000_000, 1), (1_000_000, 57)] {
        let shards = p.shards(&closed(conns), targets).expect("fits");
        assert_eq!(shards.len(), 1);
        let s = &shards[0];
        assert_eq!((s.conns, s.subdir.as_deref()), (conns, None));
        // The same --source-ips the loopback run always had.
        let old = l.source_ips_for(conns, targets).expect("fits");
        let new = arg_value(&s.args, "--source-ips").map(str::to_owned);
        assert_eq!(new, old, "{conns} over {targets}");
    }
    let churn = p.shards(&own(50, "127.0.1.2-127.0.1.5"), 1).expect("churn");
    assert_eq!(
        arg_value(&churn[0].args, "--source-ips"),
        Some("127.0.1.2-127.0.1.5")
    );
    let small = Placement::loopback("1", 100);
    let e = small.shards(&closed(1_000_000), 1).unwrap_err();
    assert!(e.contains("127.0.0.2-127.0.0.251"), "{e}");
}
