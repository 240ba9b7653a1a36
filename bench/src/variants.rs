//! Variants: the axis that rounds interleave and ratios pair. A variant is a name, a
//! server (a c1m backend or the Go reference), extra server flags, and sysctl overrides
//! applied for its cases only (put back after each case). `--backends` is shorthand for
//! one variant per backend, named as the backend; `--variants FILE` reads them from a
//! small TOML file, so an experiment can be committed beside its results:
//!
//! ```toml
//! [[variant]]
//! name = "uring-small-rmem"
//! backend = "uring"
//! server_flags = ["--coalesce-us", "10"]
//! sysctls = { "net.ipv4.tcp_rmem" = "4096 4096 4096" }
//! link = "delay=50ms,loss=0.1%"   # netns only: the client side of each veth, for its cases
//! ```
//!
//! Generated variants (`--sweep`, `--ablate`, `--profiles`, `--experiment`) are made in
//! `crate::experiments`.

use crate::plan::Backend;
use crate::topology::netns::link::LinkSpec;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One variant of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Run labels and report rows start with it: lowercase letters, digits and `-`.
    pub name: String,
    pub backend: Backend,
    /// Appended to the backend's own server arguments.
    pub server_flags: Vec<String>,
    /// `(key, value)` set for this variant's cases only, in file order.
    pub sysctls: Vec<(String, String)>,
    /// netns: the client side of each veth shaped so for this variant's cases only.
    pub link: Option<LinkSpec>,
}

impl Variant {
    /// The variant `--backends NAME` stands for.
    pub fn of_backend(backend: Backend) -> Variant {
        Variant {
            name: backend.name().to_owned(),
            backend,
            server_flags: Vec::new(),
            sysctls: Vec::new(),
            link: None,
        }
    }

    /// The server's arguments that make this variant: `--backend NAME`, the backend's
    /// own flags, then the variant's.
    pub fn server_args(&self) -> Vec<String> {
        let mut args = self.backend.server_args();
        args.extend(self.server_flags.iter().cloned());
        args
    }

    /// Only a name for a backend: nothing of its own.
    pub fn is_plain(&self) -> bool {
        self.server_flags.is_empty() && self.sysctls.is_empty() && self.link.is_none()
    }

    /// One line for the plan and run.md.
    pub fn describe(&self) -> String {
        let mut s = format!("{}: --backend {}", self.name, self.backend.name());
        for f in &self.server_flags {
            s.push(' ');
            s.push_str(f);
        }
        for (k, v) in &self.sysctls {
            s.push_str(&format!("; sysctl {k}={v}"));
        }
        if let Some(l) = &self.link {
            s.push_str(&format!("; link {l}"));
        }
        s
    }
}

/// One variant per backend (the `--backends` shorthand).
pub fn from_backends(backends: &[Backend]) -> Vec<Variant> {
    backends.iter().map(|&b| Variant::of_backend(b)).collect()
}

/// Server flags a variant may not give: the runner sets them for every case.
const RUNNER_FLAGS: [&str; 7] = [
    "--listen",
    "--cpus",
    "--backend",
    "--stats-json",
    "--stats-interval",
    "--max-conns",
    "--protocol",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    variant: Vec<Entry>,
}

/// One `[[variant]]` table (of a variants file or an experiment file).
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    name: String,
    backend: String,
    #[serde(default)]
    server_flags: Vec<String>,
    #[serde(default)]
    sysctls: BTreeMap<String, String>,
    #[serde(default)]
    link: Option<String>,
}

/// The variants of a `--variants` file; the error says what to fix, with the entry.
pub fn from_toml(text: &str) -> Result<Vec<Variant>, String> {
    let file: File = toml::from_str(text).map_err(|e| {
        format!("not a variants file ([[variant]] tables with name, backend, server_flags, sysctls): {e}")
    })?;
    if file.variant.is_empty() {
        return Err("no [[variant]] in the file".into());
    }
    from_entries(file.variant)
}

/// The variants of `[[variant]]` tables, checked; names must differ.
pub(crate) fn from_entries(entries: Vec<Entry>) -> Result<Vec<Variant>, String> {
    let mut out: Vec<Variant> = Vec::new();
    for e in entries {
        let v = entry(e)?;
        if out.iter().any(|o| o.name == v.name) {
            return Err(format!(
                "two variants are named {:?}: names must differ",
                v.name
            ));
        }
        out.push(v);
    }
    Ok(out)
}

fn entry(e: Entry) -> Result<Variant, String> {
    let name_ok = !e.name.is_empty()
        && e.name.len() <= 48
        && e.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !e.name.starts_with('-')
        && !e.name.starts_with("round");
    if !name_ok {
        return Err(format!(
            "variant name {:?}: use 1-48 lowercase letters, digits and '-' (it names run folders), not starting with '-' or 'round'",
            e.name
        ));
    }
    let backend = Backend::ALL
        .into_iter()
        .find(|b| b.name() == e.backend)
        .ok_or_else(|| {
            let names: Vec<&str> = Backend::ALL.iter().map(|b| b.name()).collect();
            format!(
                "variant {}: unknown backend {:?} (one of {})",
                e.name,
                e.backend,
                names.join(", ")
            )
        })?;
    for f in &e.server_flags {
        let flag = f.split('=').next().unwrap_or(f);
        if RUNNER_FLAGS.contains(&flag) {
            return Err(format!(
                "variant {}: server flag {flag} is set by the runner for every case; leave it out",
                e.name
            ));
        }
        if f.bytes().any(|b| b.is_ascii_control()) {
            return Err(format!(
                "variant {}: a server flag holds a control character",
                e.name
            ));
        }
    }
    let link = match &e.link {
        Some(l) => Some(LinkSpec::parse(l).map_err(|err| format!("variant {}: {err}", e.name))?),
        None => None,
    };
    let mut sysctls = Vec::new();
    for (k, v) in e.sysctls {
        let (k, v) = (crate::sysctl::normalize(&k), crate::sysctl::normalize(&v));
        check_sysctl(&e.name, &k, &v)?;
        sysctls.push((k, v));
    }
    Ok(Variant {
        name: e.name,
        backend,
        server_flags: e.server_flags,
        sysctls,
        link,
    })
}

/// A variant's `key = value`: a key's shape, and a value of only the characters a
/// sysctl value needs.
fn check_sysctl(name: &str, k: &str, v: &str) -> Result<(), String> {
    if !crate::sysctl::valid_key(k) || k.starts_with('-') {
        return Err(format!(
            "variant {name}: {k:?} is not a sysctl key (dotted lowercase words, like net.core.somaxconn)"
        ));
    }
    if v.is_empty()
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" ,:._-".contains(&b))
    {
        return Err(format!(
            "variant {name}: {k} = {v:?}: only letters, digits, space and , : . _ - are written"
        ));
    }
    Ok(())
}

/// A variant's name from free text: lowercase letters and digits kept, `%` as `pct`,
/// anything else one `-`, no `-` at either end (`delay=50ms,loss=0.1%` ->
/// `delay-50ms-loss-0-1pct`).
pub fn slug(text: &str) -> String {
    let mut s = String::new();
    for c in text.chars() {
        match c {
            'a'..='z' | '0'..='9' => s.push(c),
            'A'..='Z' => s.push(c.to_ascii_lowercase()),
            '%' => s.push_str("pct"),
            _ if !s.ends_with('-') && !s.is_empty() => s.push('-'),
            _ => {}
        }
    }
    s.trim_end_matches('-').to_owned()
}

/// Checks a generated variant the way a file's entry is checked (name, flags, sysctls).
pub fn check(v: Variant) -> Result<Variant, String> {
    entry(Entry {
        name: v.name.clone(),
        backend: v.backend.name().to_owned(),
        server_flags: v.server_flags.clone(),
        sysctls: BTreeMap::new(),
        link: None,
    })?;
    for (k, val) in &v.sysctls {
        check_sysctl(&v.name, k, val)?;
    }
    Ok(v)
}

/// Every sysctl key some variant sets, once, in first-seen order.
pub fn sysctl_keys(variants: &[Variant]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (k, _) in variants.iter().flat_map(|v| &v.sysctls) {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    keys
}

/// The distinct backends of `variants`, in canonical order.
pub fn backends(variants: &[Variant]) -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|b| variants.iter().any(|v| v.backend == *b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_two_variants_of_one_backend() {
        let v = from_toml(
            r#"
[[variant]]
name = "uring"
backend = "uring"

[[variant]]
name = "uring-small-rmem"
backend = "uring"
server_flags = ["--coalesce-us", "10"]
sysctls = { "net.ipv4.tcp_rmem" = "4096  4096 4096" }
"#,
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[0].is_plain());
        assert_eq!(v[1].backend, Backend::Uring);
        assert_eq!(
            v[1].server_args(),
            ["--backend", "uring", "--coalesce-us", "10"]
        );
        assert_eq!(
            v[1].sysctls,
            [(
                "net.ipv4.tcp_rmem".to_string(),
                "4096 4096 4096".to_string()
            )]
        );
        assert_eq!(sysctl_keys(&v), ["net.ipv4.tcp_rmem"]);
        assert_eq!(backends(&v), [Backend::Uring]);
        assert_eq!(
            v[1].describe(),
            "uring-small-rmem: --backend uring --coalesce-us 10; sysctl net.ipv4.tcp_rmem=4096 4096 4096"
        );
    }

    #[test]
    fn bad_files_say_what_to_fix() {
        for (text, msg) in [
            ("", "not a variants file"),
            ("variant = []", "no [[variant]]"),
            ("[[variant]]\nname = \"a\"\nbackend = \"apache\"", "unknown backend \"apache\""),
            ("[[variant]]\nname = \"A b\"\nbackend = \"uring\"", "lowercase letters"),
            ("[[variant]]\nname = \"round-1\"\nbackend = \"uring\"", "not starting with"),
            (
                "[[variant]]\nname = \"a\"\nbackend = \"uring\"\n[[variant]]\nname = \"a\"\nbackend = \"epoll\"",
                "two variants are named",
            ),
            (
                "[[variant]]\nname = \"a\"\nbackend = \"uring\"\nserver_flags = [\"--listen=1.2.3.4:1\"]",
                "set by the runner",
            ),
            (
                "[[variant]]\nname = \"a\"\nbackend = \"uring\"\nsysctls = { \"../x\" = \"1\" }",
                "not a sysctl key",
            ),
            (
                "[[variant]]\nname = \"a\"\nbackend = \"uring\"\nsysctls = { \"net.core.somaxconn\" = \"1;reboot\" }",
                "only letters",
            ),
            ("[[variant]]\nname = \"a\"\nbackend = \"uring\"\ncolour = 1", "unknown field"),
        ] {
            let e = from_toml(text).unwrap_err();
            assert!(e.contains(msg), "{text:?}: {e}");
        }
    }

    #[test]
    fn backends_are_plain_variants() {
        let v = from_backends(&[Backend::Epoll, Backend::UringCoalesce25]);
        assert_eq!(v[1].name, "uring-coalesce25");
        assert_eq!(
            v[1].server_args(),
            ["--backend", "uring", "--coalesce-us", "25"]
        );
        assert!(v.iter().all(Variant::is_plain));
    }
}
