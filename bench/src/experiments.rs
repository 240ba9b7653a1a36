//! Kernel tuning experiments as variants: `--sweep KEY=V1|V2`, `--ablate [PROFILE]`,
//! `--profiles A.conf,B.conf`, and `--experiment FILE` (a committed TOML that holds one
//! of them, or `[[variant]]` tables, with the scenarios, counts, rounds and duration).
//! The generators are pure functions of their inputs (profile entries, the machine's
//! original values), so the variant lists are unit-tested; the rounds loop interleaves
//! what they make like any other variants.
//!
//! How tuning is applied: a sweep keeps the run-wide profile (unless `--no-tune`) and
//! sets the swept key for each case on top of it. An ablation or a profiles run carries
//! the profile **in the variants**: nothing is tuned run-wide (as with `--no-tune`), each
//! case sets its variant's keys before the server starts and puts every one back after
//! the case (`topology::case_sysctls`), so the untuned variant runs on the machine as it
//! was. The run's exit restores and verifies every touched key as always.

use crate::cli::RunArgs;
use crate::plan::Backend;
use crate::topology::netns::link::LinkSpec;
use crate::variants::{self, Entry, Variant};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod kernel;
mod table;
pub use kernel::{kernel_json, Snapshot, KERNEL_FILE};
pub use table::study_table;

/// What an experiment is, for its report table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Study {
    /// One line: what was varied.
    pub title: String,
    /// Ablations: variant -> the variant it is paired with (the full profile of the same
    /// backend); the table's verdict column compares them.
    pub baseline: BTreeMap<String, String>,
    /// What the generator left out and why (keys this kernel lacks, keys already at the
    /// profile's value).
    pub notes: Vec<String>,
    /// The run-wide profile is applied (sweeps); false when the variants carry it.
    pub run_wide_tuning: bool,
}

/// Variants and the study they make.
#[derive(Debug, Clone)]
pub struct Generated {
    pub variants: Vec<Variant>,
    pub study: Study,
}

/// `key`'s dotted last word as a name part: `net.core.somaxconn` -> `somaxconn`,
/// `net.ipv4.tcp_rmem` -> `tcp-rmem`.
fn short_key(key: &str) -> String {
    variants::slug(key.rsplit('.').next().unwrap_or(key))
}

/// `wanted` if it is a usable, unused name, else `fallback`.
fn name_or(wanted: String, fallback: String, taken: &[Variant]) -> String {
    if wanted.len() <= 48 && !taken.iter().any(|v| v.name == wanted) {
        wanted
    } else {
        fallback
    }
}

fn variant(name: String, backend: Backend, sysctls: Vec<(String, String)>) -> Variant {
    Variant {
        name,
        backend,
        server_flags: Vec::new(),
        sysctls,
        link: None,
    }
}

/// The key and values of `--sweep KEY=V1|V2|...` (blanks inside a value normalised).
/// `current` is the key's value on this kernel (None: absent, or not probed): a key of
/// several numbers wants as many in every value. `link` sweeps link settings (netns):
/// each value a `--link` text, or `none`.
pub fn parse_sweep(
    spec: &str,
    current: Option<&str>,
    probe: bool,
) -> Result<(String, Vec<String>), String> {
    let Some((key, values)) = spec.split_once('=') else {
        return Err(format!(
            "--sweep {spec:?}: write KEY=V1|V2|..., e.g. --sweep 'net.core.somaxconn=128|4096'"
        ));
    };
    let key = crate::sysctl::normalize(key);
    let values: Vec<String> = values.split('|').map(crate::sysctl::normalize).collect();
    if values.len() < 2 || values.iter().any(String::is_empty) {
        return Err(format!(
            "--sweep {spec:?}: give at least two non-empty values separated by |"
        ));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(format!("--sweep {key}: the value {v:?} is given twice"));
        }
    }
    if key == "link" {
        for v in values.iter().filter(|v| *v != "none") {
            LinkSpec::parse(v).map_err(|e| format!("--sweep link={v}: {e}"))?;
        }
        return Ok((key, values));
    }
    if !crate::sysctl::valid_key(&key) {
        return Err(format!(
            "--sweep {key}: not a sysctl key (dotted lowercase words, like net.core.somaxconn) or `link`"
        ));
    }
    if probe && current.is_none() {
        return Err(format!(
            "--sweep {key}: this kernel has no sysctl {key}; check the name (`sysctl -a | grep WORD`)"
        ));
    }
    let want = current.map_or(1, |c| c.split_whitespace().count());
    if want > 1 {
        if let Some(bad) = values.iter().find(|v| v.split_whitespace().count() != want) {
            return Err(format!(
                "--sweep {key}: {key} takes {want} numbers (now {:?}), the value {bad:?} is not {want}; give {want} per value, e.g. --sweep '{key}={}|...'",
                current.unwrap_or_default(),
                current.unwrap_or_default()
            ));
        }
    }
    Ok((key, values))
}

/// One variant per backend and value, named `<backend>-<key>-<value>`.
pub fn sweep(key: &str, values: &[String], backends: &[Backend]) -> Result<Generated, String> {
    let mut out: Vec<Variant> = Vec::new();
    for &b in backends {
        for (i, v) in values.iter().enumerate() {
            let name = name_or(
                format!("{}-{}-{}", b.name(), short_key(key), variants::slug(v)),
                format!("{}-{}-v{}", b.name(), short_key(key), i + 1),
                &out,
            );
            let mut var = variant(name, b, Vec::new());
            if key == "link" {
                var.link = match v.as_str() {
                    "none" => None,
                    l => Some(LinkSpec::parse(l).map_err(|e| e.to_string())?),
                };
            } else {
                var.sysctls.push((key.to_owned(), v.clone()));
            }
            out.push(variants::check(var)?);
        }
    }
    Ok(Generated {
        variants: out,
        study: Study {
            title: format!("sweep of {key} over {}", values.join(" | ")),
            run_wide_tuning: true,
            ..Study::default()
        },
    })
}

/// `(key, value)` settings, in profile order.
type Settings = Vec<(String, String)>;

/// The keys of `entries` this kernel has (per `originals`), and notes on the others: an
/// optional key (`-KEY`) it lacks is skipped, any other is an error naming it.
fn present(
    entries: &[(String, String)],
    originals: &BTreeMap<String, Option<String>>,
    what: &str,
) -> Result<(Settings, Vec<String>), String> {
    let mut keep = Vec::new();
    let mut notes = Vec::new();
    for (k, v) in entries {
        let bare = k.trim_start_matches('-');
        match originals.get(bare) {
            Some(Some(_)) => keep.push((bare.to_owned(), v.clone())),
            _ if k.starts_with('-') => notes.push(format!(
                "{what}: {bare} is absent on this kernel (optional in the profile): left out"
            )),
            _ => {
                return Err(format!(
                    "{what}: this kernel has no sysctl {bare}: mark it optional (-{bare} = {v}) or remove it"
                ))
            }
        }
    }
    Ok((keep, notes))
}

/// `--ablate`: per backend the profile (`<b>-profile`), the profile with each key put
/// back to its original value (`<b>-no-<key>`), and the untuned machine (`<b>-untuned`,
/// no sysctls). `originals` are the values read before anything was tuned; a key whose
/// original is empty is left out of its variant rather than written empty, and a key
/// already at the profile's value has nothing to ablate (noted).
pub fn ablate(
    profile: &str,
    entries: &[(String, String)],
    originals: &BTreeMap<String, Option<String>>,
    backends: &[Backend],
) -> Result<Generated, String> {
    let (keys, mut notes) = present(entries, originals, profile)?;
    if keys.is_empty() {
        return Err(format!(
            "--ablate {profile}: the profile sets no key this kernel has"
        ));
    }
    let original = |k: &str| originals.get(k).cloned().flatten().unwrap_or_default();
    let mut out: Vec<Variant> = Vec::new();
    let mut baseline = BTreeMap::new();
    for &b in backends {
        let full = format!("{}-profile", b.name());
        out.push(variants::check(variant(full.clone(), b, keys.clone()))?);
        for (i, (k, v)) in keys.iter().enumerate() {
            let was = original(k);
            if crate::sysctl::normalize(&was) == *v {
                let note = format!("{k} is {v} on this machine already: no ablation variant");
                if !notes.contains(&note) {
                    notes.push(note);
                }
                continue;
            }
            let sets: Vec<(String, String)> = keys
                .iter()
                .filter_map(|(k2, v2)| match (k2 == k, was.is_empty()) {
                    (false, _) => Some((k2.clone(), v2.clone())),
                    (true, false) => Some((k2.clone(), crate::sysctl::normalize(&was))),
                    (true, true) => None,
                })
                .collect();
            let name = name_or(
                format!("{}-no-{}", b.name(), short_key(k)),
                format!("{}-no-{}", b.name(), i + 1),
                &out,
            );
            baseline.insert(name.clone(), full.clone());
            out.push(variants::check(variant(name, b, sets))?);
        }
        let untuned = format!("{}-untuned", b.name());
        baseline.insert(untuned.clone(), full.clone());
        out.push(variants::check(variant(untuned, b, Vec::new()))?);
    }
    Ok(Generated {
        variants: out,
        study: Study {
            title: format!(
                "ablation of {profile}: each key put back to this machine's original value, one at a time"
            ),
            baseline,
            notes,
            run_wide_tuning: false,
        },
    })
}

/// `--profiles`: per backend one variant per profile, `<b>-<profile file stem>`.
pub fn profiles(
    named: &[(String, Vec<(String, String)>)],
    originals: &BTreeMap<String, Option<String>>,
    backends: &[Backend],
) -> Result<Generated, String> {
    let mut out: Vec<Variant> = Vec::new();
    let mut notes = Vec::new();
    let mut stems: Vec<String> = Vec::new();
    for (path, entries) in named {
        let stem = variants::slug(
            Path::new(path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
                .as_str(),
        );
        if stem.is_empty() || stems.contains(&stem) {
            return Err(format!(
                "--profiles: {path} gives no name or the same name as another profile ({stem:?}): rename the file"
            ));
        }
        stems.push(stem);
        let (_, n) = present(entries, originals, path)?;
        notes.extend(n);
    }
    for &b in backends {
        for ((path, entries), stem) in named.iter().zip(&stems) {
            let (keys, _) = present(entries, originals, path)?;
            let name = format!("{}-{stem}", b.name());
            out.push(variants::check(variant(name, b, keys))?);
        }
    }
    let paths: Vec<&str> = named.iter().map(|(p, _)| p.as_str()).collect();
    Ok(Generated {
        variants: out,
        study: Study {
            title: format!("profiles side by side: {}", paths.join(", ")),
            notes,
            run_wide_tuning: false,
            ..Study::default()
        },
    })
}

/// The original value of every key of `entries`, read now (before any tuning: options
/// are checked before the run applies anything), straight from /proc/sys.
pub fn read_originals(entries: &[(String, String)]) -> BTreeMap<String, Option<String>> {
    entries
        .iter()
        .map(|(k, _)| {
            let k = k.trim_start_matches('-').to_owned();
            let v = crate::sysctl::get(&k);
            (k, v)
        })
        .collect()
}

/// An `--experiment` file: what to run and how often, and one way of making variants.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    /// What the experiment asks (for the reader).
    #[serde(default)]
    #[allow(dead_code)]
    title: Option<String>,
    scenarios: Vec<String>,
    #[serde(default)]
    backends: Vec<String>,
    #[serde(default)]
    rounds: Option<u32>,
    #[serde(default)]
    duration: Option<u32>,
    #[serde(default)]
    conns: Option<u64>,
    #[serde(default)]
    rate: Option<u64>,
    #[serde(default)]
    sweep: Option<String>,
    #[serde(default)]
    ablate: Option<String>,
    #[serde(default)]
    profiles: Vec<String>,
    #[serde(default)]
    variant: Vec<Entry>,
}

/// The arguments an `--experiment` file stands for: its settings where the command line
/// left them unset (`--out`, `--seed`, `--topology` still come from there; with
/// `--quick` the file's rounds, duration and conns are left out).
/// Paths in the file are relative to the repository. `variants` holds its `[[variant]]`
/// tables, checked.
#[derive(Debug)]
pub struct Experiment {
    pub args: RunArgs,
    pub variants: Option<Vec<Variant>>,
}

/// Reads `--experiment FILE` into the arguments it stands for; None without one.
pub fn load(a: &RunArgs, root: &Path) -> Result<Option<Experiment>, String> {
    let Some(path) = &a.experiment else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--experiment {}: cannot read it: {e}", path.display()))?;
    from_toml(&text, a, root)
        .map_err(|e| format!("--experiment {}: {e}", path.display()))
        .map(Some)
}

fn from_toml(text: &str, a: &RunArgs, root: &Path) -> Result<Experiment, String> {
    let f: File = toml::from_str(text).map_err(|e| {
        format!("not an experiment file (scenarios, and one of sweep, ablate, profiles or [[variant]] tables; see experiments/README.md): {e}")
    })?;
    let ways = [
        f.sweep.is_some(),
        f.ablate.is_some(),
        !f.profiles.is_empty(),
        !f.variant.is_empty(),
    ];
    if ways.iter().filter(|w| **w).count() != 1 {
        return Err("give exactly one of sweep, ablate, profiles or [[variant]] tables".into());
    }
    let mut args = a.clone();
    args.experiment = None;
    args.scenarios = f.scenarios.join(",");
    if !f.backends.is_empty() {
        args.backends = f.backends.join(",");
    }
    let fill = |given: &mut Option<String>, v: Option<String>| {
        if given.is_none() {
            *given = v;
        }
    };
    // --quick keeps its own small sizes: a sanity run of a committed experiment.
    if !a.quick {
        fill(&mut args.rounds, f.rounds.map(|r| r.to_string()));
        fill(&mut args.duration, f.duration.map(|d| d.to_string()));
        fill(&mut args.conns, f.conns.map(|c| c.to_string()));
    }
    fill(&mut args.rate, f.rate.map(|r| r.to_string()));
    let in_repo = |p: &str| root.join(p).display().to_string();
    args.sweep = f.sweep;
    args.ablate = f.ablate.map(|p| in_repo(&p));
    args.profiles = (!f.profiles.is_empty()).then(|| {
        f.profiles
            .iter()
            .map(|p| in_repo(p))
            .collect::<Vec<_>>()
            .join(",")
    });
    let variants = match f.variant.is_empty() {
        true => None,
        false => Some(variants::from_entries(f.variant)?),
    };
    Ok(Experiment { args, variants })
}

/// The variants `--sweep`, `--ablate` or `--profiles` make (None when none is given),
/// crossed with `backends`. `probe`: this kernel is the one tuned (not hosts).
pub fn generate(
    a: &RunArgs,
    backends: &[Backend],
    root: &Path,
    probe: bool,
) -> Result<Option<Generated>, String> {
    let picked = [a.sweep.is_some(), a.ablate.is_some(), a.profiles.is_some()];
    if picked.iter().filter(|p| **p).count() > 1 {
        return Err("give one of --sweep, --ablate and --profiles".into());
    }
    if !picked.contains(&true) {
        return Ok(None);
    }
    if backends.is_empty() {
        return Err("an experiment needs a c1m backend (--backends)".into());
    }
    let read = |p: &Path| -> Result<Vec<(String, String)>, String> {
        crate::sysctl::profile_entries(p).map_err(|e| format!("{e:#}"))
    };
    if let Some(spec) = &a.sweep {
        let key = crate::sysctl::normalize(spec.split_once('=').map_or("", |(k, _)| k));
        let current = crate::sysctl::get(&key);
        let (key, values) = parse_sweep(spec, current.as_deref(), probe)?;
        return sweep(&key, &values, backends).map(Some);
    }
    if !a.sets.is_empty() && (a.ablate.is_some() || a.profiles.is_some()) {
        return Err("--set with --ablate or --profiles would tune the untuned variant too: put the key in the profile".into());
    }
    if let Some(p) = &a.ablate {
        let path = match p.as_str() {
            "" => a
                .profile
                .clone()
                .unwrap_or_else(|| root.join("sysctl/c1m.conf")),
            p => PathBuf::from(p),
        };
        let entries = read(&path)?;
        let originals = read_originals(&entries);
        return ablate(&shown(&path, root), &entries, &originals, backends).map(Some);
    }
    if let Some(list) = &a.profiles {
        let mut named = Vec::new();
        for p in list.split(',').filter(|p| !p.is_empty()) {
            named.push((shown(Path::new(p), root), read(Path::new(p))?));
        }
        if named.len() < 2 {
            return Err("--profiles wants at least two profiles: A.conf,B.conf".into());
        }
        let all: Vec<(String, String)> = named.iter().flat_map(|(_, e)| e.clone()).collect();
        return profiles(&named, &read_originals(&all), backends).map(Some);
    }
    Ok(None)
}

/// A path as the report shows it: relative to the repository when inside it.
fn shown(p: &Path, root: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let p = abs(p);
    p.strip_prefix(abs(root))
        .map(Path::to_path_buf)
        .unwrap_or(p)
        .display()
        .to_string()
}

/// Variants with a link of their own run on netns only, and not beside `--link`.
pub fn check_links(v: &[Variant], netns: bool, run_wide_link: bool) -> Result<(), String> {
    let Some(own) = v.iter().find(|v| v.link.is_some()) else {
        return Ok(());
    };
    if !netns {
        return Err(format!(
            "variant {} shapes its link: links are shaped on --topology netns only (the veths it owns)",
            own.name
        ));
    }
    if run_wide_link {
        return Err(format!(
            "variant {} shapes its link and --link shapes every case: give the link in one place",
            own.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
