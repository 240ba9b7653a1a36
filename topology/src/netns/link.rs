//! `--link delay=50ms,jitter=5ms,loss=0.5%,rate=1gbit`: a shaped link, as tc netem on the
//! client side of each veth (the client namespace's end, see [`client_side`]).
//!
//! Only the client's egress is shaped, so the server's packets cross unshaped:
//! - `delay` is added once per round trip: it **is** the added RTT (`delay=50ms` gives a
//!   50 ms RTT), not a one-way delay;
//! - `loss` drops that share of the packets the client sends (SYNs, requests, its ACKs);
//!   the server's packets are never dropped;
//! - `rate` limits client-to-server traffic only.
//!
//! Rate is netem's own `rate`, not a tbf child: one qdisc to set and read back, and netem
//! then schedules each packet after the previous one, so jitter does not reorder packets
//! (without `rate`, netem draws each packet's delay on its own and packets overtake each
//! other, which TCP reads as loss). tbf would model a token bucket with a burst and its
//! own queue, which this kit has no use for.
//!
//! The qdisc lives on the veth, inside the namespace: deleting the namespace (the
//! topology's teardown on every exit path, the watchdog after a SIGKILL) removes it.

use super::guard::run_argv;
use super::NetnsPlan;
use crate::tools::find_program;
use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt;

/// Largest `delay`: netem keeps it in 32-bit ticks, and no path on earth is slower.
pub const MAX_DELAY_US: u64 = 10_000_000;
/// Slowest `rate`: below it one 1500-byte packet takes longer than 1.5 s.
pub const MIN_RATE_BIT: u64 = 8_000;
/// Fastest `rate`: beyond what a veth moves.
pub const MAX_RATE_BIT: u64 = 1_000_000_000_000;
/// netem's queue (packets), the delay line included. The kernel's default, 1000, drops
/// whatever exceeds delay x packet rate: 1000 packets over 50 ms is only 20k packets/s,
/// which a ramp or the heartbeats of 1M connections pass. A delay line should not drop,
/// so the default is high; memory is spent only on packets actually queued.
pub const DEFAULT_LIMIT: u32 = 10_000_000;
/// Largest `limit=` accepted.
pub const MAX_LIMIT: u32 = 100_000_000;
/// Loss resolution: parts per million of packets (0.0001%).
const PPM: u64 = 1_000_000;

/// What `--link` asks for. All integers, so a spec compares and prints exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LinkSpec {
    /// Added round-trip time, microseconds (see the module notes).
    pub delay_us: u64,
    /// netem's jitter around `delay_us` (uniform), microseconds; at most `delay_us`.
    pub jitter_us: u64,
    /// Share of the client's packets dropped, parts per million (5000 = 0.5%).
    pub loss_ppm: u32,
    /// Client-to-server rate, bits per second (1000-based, as tc).
    pub rate_bit: Option<u64>,
    /// netem's queue limit, packets.
    pub limit: u32,
}

/// A `--link` value that cannot be used, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkSpecError {
    #[error("--link is empty: give e.g. delay=50ms or delay=50ms,jitter=5ms,loss=0.5%,rate=1gbit")]
    Empty,
    #[error("--link: {0:?} is not key=value; write e.g. delay=50ms,loss=0.1%")]
    NotKeyValue(String),
    #[error("--link: unknown key {0:?}; the keys are delay, jitter, loss, rate and limit")]
    UnknownKey(String),
    #[error("--link: {0} is given twice; give each key once")]
    Twice(&'static str),
    #[error("--link {key}={value}: {why}")]
    Value {
        key: &'static str,
        value: String,
        why: String,
    },
    #[error("--link: jitter needs a delay at least as large (netem cannot delay by less than 0); add delay= or lower jitter=")]
    JitterOverDelay,
    #[error("--link: {0} shapes nothing; give a delay, loss or rate, or leave --link out")]
    Nothing(String),
}

impl LinkSpec {
    /// Parses `key=value,...` (see the module notes and the README's `--link`).
    pub fn parse(text: &str) -> Result<LinkSpec, LinkSpecError> {
        if text.trim().is_empty() {
            return Err(LinkSpecError::Empty);
        }
        let mut seen: Vec<&'static str> = Vec::new();
        let mut spec = LinkSpec {
            delay_us: 0,
            jitter_us: 0,
            loss_ppm: 0,
            rate_bit: None,
            limit: DEFAULT_LIMIT,
        };
        for item in text.split(',') {
            let (key, value) = item
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| LinkSpecError::NotKeyValue(item.to_owned()))?;
            let key: &'static str = match key {
                "delay" => "delay",
                "jitter" => "jitter",
                "loss" => "loss",
                "rate" => "rate",
                "limit" => "limit",
                other => return Err(LinkSpecError::UnknownKey(other.to_owned())),
            };
            if seen.contains(&key) {
                return Err(LinkSpecError::Twice(key));
            }
            seen.push(key);
            let bad = |why: String| LinkSpecError::Value {
                key,
                value: value.to_owned(),
                why,
            };
            match key {
                "delay" | "jitter" => {
                    let us = parse_time_us(value).map_err(bad)?;
                    if us > MAX_DELAY_US {
                        return Err(bad("at most 10s".into()));
                    }
                    if key == "delay" {
                        spec.delay_us = us;
                    } else {
                        spec.jitter_us = us;
                    }
                }
                "loss" => spec.loss_ppm = parse_loss_ppm(value).map_err(bad)?,
                "rate" => spec.rate_bit = Some(parse_rate_bit(value).map_err(bad)?),
                _ => spec.limit = parse_limit(value).map_err(bad)?,
            }
        }
        if spec.jitter_us > spec.delay_us {
            return Err(LinkSpecError::JitterOverDelay);
        }
        if spec.delay_us == 0 && spec.loss_ppm == 0 && spec.rate_bit.is_none() {
            return Err(LinkSpecError::Nothing(text.to_owned()));
        }
        Ok(spec)
    }

    /// Loss as a fraction of packets (0.005 for 0.5%).
    pub fn loss_fraction(&self) -> f64 {
        f64::from(self.loss_ppm) / PPM as f64
    }

    /// The spec and the commands, for topology.json.
    pub fn describe(&self) -> Value {
        json!({
            "text": self.to_string(),
            "delay_us": self.delay_us,
            "delay_means": "added round-trip time (netem on the client's egress only)",
            "jitter_us": self.jitter_us,
            "loss_fraction": self.loss_fraction(),
            "loss_applies_to": "packets the client sends",
            "rate_bit_per_s": self.rate_bit,
            "limit_packets": self.limit,
        })
    }
}

impl std::str::FromStr for LinkSpec {
    type Err = LinkSpecError;

    /// For the option parser: `--link TEXT`.
    fn from_str(text: &str) -> Result<LinkSpec, LinkSpecError> {
        LinkSpec::parse(text)
    }
}

impl fmt::Display for LinkSpec {
    /// The canonical `--link` text: [`LinkSpec::parse`] reads it back to the same spec.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.delay_us > 0 {
            parts.push(format!("delay={}", time_text(self.delay_us)));
        }
        if self.jitter_us > 0 {
            parts.push(format!("jitter={}", time_text(self.jitter_us)));
        }
        if self.loss_ppm > 0 {
            parts.push(format!(
                "loss={}%",
                decimal_text(u64::from(self.loss_ppm), 4)
            ));
        }
        if let Some(rate) = self.rate_bit {
            parts.push(format!("rate={}", rate_text(rate)));
        }
        if self.limit != DEFAULT_LIMIT {
            parts.push(format!("limit={}", self.limit));
        }
        write!(f, "{}", parts.join(","))
    }
}

/// A non-negative decimal (`12`, `0.5`) times 10^`scale`, exactly; an error if it needs
/// more than `scale` decimals.
fn parse_scaled(number: &str, scale: u32) -> Result<u64, String> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !(frac.is_empty() || digits(frac)) || number.ends_with('.') {
        return Err(format!("{number:?} is not a number"));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale as usize {
        return Err(format!(
            "{number} has more decimals than this unit resolves"
        ));
    }
    let too_big = || format!("{number} is too large");
    let int: u64 = int.parse().map_err(|_| too_big())?;
    let frac_value: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>().map_err(|_| too_big())? * 10u64.pow(scale - frac.len() as u32)
    };
    int.checked_mul(10u64.pow(scale))
        .and_then(|v| v.checked_add(frac_value))
        .ok_or_else(too_big)
}

/// Splits `50ms` into (`50`, `ms`).
fn split_unit(value: &str) -> (&str, &str) {
    let at = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    value.split_at(at)
}

fn parse_time_us(value: &str) -> Result<u64, String> {
    let (number, unit) = split_unit(value);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "us" => 0,
        "ms" => 3,
        "s" => 6,
        "" => return Err(format!("give a unit: {number}ms, {number}us or {number}s")),
        _ => return Err(format!("unknown unit {unit:?}; use us, ms or s")),
    };
    parse_scaled(number, scale)
}

fn parse_loss_ppm(value: &str) -> Result<u32, String> {
    let Some(number) = value.strip_suffix('%') else {
        return Err(format!("give a percentage: loss={value}%"));
    };
    let ppm = parse_scaled(number, 4)?;
    if ppm > PPM {
        return Err("at most 100%".into());
    }
    u32::try_from(ppm).map_err(|_| "at most 100%".into())
}

fn parse_rate_bit(value: &str) -> Result<u64, String> {
    let (number, unit) = split_unit(value);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "kbit" => 3,
        "mbit" => 6,
        "gbit" => 9,
        "" => return Err(format!("give a unit: {number}mbit or {number}gbit")),
        _ => {
            return Err(format!(
                "unknown unit {unit:?}; use kbit, mbit or gbit (bits per second, 1000-based)"
            ))
        }
    };
    let bits = parse_scaled(number, scale)?;
    if !(MIN_RATE_BIT..=MAX_RATE_BIT).contains(&bits) {
        return Err("give a rate from 8kbit to 1000gbit".into());
    }
    Ok(bits)
}

fn parse_limit(value: &str) -> Result<u32, String> {
    let n = parse_scaled(value, 0)?;
    match u32::try_from(n) {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("give a packet count from 1 to {MAX_LIMIT}")),
    }
}

/// `value / 10^scale` with no trailing zeros (`5000, 4` -> `0.5`).
fn decimal_text(value: u64, scale: u32) -> String {
    let unit = 10u64.pow(scale);
    let (int, frac) = (value / unit, value % unit);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0width$}", width = scale as usize);
    format!("{int}.{}", frac.trim_end_matches('0'))
}

fn time_text(us: u64) -> String {
    match us {
        _ if us >= 1_000_000 && us.is_multiple_of(1_000_000) => format!("{}s", us / 1_000_000),
        _ if us >= 1000 => format!("{}ms", decimal_text(us, 3)),
        _ => format!("{us}us"),
    }
}

fn rate_text(bits: u64) -> String {
    let (unit, scale) = match bits {
        _ if bits >= 1_000_000_000 => ("gbit", 9),
        _ if bits >= 1_000_000 => ("mbit", 6),
        _ => ("kbit", 3),
    };
    format!("{}{unit}", decimal_text(bits, scale))
}

/// Where `--link` applies: each client namespace's own veth end (client to server, or
/// client to the bridge when K > 1), as (namespace, device).
pub fn client_side(plan: &NetnsPlan) -> Vec<(&str, &str)> {
    plan.clients()
        .iter()
        .map(|c| (c.namespace.as_str(), c.device.as_str()))
        .collect()
}

fn tc(ns: &str, args: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = ["tc", "-n", ns].map(String::from).to_vec();
    argv.extend(args.iter().map(|s| s.to_string()));
    argv
}

/// The tc commands that shape `dev` in namespace `ns` as `spec` asks: one `netem` root
/// qdisc (see the module notes for why rate is netem's). Values are written in the
/// smallest units (`us`, `bit`) so tc converts nothing but the percentage.
pub fn tc_argv(ns: &str, dev: &str, spec: &LinkSpec) -> Vec<Vec<String>> {
    let mut args: Vec<String> = ["qdisc", "replace", "dev", dev, "root", "netem", "limit"]
        .map(String::from)
        .to_vec();
    args.push(spec.limit.to_string());
    if spec.delay_us > 0 {
        args.extend(["delay".into(), format!("{}us", spec.delay_us)]);
        if spec.jitter_us > 0 {
            args.push(format!("{}us", spec.jitter_us));
        }
    }
    if spec.loss_ppm > 0 {
        let percent = decimal_text(u64::from(spec.loss_ppm), 4);
        args.extend(["loss".into(), format!("{percent}%")]);
    }
    if let Some(rate) = spec.rate_bit {
        args.extend(["rate".into(), format!("{rate}bit")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    vec![tc(ns, &args)]
}

/// The command that removes the root qdisc of `dev` (back to the veth's `noqueue`).
pub fn clear_argv(ns: &str, dev: &str) -> Vec<String> {
    tc(ns, &["qdisc", "del", "dev", dev, "root"])
}

/// Removes the root qdisc of `dev` in `ns`: a variant's link, after its case.
pub fn clear(ns: &str, dev: &str) -> Result<()> {
    run_argv(&clear_argv(ns, dev), None)
        .map(|_| ())
        .with_context(|| format!("removing the link shaping of {dev} in {ns}"))
}

/// The command that reads back the qdiscs of `dev`, as JSON.
pub fn show_argv(ns: &str, dev: &str) -> Vec<String> {
    tc(ns, &["-j", "qdisc", "show", "dev", dev])
}

/// A netem root qdisc as `tc -j qdisc show` reports it (iproute2 prints times in
/// seconds, loss as a fraction and the rate in bytes per second).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Netem {
    pub handle: String,
    pub limit: u64,
    pub delay_s: f64,
    pub jitter_s: f64,
    pub loss_fraction: f64,
    pub rate_bytes_per_s: Option<u64>,
    /// Other netem features found set (duplicate, reorder, corrupt, ...): none of them
    /// is ever asked for, so any one means someone else changed the qdisc.
    pub other: Vec<String>,
}

/// The root qdisc of a device, read back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RootQdisc {
    /// `none` for a device with no qdisc (one that was never up).
    pub kind: String,
    /// Set when `kind` is `netem`.
    pub netem: Option<Netem>,
}

/// Features netem reports that a [`LinkSpec`] never sets.
const UNASKED: [&str; 7] = [
    "duplicate",
    "reorder",
    "corrupt",
    "slot",
    "loss-state",
    "loss-gemodel",
    "ecn",
];

/// The root qdisc in the output of `tc -j qdisc show dev X`.
pub fn parse_show(json_text: &str) -> Result<RootQdisc> {
    let list: Value =
        serde_json::from_str(json_text).context("the output of `tc -j qdisc show` is not JSON")?;
    let Some(all) = list.as_array() else {
        bail!("`tc -j qdisc show` printed no list: {json_text}");
    };
    if all.is_empty() {
        // A device that was never up has no qdisc at all.
        return Ok(RootQdisc {
            kind: "none".into(),
            netem: None,
        });
    }
    let Some(root) = all.iter().find(|q| q["root"] == true) else {
        bail!("`tc -j qdisc show` lists no root qdisc: {json_text}");
    };
    let kind = root["kind"].as_str().unwrap_or_default().to_owned();
    if kind != "netem" {
        return Ok(RootQdisc { kind, netem: None });
    }
    let o = &root["options"];
    let number = |v: &Value, what: &str| -> Result<f64> {
        match v {
            Value::Null => Ok(0.0),
            v => v
                .as_f64()
                .with_context(|| format!("netem {what} is not a number: {v}")),
        }
    };
    let other = UNASKED
        .iter()
        .filter(|k| match &o[**k] {
            Value::Null => false,
            Value::Bool(b) => *b,
            _ => true,
        })
        .map(|k| k.to_string())
        .collect();
    let netem = Netem {
        handle: root["handle"].as_str().unwrap_or_default().to_owned(),
        limit: o["limit"].as_u64().context("netem without a limit")?,
        delay_s: number(&o["delay"]["delay"], "delay")?,
        jitter_s: number(&o["delay"]["jitter"], "jitter")?,
        loss_fraction: number(&o["loss-random"]["loss"], "loss")?,
        rate_bytes_per_s: match &o["rate"]["rate"] {
            Value::Null => None,
            v => Some(v.as_u64().with_context(|| format!("netem rate {v}"))?),
        },
        other,
    };
    Ok(RootQdisc {
        kind,
        netem: Some(netem),
    })
}

/// What differs between `spec` and the kernel's qdisc; empty when it holds what was
/// asked. Times and loss are compared to what tc's 6-digit printing keeps.
pub fn differences(spec: &LinkSpec, got: &RootQdisc) -> Vec<String> {
    let Some(n) = &got.netem else {
        return vec![format!("the root qdisc is {:?}, not netem", got.kind)];
    };
    let mut diff = Vec::new();
    // `slack`: what rounding to ticks (64 ns) or to 2^-32 of a packet may add.
    let mut check = |what: &str, want: f64, have: f64, slack: f64, unit: &str| {
        if (want - have).abs() > slack + want * 1e-5 {
            diff.push(format!("{what} is {have}{unit}, asked {want}{unit}"));
        }
    };
    check("delay", spec.delay_us as f64 / 1e6, n.delay_s, 2e-6, "s");
    check("jitter", spec.jitter_us as f64 / 1e6, n.jitter_s, 2e-6, "s");
    check("loss", spec.loss_fraction(), n.loss_fraction, 1e-9, "");
    if n.limit != u64::from(spec.limit) {
        diff.push(format!("limit is {}, asked {}", n.limit, spec.limit));
    }
    let want_rate = spec.rate_bit.map(|b| b / 8);
    if n.rate_bytes_per_s != want_rate {
        diff.push(format!(
            "rate is {:?} bytes/s, asked {want_rate:?}",
            n.rate_bytes_per_s
        ));
    }
    if !n.other.is_empty() {
        diff.push(format!("netem also has {} set", n.other.join(", ")));
    }
    diff
}

/// A link shaped and read back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Applied {
    pub namespace: String,
    pub device: String,
    pub spec: LinkSpec,
    /// The commands run, as shell lines.
    pub commands: Vec<String>,
    /// The root qdisc the kernel holds afterwards.
    pub kernel: RootQdisc,
}

impl Applied {
    /// For topology.json: where, what was asked, and what the kernel holds.
    pub fn describe(&self) -> Value {
        json!({
            "namespace": self.namespace,
            "device": self.device,
            "asked": self.spec.describe(),
            "commands": self.commands,
            "kernel": self.kernel,
        })
    }
}

/// The root qdisc of `dev` in `ns`, from the kernel.
pub fn read_back(ns: &str, dev: &str) -> Result<RootQdisc> {
    let out = run_argv(&show_argv(ns, dev), None)?;
    parse_show(&out).with_context(|| format!("reading back the qdisc of {dev} in {ns}"))
}

/// Shapes `dev` in namespace `ns` as `spec` asks, then reads the qdisc back and fails
/// unless the kernel holds exactly that. A netem qdisc already there is removed first:
/// tc's `replace` of a netem keeps the options the new command leaves out (a rate).
pub fn apply(ns: &str, dev: &str, spec: &LinkSpec) -> Result<Applied> {
    if find_program("tc").is_none() {
        bail!("--link needs tc, which is not installed: install iproute2 (sudo scripts/setup.sh)");
    }
    let mut commands = Vec::new();
    if read_back(ns, dev)?.kind == "netem" {
        let clear = clear_argv(ns, dev);
        run_argv(&clear, None)?;
        commands.push(clear.join(" "));
    }
    for argv in tc_argv(ns, dev, spec) {
        run_argv(&argv, None).map_err(|e| {
            if format!("{e:#}").contains("qdisc kind is unknown") {
                e.context(
                    "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM unset, or the \
                     sch_netem module not loaded: try `modprobe sch_netem`); --link needs it",
                )
            } else {
                e.context(format!("shaping {dev} in {ns} as --link {spec}"))
            }
        })?;
        commands.push(argv.join(" "));
    }
    let kernel = read_back(ns, dev)?;
    let diff = differences(spec, &kernel);
    if !diff.is_empty() {
        bail!(
            "--link {spec} on {dev} in {ns}: the kernel holds something else ({}); \
             this kernel or tc cannot represent it, choose other values",
            diff.join("; ")
        );
    }
    Ok(Applied {
        namespace: ns.to_owned(),
        device: dev.to_owned(),
        spec: *spec,
        commands,
        kernel,
    })
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
