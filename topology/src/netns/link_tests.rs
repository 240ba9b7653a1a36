//! `--link` without root: parsing, the tc commands, and the read-back parser.
//!
//! The netem read-backs below are what iproute2 6.1's `netem_print_opt` (tc/q_netem.c)
//! prints in JSON for the commands [`tc_argv`] makes: times in seconds, loss as a
//! fraction, the rate in bytes per second. The `noqueue` one is captured from a veth.

use super::*;
use crate::netns::{LinkOptions, NetnsPlan, DEVICE};

fn spec(text: &str) -> LinkSpec {
    LinkSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn error(text: &str) -> String {
    match LinkSpec::parse(text) {
        Ok(s) => panic!("{text} parsed as {s:?}"),
        Err(e) => e.to_string(),
    }
}

const NOQUEUE: &str = r#"[{"kind":"noqueue","handle":"0:","root":true,"refcnt":2,"options":{}}]"#;

/// `netem limit 10000000 delay 50000us 5000us loss 0.5% rate 1000000000bit`.
const NETEM_FULL: &str = r#"[{"kind":"netem","handle":"8001:","root":true,"refcnt":2,"options":{"limit":10000000,"delay":{"delay":0.05,"jitter":0.005,"correlation":0},"loss-random":{"loss":0.005,"correlation":0},"rate":{"rate":125000000,"packetoverhead":0,"cellsize":0,"celloverhead":0},"ecn":false,"gap":0}}]"#;

/// `netem limit 10000000 delay 50000us`.
const NETEM_DELAY: &str = r#"[{"kind":"netem","handle":"8002:","root":true,"refcnt":2,"options":{"limit":10000000,"delay":{"delay":0.05,"jitter":0,"correlation":0},"ecn":false,"gap":0}}]"#;

#[test]
fn the_issues_example_parses() {
    let s = spec("delay=50ms,jitter=5ms,loss=0.5%,rate=1gbit");
    assert_eq!(
        s,
        LinkSpec {
            delay_us: 50_000,
            jitter_us: 5_000,
            loss_ppm: 5_000,
            rate_bit: Some(1_000_000_000),
            limit: DEFAULT_LIMIT,
        }
    );
    assert!((s.loss_fraction() - 0.005).abs() < 1e-12);
    let d = spec("delay=50ms");
    assert_eq!(
        (d.delay_us, d.jitter_us, d.loss_ppm, d.rate_bit),
        (50_000, 0, 0, None)
    );
}

#[test]
fn units_and_decimals() {
    assert_eq!(spec("delay=1500us").delay_us, 1500);
    assert_eq!(spec("delay=1.5ms").delay_us, 1500);
    assert_eq!(spec("delay=0.25s").delay_us, 250_000);
    assert_eq!(spec("delay=10s").delay_us, MAX_DELAY_US);
    assert_eq!(spec("delay = 2MS , loss = 100%").delay_us, 2000);
    assert_eq!(spec("loss=0.0001%").loss_ppm, 1);
    assert_eq!(spec("loss=100%").loss_ppm, 1_000_000);
    assert_eq!(spec("rate=8kbit").rate_bit, Some(8_000));
    assert_eq!(spec("rate=2.5mbit").rate_bit, Some(2_500_000));
    assert_eq!(spec("rate=1000gbit").rate_bit, Some(MAX_RATE_BIT));
    assert_eq!(spec("delay=1ms,limit=5000").limit, 5000);
}

#[test]
fn bad_values_say_how_to_fix() {
    for (text, says) in [
        ("", "give e.g. delay=50ms"),
        ("delay", "is not key=value"),
        ("delay=50ms,", "is not key=value"),
        (
            "lag=5ms",
            "the keys are delay, jitter, loss, rate and limit",
        ),
        ("delay=5ms,delay=6ms", "delay is given twice"),
        ("delay=50", "give a unit: 50ms"),
        ("delay=50sec", "use us, ms or s"),
        ("delay=-5ms", "use us, ms or s"),
        ("delay=11s", "at most 10s"),
        ("delay=0.5us", "more decimals than this unit resolves"),
        ("delay=1..5ms", "is not a number"),
        ("delay=5.ms", "is not a number"),
        ("delay=99999999999999999999s", "too large"),
        ("loss=0.5", "give a percentage: loss=0.5%"),
        ("loss=101%", "at most 100%"),
        ("loss=0.00001%", "more decimals"),
        ("rate=1gb", "use kbit, mbit or gbit"),
        ("rate=1000", "give a unit"),
        ("rate=1kbit", "from 8kbit to 1000gbit"),
        ("rate=1001gbit", "from 8kbit to 1000gbit"),
        ("delay=1ms,limit=0", "from 1 to"),
        ("delay=1ms,limit=1e6", "not a number"),
        ("jitter=5ms", "add delay= or lower jitter="),
        (
            "delay=1ms,jitter=2ms",
            "jitter needs a delay at least as large",
        ),
        ("delay=0ms", "shapes nothing"),
        ("limit=10", "shapes nothing"),
    ] {
        let e = error(text);
        assert!(e.contains(says), "{text:?}: {e}");
        assert!(e.starts_with("--link"), "{text:?}: {e}");
    }
}

#[test]
fn the_text_reads_back_to_the_same_spec() {
    for (text, canonical) in [
        (
            "delay=50ms,jitter=5ms,loss=0.5%,rate=1gbit",
            "delay=50ms,jitter=5ms,loss=0.5%,rate=1gbit",
        ),
        ("rate=1gbit,delay=50ms", "delay=50ms,rate=1gbit"),
        ("delay=1500us", "delay=1.5ms"),
        ("delay=999us,loss=0.1%", "delay=999us,loss=0.1%"),
        ("delay=2s", "delay=2s"),
        ("delay=2.5s", "delay=2500ms"),
        ("loss=100%", "loss=100%"),
        ("loss=0.0001%", "loss=0.0001%"),
        ("rate=2.5mbit", "rate=2.5mbit"),
        ("rate=8kbit,limit=100", "rate=8kbit,limit=100"),
    ] {
        let s = spec(text);
        assert_eq!(s.to_string(), canonical, "{text}");
        assert_eq!(spec(canonical), s, "{canonical}");
        assert_eq!(canonical.parse::<LinkSpec>(), Ok(s), "FromStr");
    }
}

#[test]
fn tc_commands_name_the_namespace_and_use_exact_units() {
    let s = spec("delay=50ms,jitter=5ms,loss=0.5%,rate=1gbit");
    let line = |argv: &Vec<String>| argv.join(" ");
    let cmds = tc_argv("c1m-cli0-abc123", "c1m0", &s);
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        line(&cmds[0]),
        "tc -n c1m-cli0-abc123 qdisc replace dev c1m0 root netem limit 10000000 \
         delay 50000us 5000us loss 0.5% rate 1000000000bit"
    );
    let cmds = tc_argv("ns", "d", &spec("delay=50ms"));
    assert_eq!(
        line(&cmds[0]),
        "tc -n ns qdisc replace dev d root netem limit 10000000 delay 50000us"
    );
    let cmds = tc_argv("ns", "d", &spec("loss=0.0001%,limit=7"));
    assert_eq!(
        line(&cmds[0]),
        "tc -n ns qdisc replace dev d root netem limit 7 loss 0.0001%"
    );
    assert_eq!(
        line(&clear_argv("ns", "d")),
        "tc -n ns qdisc del dev d root"
    );
    assert_eq!(line(&show_argv("ns", "d")), "tc -n ns -j qdisc show dev d");
}

#[test]
fn read_back_of_a_bare_veth_is_not_netem() {
    let got = parse_show(NOQUEUE).expect("noqueue");
    assert_eq!(got.kind, "noqueue");
    assert_eq!(got.netem, None);
    let d = differences(&spec("delay=50ms"), &got);
    assert_eq!(d, ["the root qdisc is \"noqueue\", not netem"]);
    // Captured from a veth that was never up.
    assert_eq!(parse_show("[]").expect("no qdisc").kind, "none");
}

#[test]
fn read_back_of_netem_matches_what_was_asked() {
    let full = spec("delay=50ms,jitter=5ms,loss=0.5%,rate=1gbit");
    let got = parse_show(NETEM_FULL).expect("netem");
    let n = got.netem.as_ref().expect("netem options");
    assert_eq!(n.handle, "8001:");
    assert_eq!(n.limit, 10_000_000);
    assert_eq!(n.rate_bytes_per_s, Some(125_000_000));
    assert!(n.other.is_empty(), "{n:?}");
    assert!(
        differences(&full, &got).is_empty(),
        "{:?}",
        differences(&full, &got)
    );
    let delay = parse_show(NETEM_DELAY).expect("netem");
    assert!(differences(&spec("delay=50ms"), &delay).is_empty());
    // 6 printed digits: 1.23456 s read back for 1234567 us is close enough.
    let text = NETEM_DELAY.replace("0.05,", "1.23457,");
    assert!(differences(&spec("delay=1234567us"), &parse_show(&text).unwrap()).is_empty());
    // The smallest loss, 0.0001%, prints as 1e-06 and is told apart from 0.0002%.
    let tiny = NETEM_DELAY.replace(
        r#""ecn""#,
        r#""loss-random":{"loss":1e-06,"correlation":0},"ecn""#,
    );
    let tiny = parse_show(&tiny).expect("netem");
    assert!(differences(&spec("delay=50ms,loss=0.0001%"), &tiny).is_empty());
    assert_eq!(
        differences(&spec("delay=50ms,loss=0.0002%"), &tiny).len(),
        1
    );
}

#[test]
fn read_back_differences_are_named() {
    let got = parse_show(NETEM_FULL).expect("netem");
    // A rate left over from an earlier spec, and a different delay, loss and limit.
    let d = differences(&spec("delay=40ms,jitter=5ms,loss=1%,limit=1000"), &got);
    assert_eq!(d.len(), 4, "{d:?}");
    assert!(d[0].starts_with("delay is 0.05s, asked 0.04s"), "{d:?}");
    assert!(d[1].starts_with("loss is 0.005"), "{d:?}");
    assert!(d[2].starts_with("limit is 10000000, asked 1000"), "{d:?}");
    assert!(
        d[3].contains("rate is Some(125000000) bytes/s, asked None"),
        "{d:?}"
    );
    let dup = NETEM_DELAY.replace(
        r#""ecn":false"#,
        r#""duplicate":{"duplicate":0.01,"correlation":0},"ecn":true"#,
    );
    let d = differences(&spec("delay=50ms"), &parse_show(&dup).unwrap());
    assert_eq!(d, ["netem also has duplicate, ecn set"]);
}

#[test]
fn read_back_that_is_not_tc_json_is_an_error() {
    assert!(parse_show("qdisc noqueue 0: root refcnt 2").is_err());
    assert!(parse_show("{}").is_err(), "not a list");
    let child_only = r#"[{"kind":"netem","handle":"2:","parent":"1:1","options":{"limit":1}}]"#;
    assert!(parse_show(child_only).is_err());
    let bad_delay = NETEM_DELAY.replace("0.05,", "\"50ms\",");
    let e = parse_show(&bad_delay).expect_err("a string delay");
    assert!(format!("{e:#}").contains("delay is not a number"), "{e:#}");
    let no_limit = NETEM_DELAY.replace(r#""limit":10000000,"#, "");
    assert!(parse_show(&no_limit).is_err());
}

#[test]
fn the_client_side_of_each_veth_is_shaped() {
    let one = NetnsPlan::new(1, 1, LinkOptions::default(), "abc123").expect("plan");
    assert_eq!(client_side(&one), [("c1m-cli0-abc123", DEVICE)]);
    let two = NetnsPlan::new(2, 3, LinkOptions::default(), "abc123").expect("plan");
    assert_eq!(
        client_side(&two),
        [("c1m-cli0-abc123", DEVICE), ("c1m-cli1-abc123", DEVICE)]
    );
}

#[test]
fn describe_says_what_delay_and_loss_mean() {
    let v = spec("delay=50ms,loss=0.1%").describe();
    assert_eq!(v["text"], "delay=50ms,loss=0.1%");
    assert_eq!(v["delay_us"], 50_000);
    assert!(v["delay_means"].as_str().unwrap().contains("round-trip"));
    assert_eq!(v["loss_fraction"], 0.001);
    assert_eq!(v["rate_bit_per_s"], Value::Null);
}
