//! The generators, the experiment file, the kernel deltas and the verdicts, without root.

use super::kernel::SiteCounters;
use super::table::{chance_line, table_and_verdicts, weigh, Row, Verdict};
use super::*;
use crate::options::tests::{args, root};
use crate::report::folder::{CaseRecord, RunFolder};
use c1m_loadgen::report::stats::{group_by, Group};
use serde_json::json;

fn verdict(base: &Group<'_, Row>, g: &Group<'_, Row>) -> String {
    weigh(base, g).text
}

fn table_of(study: &Study, rows: &[Row]) -> String {
    table_and_verdicts(study, rows).0
}

fn names(g: &Generated) -> Vec<&str> {
    g.variants.iter().map(|v| v.name.as_str()).collect()
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_sweep_crosses_values_with_backends_and_values_hold_blanks() {
    let (key, values) = parse_sweep(
        "net.ipv4.tcp_rmem=4096  4096 4096|4096 131072 6291456",
        Some("4096\t131072\t6291456"),
        true,
    )
    .unwrap();
    assert_eq!(values, ["4096 4096 4096", "4096 131072 6291456"]);
    let g = sweep(&key, &values, &[Backend::Uring, Backend::Epoll]).unwrap();
    assert_eq!(
        names(&g),
        [
            "uring-tcp-rmem-4096-4096-4096",
            "uring-tcp-rmem-4096-131072-6291456",
            "epoll-tcp-rmem-4096-4096-4096",
            "epoll-tcp-rmem-4096-131072-6291456"
        ]
    );
    assert_eq!(g.variants[3].backend, Backend::Epoll);
    assert_eq!(
        g.variants[3].sysctls,
        kv(&[("net.ipv4.tcp_rmem", "4096 131072 6291456")])
    );
    assert!(g.study.run_wide_tuning && g.study.baseline.is_empty());
}

#[test]
fn a_three_number_key_wants_three_numbers_per_value() {
    let e = parse_sweep(
        "net.ipv4.tcp_rmem=4096|16384",
        Some("4096 131072 6291456"),
        true,
    )
    .unwrap_err();
    assert!(
        e.contains("takes 3 numbers") && e.contains("\"4096\""),
        "{e}"
    );
    for (bad, msg) in [
        ("net.core.somaxconn", "write KEY=V1|V2"),
        ("net.core.somaxconn=128", "at least two"),
        ("net.core.somaxconn=128||4096", "at least two non-empty"),
        ("net.core.somaxconn=128|128", "given twice"),
        ("Net/Core=1|2", "not a sysctl key"),
    ] {
        let e = parse_sweep(bad, Some("4096"), true).unwrap_err();
        assert!(e.contains(msg), "{bad}: {e}");
    }
    let e = parse_sweep("net.ipv4.tcp_no_delay=0|1", None, true).unwrap_err();
    assert!(e.contains("no sysctl net.ipv4.tcp_no_delay"), "{e}");
    // Hosts: not probed here.
    assert!(parse_sweep("net.ipv4.tcp_no_delay=0|1", None, false).is_ok());
}

#[test]
fn a_sweep_of_links_sets_no_sysctl() {
    let (key, values) =
        parse_sweep("link=none|delay=50ms,loss=0.1%", None, true).expect("link values");
    let g = sweep(&key, &values, &[Backend::Uring]).unwrap();
    assert_eq!(
        names(&g),
        ["uring-link-none", "uring-link-delay-50ms-loss-0-1pct"]
    );
    assert_eq!(g.variants[0].link, None);
    assert_eq!(g.variants[1].link.map(|l| l.delay_us), Some(50_000));
    assert!(g.variants.iter().all(|v| v.sysctls.is_empty()));
    let e = parse_sweep("link=delay=5|none", None, true).unwrap_err();
    assert!(e.contains("give a unit"), "{e}");
}

fn originals(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
        .collect()
}

#[test]
fn an_ablation_is_the_profile_each_key_put_back_and_the_untuned_machine() {
    let entries = kv(&[
        ("net.core.somaxconn", "65535"),
        ("net.ipv4.tcp_fin_timeout", "15"),
        ("net.ipv4.ip_local_reserved_ports", "7000-7199"),
        ("net.ipv4.tcp_tw_reuse", "1"),
        ("-net.netfilter.nf_conntrack_max", "2097152"),
    ]);
    let orig = originals(&[
        ("net.core.somaxconn", Some("4096")),
        ("net.ipv4.tcp_fin_timeout", Some("60")),
        ("net.ipv4.ip_local_reserved_ports", Some("")),
        ("net.ipv4.tcp_tw_reuse", Some("1")),
        ("net.netfilter.nf_conntrack_max", None),
    ]);
    let g = ablate("sysctl/c1m.conf", &entries, &orig, &[Backend::Uring]).unwrap();
    assert_eq!(
        names(&g),
        [
            "uring-profile",
            "uring-no-somaxconn",
            "uring-no-tcp-fin-timeout",
            "uring-no-ip-local-reserved-ports",
            "uring-untuned"
        ]
    );
    let v = |n: &str| g.variants.iter().find(|v| v.name == n).unwrap();
    assert_eq!(
        v("uring-profile").sysctls.len(),
        4,
        "the absent optional key is left out"
    );
    // The key put back to its original, the others as the profile has them.
    assert_eq!(
        v("uring-no-somaxconn").sysctls,
        kv(&[
            ("net.core.somaxconn", "4096"),
            ("net.ipv4.tcp_fin_timeout", "15"),
            ("net.ipv4.ip_local_reserved_ports", "7000-7199"),
            ("net.ipv4.tcp_tw_reuse", "1"),
        ])
    );
    // An empty original is not written: the key is left as the machine has it.
    assert!(!v("uring-no-ip-local-reserved-ports")
        .sysctls
        .iter()
        .any(|(k, _)| k == "net.ipv4.ip_local_reserved_ports"));
    assert!(v("uring-untuned").sysctls.is_empty());
    assert!(!g.study.run_wide_tuning);
    assert_eq!(g.study.baseline["uring-no-somaxconn"], "uring-profile");
    assert_eq!(g.study.baseline["uring-untuned"], "uring-profile");
    assert!(!g.study.baseline.contains_key("uring-profile"));
    let notes = g.study.notes.join("\n");
    assert!(notes.contains("nf_conntrack_max is absent"), "{notes}");
    assert!(
        notes.contains("net.ipv4.tcp_tw_reuse is 1 on this machine already"),
        "{notes}"
    );
    // A key the kernel lacks that the profile does not mark optional.
    let e = ablate(
        "p.conf",
        &kv(&[("net.ipv4.tcp_no_delay", "1")]),
        &originals(&[("net.ipv4.tcp_no_delay", None)]),
        &[Backend::Uring],
    )
    .unwrap_err();
    assert!(e.contains("no sysctl net.ipv4.tcp_no_delay"), "{e}");
}

#[test]
fn profiles_side_by_side_one_variant_each() {
    let named = vec![
        (
            "sysctl/c1m.conf".to_string(),
            kv(&[("net.core.somaxconn", "65535")]),
        ),
        (
            "sysctl/guides.conf".to_string(),
            kv(&[
                ("net.core.somaxconn", "65535"),
                ("-net.ipv4.tcp_no_delay", "1"),
            ]),
        ),
    ];
    let orig = originals(&[
        ("net.core.somaxconn", Some("4096")),
        ("net.ipv4.tcp_no_delay", None),
    ]);
    let g = profiles(&named, &orig, &[Backend::Uring, Backend::Epoll]).unwrap();
    assert_eq!(
        names(&g),
        ["uring-c1m", "uring-guides", "epoll-c1m", "epoll-guides"]
    );
    assert_eq!(
        g.variants[1].sysctls,
        kv(&[("net.core.somaxconn", "65535")])
    );
    assert!(g.study.notes[0].contains("tcp_no_delay is absent"));
    let same = vec![named[0].clone(), named[0].clone()];
    assert!(profiles(&same, &orig, &[Backend::Uring])
        .unwrap_err()
        .contains("same name"));
}

#[test]
fn options_tune_run_wide_only_when_the_variants_do_not_carry_the_profile() {
    let o = crate::options::Options::from_args(
        &args(&["--ablate", "--backends", "uring", "--scenarios", "hold"]),
        &root(),
    )
    .unwrap();
    assert!(!o.tune, "an ablation tunes per case");
    assert!(o.variants.iter().any(|v| v.name == "uring-untuned"));
    assert!(o.study.is_some());
    let o = crate::options::Options::from_args(
        &args(&[
            "--sweep",
            "net.core.somaxconn=1024|4096",
            "--backends",
            "uring",
        ]),
        &root(),
    )
    .unwrap();
    assert!(o.tune);
    assert_eq!(o.variants.len(), 2);
    let e = crate::options::Options::from_args(
        &args(&["--sweep", "net.ipv4.tcp_no_delay=0|1"]),
        &root(),
    )
    .unwrap_err();
    let u = e
        .downcast_ref::<crate::UsageError>()
        .expect("a usage error");
    assert!(u.0.contains("net.ipv4.tcp_no_delay"), "{}", u.0);
    let e = crate::options::Options::from_args(
        &args(&["--ablate", "--set", "net.core.somaxconn=1"]),
        &root(),
    )
    .unwrap_err();
    assert!(format!("{e}").contains("--set with --ablate"), "{e}");
}

#[test]
fn an_experiment_file_stands_for_its_arguments() {
    let text = r#"
title = "t"
scenarios = ["hold", "pingpong"]
backends = ["uring"]
rounds = 5
duration = 10
conns = 20000
ablate = "sysctl/c1m.conf"
"#;
    let e = from_toml(text, &args(&["--rounds", "2"]), Path::new("/r")).unwrap();
    assert_eq!(e.args.scenarios, "hold,pingpong");
    assert_eq!(e.args.backends, "uring");
    assert_eq!(e.args.rounds.as_deref(), Some("2"), "the command line wins");
    assert_eq!(e.args.duration.as_deref(), Some("10"));
    assert_eq!(e.args.ablate.as_deref(), Some("/r/sysctl/c1m.conf"));
    assert!(e.variants.is_none());
    let quick = from_toml(text, &args(&["--quick"]), Path::new("/r")).unwrap();
    assert_eq!((quick.args.duration, quick.args.conns), (None, None));
    for (bad, msg) in [
        ("scenarios = [\"hold\"]", "exactly one of"),
        (
            "scenarios = [\"hold\"]\nsweep = \"a.b=1|2\"\nablate = \"x\"",
            "exactly one of",
        ),
        (
            "scenarios = [\"hold\"]\nsweeps = \"a.b=1|2\"",
            "unknown field",
        ),
        (
            "scenarios = [\"hold\"]\n[[variant]]\nname = \"A\"\nbackend = \"uring\"",
            "lowercase letters",
        ),
    ] {
        let e = from_toml(bad, &args(&[]), Path::new("/r")).unwrap_err();
        assert!(e.contains(msg), "{bad}: {e}");
    }
}

#[test]
fn the_committed_experiments_load() {
    let dir = root().join("experiments");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "toml") || p.ends_with("two-uring.toml") {
            continue;
        }
        seen += 1;
        let a = args(&["--experiment", p.to_str().unwrap()]);
        let o = crate::options::Options::from_args(&a, &root())
            .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        assert!(
            o.study.is_some() && o.variants.len() >= 2,
            "{}",
            p.display()
        );
    }
    assert!(seen >= 3, "the first study's files are committed");
}

#[test]
fn a_variants_link_runs_on_netns_alone() {
    let mut v = Variant::of_backend(Backend::Uring);
    assert!(check_links(std::slice::from_ref(&v), false, false).is_ok());
    v.link = Some(LinkSpec::parse("delay=50ms").unwrap());
    let one = std::slice::from_ref(&v);
    assert!(check_links(one, false, false)
        .unwrap_err()
        .contains("netns only"));
    assert!(check_links(one, true, true)
        .unwrap_err()
        .contains("one place"));
    assert!(check_links(one, true, false).is_ok());
    let text = "[[variant]]\nname = \"far\"\nbackend = \"uring\"\nlink = \"delay=50ms,loss=0.1%\"";
    let f = crate::variants::from_toml(text).unwrap();
    assert_eq!(f[0].link.map(|l| l.loss_ppm), Some(1000));
    assert!(f[0].describe().ends_with("; link delay=50ms,loss=0.1%"));
    let bad = crate::variants::from_toml(&text.replace("50ms", "50")).unwrap_err();
    assert!(bad.contains("variant far: --link delay=50"), "{bad}");
}

fn snap(overflows: i64, mem: i64, dropped: u64) -> Snapshot {
    Snapshot {
        sites: vec![SiteCounters {
            site: "root namespace".into(),
            counters: [
                ("TcpExt.ListenOverflows".to_string(), overflows),
                ("Tcp.ActiveOpens".to_string(), 10),
            ]
            .into(),
            sockstat: [("TCP.mem".to_string(), mem)].into(),
        }],
        softnet: Some(c1m_platform::procfs::Softnet {
            processed: 0,
            dropped,
            time_squeeze: 0,
        }),
    }
}

#[test]
fn kernel_json_holds_the_deltas_of_the_window() {
    let v = kernel_json(&snap(5, 10, 1), &snap(12, 30, 4));
    assert_eq!(v["totals"]["TcpExt.ListenOverflows"], 7);
    assert_eq!(v["totals"]["TcpExt.TCPSynRetrans"], 0);
    assert_eq!(v["totals"]["softnet.dropped"], 3);
    assert_eq!(
        v["sites"][0]["changed"],
        json!({"TcpExt.ListenOverflows": 7})
    );
    assert_eq!(v["sites"][0]["sockstat_after"]["TCP.mem"], 30);
}

fn row(variant: &str, round: u64, overflows: i64) -> Row {
    Row {
        run: RunFolder {
            dir: PathBuf::new(),
            name: variant.into(),
            case: CaseRecord {
                variant: Some(variant.into()),
                round: Some(round),
                ..CaseRecord::default()
            },
            key: variant.into(),
            summary: None,
            server: None,
            hold: Value::Null,
            window_cpu_us_per_req: None,
            failed: false,
        },
        kernel: json!({"totals": {"TcpExt.ListenOverflows": overflows}}),
    }
}

use serde_json::Value;

#[test]
fn verdicts_are_clear_none_or_cannot_tell() {
    let rows = vec![
        row("uring-profile", 1, 0),
        row("uring-profile", 2, 0),
        row("uring-profile", 3, 0),
        row("uring-no-somaxconn", 1, 40),
        row("uring-no-somaxconn", 2, 12),
        row("uring-no-somaxconn", 3, 30),
        row("uring-no-fin-timeout", 1, 0),
        row("uring-no-fin-timeout", 2, 0),
        row("uring-no-fin-timeout", 3, 0),
        row("uring-untuned", 1, 50),
    ];
    let g = group_by(&rows, |r| r.run.key.as_str());
    assert_eq!(verdict(&g[0], &g[1]), "clear: ListenOverflows ↑+30");
    assert_eq!(verdict(&g[0], &g[2]), "none");
    assert!(verdict(&g[0], &g[3]).starts_with("cannot tell"));
    // What the verdict weighed: every tested column had 3 paired rounds, each all one
    // way by chance with probability 1/4.
    let w = weigh(&g[0], &g[1]);
    assert!(w.tested >= 1 && w.clear == 1, "{w:?}");
    assert!((w.chance - 0.25 * w.tested as f64).abs() < 1e-9, "{w:?}");
    assert_eq!(weigh(&g[0], &g[3]).tested, 0);
    assert!(chance_line(&[w]).contains("no more than chance"));
    let many = Verdict {
        text: String::new(),
        tested: 20,
        clear: 15,
        chance: 5.0,
    };
    let line = chance_line(&[many]);
    assert!(
        line.starts_with("- 'clear' columns: 15 of 20 tested; chance alone would give about 5 "),
        "{line}"
    );
    assert!(line.contains("more than chance: the marks"), "{line}");
    // Mixed signs over the rounds: no clear difference.
    let mixed = vec![
        row("a", 1, 1),
        row("a", 2, 5),
        row("a", 3, 5),
        row("b", 1, 3),
        row("b", 2, 2),
        row("b", 3, 9),
    ];
    let m = group_by(&mixed, |r| r.run.key.as_str());
    assert_eq!(verdict(&m[0], &m[1]), "none");
    // Two rounds all one way are still chance half the time.
    let two = vec![
        row("a", 1, 1),
        row("a", 2, 1),
        row("b", 1, 3),
        row("b", 2, 2),
    ];
    let t = group_by(&two, |r| r.run.key.as_str());
    assert_eq!(
        verdict(&t[0], &t[1]),
        "cannot tell (2 paired rounds, fewer than 3)"
    );
    let study = Study {
        baseline: [
            (
                "uring-no-somaxconn".to_string(),
                "uring-profile".to_string(),
            ),
            ("uring-untuned".to_string(), "uring-profile".to_string()),
        ]
        .into(),
        ..Study::default()
    };
    let t = table_of(&study, &rows);
    assert_eq!(t.lines().count(), 2 + 4, "{t}");
    assert!(t.contains("| uring-profile |  | 3 |"), "{t}");
    assert!(t.contains("(the baseline)"), "{t}");
    assert!(t.contains("| 30 (12-40) |"), "{t}");
}
