//! The netns plan as data: names, addresses, commands and their validation.

use super::*;
use std::collections::HashSet;

const SUFFIX: &str = "abc123";

fn plan(clients: usize, sources: usize) -> NetnsPlan {
    NetnsPlan::new(clients, sources, LinkOptions::default(), SUFFIX).expect("valid plan")
}

fn argv(steps: &[Step]) -> Vec<String> {
    steps.iter().map(|s| s.argv.join(" ")).collect()
}

fn in_benchmark_range(a: Ipv4Addr) -> bool {
    let [o1, o2, _, _] = a.octets();
    o1 == 198 && (o2 == 18 || o2 == 19)
}

#[test]
fn addresses_are_unique_and_in_198_18_0_0_15() {
    for (k, s) in [(1, 1), (3, 2), (MAX_CLIENTS, MAX_SOURCES)] {
        let p = plan(k, s);
        let mut seen = HashSet::new();
        for e in p.endpoints() {
            for a in &e.addresses {
                assert!(in_benchmark_range(*a), "{a} outside 198.18.0.0/15");
                let last = a.octets()[3];
                assert!(last != 0 && last != 255, "{a} is a .0 or .255");
                assert!(seen.insert(*a), "{a} twice");
            }
        }
        assert_eq!(seen.len(), 1 + k * s);
        assert_eq!(p.server_addr(), SERVER_ADDR);
    }
}

#[test]
fn client_sources_follow_the_scheme() {
    let p = plan(3, 4);
    assert_eq!(
        p.client_sources(2).expect("client 2"),
        &[
            Ipv4Addr::new(198, 18, 3, 1),
            Ipv4Addr::new(198, 18, 3, 2),
            Ipv4Addr::new(198, 18, 3, 3),
            Ipv4Addr::new(198, 18, 3, 4)
        ]
    );
    assert_eq!(
        p.source_ips_arg(0).as_deref(),
        Some("198.18.1.1-198.18.1.4")
    );
    assert_eq!(plan(1, 1).source_ips_arg(0).as_deref(), Some("198.18.1.1"));
    assert!(p.client_sources(3).is_none());
    assert_eq!(p.sources_per_client(), 4);
}

#[test]
fn names_carry_the_suffix_and_the_kit_prefix() {
    let p = plan(3, 1);
    assert_eq!(
        p.namespaces(),
        [
            "c1m-br-abc123",
            "c1m-srv-abc123",
            "c1m-cli0-abc123",
            "c1m-cli1-abc123",
            "c1m-cli2-abc123"
        ]
    );
    for ns in p.namespaces() {
        assert_eq!(kit_namespace_suffix(ns), Some(SUFFIX), "{ns}");
    }
    assert_eq!(
        plan(1, 1).namespaces(),
        ["c1m-srv-abc123", "c1m-cli0-abc123"]
    );
    assert_eq!(plan(1, 1).bridge_ns(), None);
    // Device names fit IFNAMSIZ (15 characters) at the largest K.
    for (_, dev) in plan(MAX_CLIENTS, 1).veth_devices() {
        assert!(dev.len() <= 15, "{dev}");
    }
}

#[test]
fn kit_names_are_recognised_strictly() {
    assert_eq!(kit_namespace_suffix("c1m-cli253-zz9zz9"), Some("zz9zz9"));
    for bad in [
        "c1m-cli254-abc123",
        "c1m-cli01-abc123",
        "c1m-cli-abc123",
        "c1m-srv-abc12",
        "c1m-srv-abc1234",
        "c1m-srv-ABC123",
        "c1m-srv-abc-12",
        "c1m-web-abc123",
        "x-c1m-srv-abc123",
        "c1m-srv-abc123/..",
    ] {
        assert_eq!(kit_namespace_suffix(bad), None, "{bad}");
    }
}

#[test]
fn random_suffixes_have_the_shape_and_differ() {
    let a = random_suffix().expect("urandom");
    let b = random_suffix().expect("urandom");
    assert!(is_suffix(&a) && is_suffix(&b), "{a} {b}");
    assert_ne!(a, b);
}

#[test]
fn one_client_is_one_veth_pair() {
    let p = NetnsPlan::new(
        1,
        1,
        LinkOptions {
            mtu: Some(9000),
            gro: Some(true),
            tso: Some(false),
            shape: None,
        },
        SUFFIX,
    )
    .expect("plan");
    let s = "c1m-srv-abc123";
    let c = "c1m-cli0-abc123";
    assert_eq!(
        argv(&p.setup_commands()),
        [
            format!("ip netns add {s}"),
            format!("ip netns add {c}"),
            format!("ip -n {s} link set lo up"),
            format!("ip -n {c} link set lo up"),
            format!("ip -n {s} link add c1m0 mtu 9000 type veth peer name c1m0 mtu 9000 netns {c}"),
            format!("ip netns exec {s} ethtool -K c1m0 gro on tso off"),
            format!("ip netns exec {c} ethtool -K c1m0 gro on tso off"),
            format!("ip -n {s} address add 198.18.0.1/15 dev c1m0"),
            format!("ip -n {c} address add 198.18.1.1/15 dev c1m0"),
            format!("ip -n {s} link set c1m0 up"),
            format!("ip -n {c} link set c1m0 up"),
        ]
    );
    assert!(p.setup_commands().iter().all(|s| s.stdin.is_none()));
    assert_eq!(
        argv(&p.teardown_commands()),
        [format!("ip netns del {c}"), format!("ip netns del {s}")]
    );
}

#[test]
fn three_clients_meet_at_a_bridge_in_its_own_namespace() {
    let p = plan(3, 2);
    let steps = p.setup_commands();
    let lines = argv(&steps);
    let b = "c1m-br-abc123";
    let expect_in_order = [
        format!("ip netns add {b}"),
        format!("ip -n {b} link set lo up"),
        format!("ip -n {b} link add c1m-br type bridge"),
        format!("ip -n {b} link add c1m-srv type veth peer name c1m0 netns c1m-srv-abc123"),
        format!("ip -n {b} link set c1m-srv master c1m-br"),
        format!("ip -n {b} link add c1m-cli2 type veth peer name c1m0 netns c1m-cli2-abc123"),
        "ip -n c1m-cli2-abc123 address add 198.18.3.1/15 dev c1m0".to_owned(),
        "ip -n c1m-cli2-abc123 -batch -".to_owned(),
        format!("ip -n {b} link set c1m-cli2 up"),
        format!("ip -n {b} link set c1m-br up"),
        "ip -n c1m-srv-abc123 route add 198.18.1.0/24 via 198.18.1.1 dev c1m0".to_owned(),
        "ip -n c1m-srv-abc123 route add 198.18.3.0/24 via 198.18.3.1 dev c1m0".to_owned(),
    ];
    let mut at = 0;
    for want in &expect_in_order {
        let found = lines[at..].iter().position(|l| l == want);
        at += found.unwrap_or_else(|| panic!("{want:?} missing or out of order in {lines:#?}"));
    }
    let batch = steps
        .iter()
        .find(|s| s.argv.join(" ") == "ip -n c1m-cli2-abc123 -batch -")
        .and_then(|s| s.stdin.as_deref());
    assert_eq!(batch, Some("address add 198.18.3.2/15 dev c1m0\n"));
    // Every command names a namespace of this plan: nothing runs in the root namespace.
    let ours: HashSet<&str> = p.namespaces().into_iter().collect();
    for s in &steps {
        let ns = match s.argv.as_slice() {
            [ip, n, ns, ..] if ip == "ip" && n == "-n" => ns.as_str(),
            [ip, netns, _, ns, ..] if ip == "ip" && netns == "netns" => ns.as_str(),
            other => panic!("command without a namespace: {other:?}"),
        };
        assert!(ours.contains(ns), "{s}");
    }
    assert_eq!(
        steps
            .iter()
            .filter(|s| s.creates_namespace().is_some())
            .count(),
        5
    );
    assert!(lines
        .iter()
        .all(|l| !l.contains("ethtool") && !l.contains("mtu")));
    assert_eq!(p.teardown_commands().len(), 5);
    assert_eq!(argv(&p.teardown_commands())[4], format!("ip netns del {b}"));
}

#[test]
fn one_source_needs_no_routes() {
    let lines = argv(&plan(3, 1).setup_commands());
    assert!(lines
        .iter()
        .all(|l| !l.contains("route") && !l.contains("-batch")));
}

#[test]
fn bad_inputs_say_what_to_change() {
    let ok = LinkOptions::default();
    let cases = [
        (NetnsPlan::new(0, 1, ok, SUFFIX), PlanError::NoClients),
        (
            NetnsPlan::new(255, 1, ok, SUFFIX),
            PlanError::TooManyClients(255),
        ),
        (NetnsPlan::new(1, 0, ok, SUFFIX), PlanError::NoSources),
        (
            NetnsPlan::new(1, 255, ok, SUFFIX),
            PlanError::TooManySources(255),
        ),
        (
            NetnsPlan::new(
                1,
                1,
                LinkOptions {
                    mtu: Some(67),
                    ..ok
                },
                SUFFIX,
            ),
            PlanError::Mtu(67),
        ),
        (
            NetnsPlan::new(
                1,
                1,
                LinkOptions {
                    mtu: Some(65536),
                    ..ok
                },
                SUFFIX,
            ),
            PlanError::Mtu(65536),
        ),
        (
            NetnsPlan::new(1, 1, ok, "abc"),
            PlanError::Suffix("abc".into()),
        ),
        (
            NetnsPlan::new(1, 1, ok, "abc/12"),
            PlanError::Suffix("abc/12".into()),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, Err(want.clone()));
        assert!(!want.to_string().is_empty());
    }
    assert!(PlanError::TooManySources(300)
        .to_string()
        .contains("--clients"));
    for mtu in [68, 1500, 9000, 65535] {
        assert!(NetnsPlan::new(
            1,
            1,
            LinkOptions {
                mtu: Some(mtu),
                ..ok
            },
            SUFFIX
        )
        .is_ok());
    }
}

#[test]
fn describe_records_names_addresses_and_links() {
    let p = NetnsPlan::new(
        2,
        3,
        LinkOptions {
            mtu: Some(1500),
            ..LinkOptions::default()
        },
        SUFFIX,
    )
    .expect("plan");
    let d = p.describe(None);
    assert_eq!(d["topology"], "netns");
    assert_eq!(d["clients"], 2);
    assert_eq!(d["sources_per_client"], 3);
    assert_eq!(d["network"], "198.18.0.0/15");
    assert_eq!(d["namespaces"]["server"], "c1m-srv-abc123");
    assert_eq!(d["namespaces"]["bridge"], "c1m-br-abc123");
    assert_eq!(d["namespaces"]["clients"][1], "c1m-cli1-abc123");
    assert_eq!(d["server"]["address"], "198.18.0.1");
    assert_eq!(
        d["client_endpoints"][1]["addresses"],
        "198.18.2.1-198.18.2.3"
    );
    assert_eq!(d["client_endpoints"][1]["address_count"], 3);
    assert_eq!(d["link"]["requested"]["mtu"], 1500);
    assert!(d["link"]["requested"]["gro"].is_null());
    assert!(d["link"]["read_back"].is_null());
    let rb = ReadBack {
        devices: vec![DeviceState {
            namespace: "c1m-srv-abc123".into(),
            device: "c1m0".into(),
            mtu: 1500,
            up: true,
            ipv4_addresses: 1,
            gro: Some(false),
            tso: None,
        }],
    };
    let d = p.describe(Some(&rb));
    assert_eq!(d["link"]["read_back"]["devices"][0]["mtu"], 1500);
    assert_eq!(d["link"]["read_back"]["devices"][0]["gro"], false);
    assert_eq!(
        plan(1, 1).describe(None)["namespaces"]["bridge"],
        Value::Null
    );
}

#[test]
fn steps_print_as_shell_lines() {
    let steps = plan(1, 2).setup_commands();
    let batch = steps
        .iter()
        .find(|s| s.stdin.is_some())
        .expect("a batch step");
    assert_eq!(
        batch.to_string(),
        "ip -n c1m-cli0-abc123 -batch - <<EOF\naddress add 198.18.1.2/15 dev c1m0\nEOF"
    );
}
