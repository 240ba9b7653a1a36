use super::*;
use crate::netns::{LinkOptions, NetnsPlan};
use std::collections::HashSet;

/// Tuned port range 1024-65535: 27,095 connections per (source, server port) pair.
const PPP: u64 = 27_095;

fn netns(clients: usize, sources: usize, cpus: &str) -> (NetnsPlan, Placement) {
    let plan =
        NetnsPlan::new(clients, sources, LinkOptions::default(), "abc123").expect("netns plan");
    let p = Placement::netns(&plan, cpus, PPP);
    (plan, p)
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

/// The value of `--flag` in `args`, if given.
fn arg_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn in_benchmark_range(a: Ipv4Addr) -> bool {
    let [x, y, ..] = a.octets();
    x == 198 && (y == 18 || y == 19)
}

#[test]
fn shares_differ_by_at_most_one_and_sum_to_the_total() {
    for (total, parts) in [
        (0, 1),
        (1, 2),
        (5, 2),
        (1_000_000, 2),
        (1_000_001, 3),
        (7, 7),
    ] {
        let s = split_even(total, parts);
        assert_eq!(s.len(), parts);
        assert_eq!(s.iter().sum::<u64>(), total);
        let (lo, hi) = (s.iter().min().copied(), s.iter().max().copied());
        assert!(hi.unwrap_or(0) - lo.unwrap_or(0) <= 1, "{s:?}");
    }
    assert_eq!(split_even(5, 2), vec![3, 2]);
}

#[test]
fn topology_names() {
    assert_eq!(Kind::parse("loopback"), Ok(Kind::Loopback));
    assert_eq!(Kind::parse("netns").map(Kind::name), Ok("netns"));
    assert_eq!(Kind::parse("hosts").map(Kind::name), Ok("hosts"));
    assert!(Kind::parse("lan")
        .unwrap_err()
        .contains("known: loopback netns hosts"));
}

#[test]
fn hosts_shards_use_their_own_address_or_their_sources() {
    let plan = crate::hosts::HostsPlan::new(
        "root@198.18.0.1",
        "root@198.18.0.2,root@198.18.0.3",
        &["198.18.2.1-198.18.2.9".into()],
        crate::hosts::ssh::Ssh::default(),
        "t",
        &crate::hosts::resolve,
    )
    .expect("valid");
    let mut p = Placement::hosts(&plan, "1", 27_000);
    assert_eq!(p.listen(7000), "198.18.0.1:7000");
    let shards = p.shards(&closed(1000), 1).expect("fits");
    assert!(shards[1].sources.is_empty(), "own address");
    assert_eq!(shards[0].sources.len(), 1);
    // Too many for one address of its own.
    assert!(p.shards(&closed(100_000), 1).is_err());
    p.set_remote_dirs(&["/tmp/c1m-host.a".into(), "/tmp/c1m-host.b".into()]);
    let site = &p.clients[0].site;
    assert_eq!(
        site.program(std::path::Path::new("target/release/c1m-loadgen")),
        "./c1m-loadgen"
    );
    let out = site.file(std::path::Path::new("/r/x/shard-0"));
    assert_eq!(out, "/tmp/c1m-host.b/f/r/x/shard-0");
    let argv = site.command(vec!["./c1m-loadgen".into(), "--out".into(), out]);
    assert_eq!(
        argv.last().map(String::as_str),
        Some("cd /tmp/c1m-host.b && mkdir -p -- /tmp/c1m-host.b/f/r/x && exec ./c1m-host.sh run ./c1m-loadgen --out /tmp/c1m-host.b/f/r/x/shard-0")
    );
}

#[test]
fn netns_places_the_server_and_one_shard_per_client() {
    let (plan, p) = netns(2, 23, "1");
    assert_eq!(p.kind, Kind::Netns);
    assert_eq!(p.listen(7001), "198.18.0.1:7001");
    assert_eq!(
        p.server.site.command(vec!["c1m-server".into()]),
        ["ip", "netns", "exec", plan.server_ns(), "c1m-server"]
    );
    assert_eq!(p.clients.len(), 2);
    for (i, c) in p.clients.iter().enumerate() {
        assert_eq!(c.site.netns.as_deref(), plan.client_ns(i));
        assert_eq!(c.cpus, "1", "two shards share one loadgen CPU");
        assert_eq!(c.dedicated, DEDICATED_SOURCES);
    }
    let (_, four) = netns(2, 2, "2,3,4,5");
    assert_eq!(
        (four.clients[0].cpus.as_str(), four.clients[1].cpus.as_str()),
        ("2,4", "3,5")
    );
    assert_eq!(
        four.clients[0].dedicated, 1,
        "the primary stays for general use"
    );
}

#[test]
fn netns_shards_cover_their_share_from_their_own_addresses() {
    // The full hold on this machine: 1,000,000 connections, uring on one port, epoll
    // on 57 ports; pingpong and latency; two and three clients.
    for clients in [1, 2, 3] {
        let cases = [(1_000_000, 1), (1_000_000, 57), (10_000, 1), (100, 1)];
        let s = Placement::netns_sources(cases, clients, PPP);
        let (_, p) = netns(clients, s, "1");
        for (conns, targets) in cases {
            let shards = p.shards(&closed(conns), targets).expect("fits");
            assert_eq!(shards.len(), clients.min(conns as usize));
            assert_eq!(shards.iter().map(|s| s.conns).sum::<u64>(), conns);
            let mut seen = HashSet::new();
            for sh in &shards {
                let k = sh.sources.len() as u64;
                assert!(k >= 1);
                // Round-robin over (source, port) pairs: each pair within the rule.
                assert!(k * targets * PPP >= sh.conns, "{conns}/{targets}: {sh:?}");
                let c = &p.clients[sh.client];
                let dedicated = &c.sources[c.sources.len() - c.dedicated..];
                for a in &sh.sources {
                    assert!(in_benchmark_range(*a), "{a}");
                    assert!(c.sources.contains(a), "{a} is not this client's");
                    assert!(!dedicated.contains(a), "{a} is set aside");
                    assert!(seen.insert(*a), "{a} used by two shards");
                }
                assert_eq!(
                    arg_value(&sh.args, "--connections"),
                    Some(sh.conns.to_string().as_str())
                );
                assert_eq!(
                    arg_value(&sh.args, "--source-ips"),
                    Some(addresses_text(&sh.sources).as_str())
                );
                let dir = format!("shard-{}", sh.client);
                assert_eq!(sh.subdir.as_deref(), (clients > 1).then_some(dir.as_str()));
            }
        }
    }
    // 500,000 per client on one port: 19 addresses, plus the 4 set aside.
    assert_eq!(Placement::netns_sources([(1_000_000, 1)], 2, PPP), 23);
    assert_eq!(Placement::netns_sources([(100, 1)], 2, PPP), 5);
}

#[test]
fn netns_rates_split_with_the_connections_and_churn_gets_its_own_addresses() {
    let (_, p) = netns(3, 8, "1");
    let a = ShardLoad {
        rate: Some(1000),
        ..closed(100)
    };
    let shards = p.shards(&a, 1).expect("fits");
    let rates: Vec<f64> = shards
        .iter()
        .map(|s| {
            arg_value(&s.args, "--rate")
                .and_then(|r| r.parse().ok())
                .unwrap_or(0.0)
        })
        .collect();
    assert_eq!(
        shards.iter().map(|s| s.conns).collect::<Vec<_>>(),
        [34, 33, 33]
    );
    assert!(
        (rates.iter().sum::<f64>() - 1000.0).abs() < 0.01,
        "{rates:?}"
    );
    assert_eq!(arg_value(&shards[0].args, "--connections"), Some("34"));
    let churn = p.shards(&own(50, "127.0.1.2-127.0.1.5"), 1).expect("churn");
    for sh in &churn {
        let c = &p.clients[sh.client];
        assert_eq!(sh.sources, c.sources[4..].to_vec(), "the last four");
        assert_eq!(sh.args.iter().filter(|x| *x == "--source-ips").count(), 1);
    }
    let e = p.shards(&own(50, "127.0.1.2-127.0.1.9"), 1).unwrap_err();
    assert!(e.contains("8 source addresses of its own"), "{e}");
    // Fewer connections than clients: no empty shard.
    assert_eq!(p.shards(&closed(2), 1).expect("fits").len(), 2);
}

#[test]
fn netns_too_few_addresses_says_what_to_change() {
    let (_, p) = netns(1, 5, "1");
    let e = p.shards(&closed(1_000_000), 1).unwrap_err();
    assert!(e.contains("--clients"), "{e}");
}

#[test]
fn address_texts_and_lists() {
    let r = parse_addresses("198.18.1.1-198.18.1.3,198.18.2.9").expect("list");
    assert_eq!(r.len(), 4);
    assert_eq!(addresses_text(&r[..3]), "198.18.1.1-198.18.1.3");
    assert_eq!(
        addresses_text(&r),
        "198.18.1.1,198.18.1.2,198.18.1.3,198.18.2.9"
    );
    assert_eq!(addresses_text(&r[..1]), "198.18.1.1");
    assert!(parse_addresses("198.18.1.3-198.18.1.1").is_none());
    assert!(parse_addresses("nope").is_none());
    assert_eq!(shard_cpus("1", 1, 2), "1");
    assert_eq!(shard_cpus("2,3,4", 0, 2), "2,4");
    assert_eq!(sources_needed(0, 1, PPP), 1);
    assert_eq!(rate_share(7, 5, 10), "3.5");
    assert_eq!(rate_share(100, 5, 10), "50");
    assert_eq!(rate_share(1000, 1, 3), "333.333");
}

#[test]
fn describe_says_where_everything_runs() {
    let (plan, p) = netns(2, 6, "1");
    let d = p.describe();
    assert_eq!(d["topology"], "netns");
    assert_eq!(d["server"]["listen_address"], "198.18.0.1");
    assert_eq!(
        d["server"]["site"]["command_prefix"],
        format!("ip netns exec {}", plan.server_ns())
    );
    assert_eq!(
        d["loadgen_shards"][1]["source_addresses"],
        "198.18.2.1-198.18.2.6"
    );
    assert_eq!(
        d["loadgen_shards"][1]["dedicated_source_addresses"],
        "198.18.2.3-198.18.2.6"
    );
    let l = Placement::loopback("1", PPP).describe();
    assert_eq!(l["server"]["site"]["where"], "root namespace");
    assert!(l["server"]["site"]["network_namespace"].is_null());
}

#[test]
fn loopback_shards_keep_own_sources_and_refuse_what_cannot_fit() {
    let p = Placement::loopback("1", PPP);
    assert_eq!(p.listen(7000), "127.0.0.1:7000");
    assert!(p.server.site.prefix.is_empty());
    let churn = p.shards(&own(50, "127.0.1.2-127.0.1.5"), 1).expect("churn");
    assert_eq!(
        arg_value(&churn[0].args, "--source-ips"),
        Some("127.0.1.2-127.0.1.5")
    );
    let small = Placement::loopback("1", 100);
    let e = small.shards(&closed(1_000_000), 1).unwrap_err();
    assert!(e.contains("127.0.0.2-127.0.0.251"), "{e}");
}
