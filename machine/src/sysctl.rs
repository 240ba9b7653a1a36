//! Sysctls: reading them, parsing profiles, and the ONE place that applies and restores
//! them. Apply and restore call `scripts/sysctl-apply.sh` and `scripts/sysctl-restore.sh`
//! today (they save the originals to a state file, write, read back and print a
//! before/after table); swapping in a native implementation only touches [`Sysctl`].

use anyhow::Context as _;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One line per value: runs of blanks and tabs become one space, no leading/trailing
/// blanks (sysctl prints `1024\t65535`; profiles and state files use single spaces).
pub fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn proc_path(key: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/{}", key.replace('.', "/")))
}

/// True if this kernel has `key`.
pub fn exists(key: &str) -> bool {
    proc_path(key).is_file()
}

/// The current value of `key`, normalised; None if absent or unreadable.
pub fn get(key: &str) -> Option<String> {
    c1m_platform::procfs::read_sysctl(key)
}

/// The `(key, value)` settings of a sysctl.conf-style text: `key = value` lines, `#`/`;`
/// comments; a leading `-` on a key (skip quietly if absent) is kept. Lines without `=`
/// are returned as the second element, to be warned about.
pub fn parse_profile(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for line in text.lines() {
        let line = normalize(line);
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) => entries.push((normalize(k), normalize(v))),
            None => bad.push(line),
        }
    }
    (entries, bad)
}

/// The settings of a profile file (warning about lines without `=`).
pub fn profile_entries(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the sysctl profile {}", path.display()))?;
    let (entries, bad) = parse_profile(&text);
    for line in bad {
        crate::warn(format!(
            "{}: ignoring line without '=': {line}",
            path.display()
        ));
    }
    Ok(entries)
}

/// The key of a `KEY=VALUE` given with `--set`, normalised, without the leading `-`
/// that makes it optional (restore knows keys by their name only).
pub fn set_key(set: &str) -> String {
    let k = normalize(set.split_once('=').map_or(set, |(k, _)| k));
    k.trim_start_matches('-').to_owned()
}

/// A sysctl key's shape: dotted lowercase words (`net.core.somaxconn`), as the scripts
/// accept it (lib.sh `c1m_valid_key`); nothing that could leave /proc/sys.
pub fn valid_key(key: &str) -> bool {
    let mut parts = key.split('.');
    let first = parts.next().unwrap_or("");
    let word = |w: &str, extra: &[u8]| {
        !w.is_empty()
            && w.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || extra.contains(&b)
            })
    };
    let rest: Vec<&str> = parts.collect();
    word(first, b"") && !rest.is_empty() && rest.iter().all(|w| word(w, b"-"))
}

/// Checks a `--set KEY=VALUE` (before anything runs): the key's shape, and, when
/// `probe` (the kernel that parses the options is the one tuned), that this kernel has
/// it, unless it is optional (`-KEY`). The error names the key and says how to fix it.
pub fn check_set(set: &str, probe: bool) -> Result<(), String> {
    let raw = normalize(set.split_once('=').map_or(set, |(k, _)| k));
    let key = set_key(set);
    if !valid_key(&key) {
        return Err(format!(
            "--set {set}: '{key}' is not a sysctl key (dotted lowercase words, like net.core.somaxconn)"
        ));
    }
    if probe && !raw.starts_with('-') && !exists(&key) {
        return Err(format!(
            "--set {set}: this kernel has no sysctl {key} (no {}); check the name (`sysctl -a | grep WORD`), or write -{key}=VALUE to skip it where it is absent",
            proc_path(&key).display()
        ));
    }
    Ok(())
}

/// Every key a run touches: the profile's (without the `-` prefix), then the `--set`
/// keys, each once, in that order.
pub fn touched_keys(profile: &[(String, String)], sets: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let all = profile
        .iter()
        .map(|(k, _)| k.trim_start_matches('-').to_owned())
        .chain(sets.iter().map(|s| set_key(s)));
    for k in all {
        if !k.is_empty() && !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

/// The value `key` will have after applying `profile` then `sets` (the last setting
/// wins), or its current value when none sets it.
pub fn projected(key: &str, profile: &[(String, String)], sets: &[String]) -> Option<String> {
    let from_sets = sets.iter().rev().find_map(|s| {
        let (k, v) = s.split_once('=')?;
        (normalize(k) == key).then(|| normalize(v))
    });
    from_sets
        .or_else(|| {
            profile
                .iter()
                .rev()
                .find(|(k, _)| k.trim_start_matches('-') == key)
                .map(|(_, v)| v.clone())
        })
        .or_else(|| get(key))
}

/// `KEY=VALUE` lines of every key in `keys` that exists here.
pub fn snapshot(keys: &[String]) -> String {
    let mut out = String::new();
    for k in keys {
        if exists(k) {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{k}={}", get(k).unwrap_or_default());
        }
    }
    out
}

/// The lines where two snapshots differ, as `diff` would show them.
pub fn snapshot_diff(before: &str, after: &str) -> String {
    let mut out = String::new();
    for l in before.lines().filter(|l| !after.lines().any(|a| a == *l)) {
        let _ = writeln!(out, "< {l}");
    }
    for l in after.lines().filter(|l| !before.lines().any(|b| b == *l)) {
        let _ = writeln!(out, "> {l}");
    }
    out
}

/// The "not changed" text: the profile's keys and their current values.
pub fn current_values_text(why: &str, profile: &[(String, String)]) -> String {
    let mut t = format!("sysctls not changed ({why}); current values:\n");
    for (k, _) in profile {
        let k = k.trim_start_matches('-');
        if exists(k) {
            let _ = writeln!(t, "  {k:<40} {}", get(k).unwrap_or_default());
        }
    }
    t
}

/// sysctl-apply.sh's status for "refused, nothing changed" (1 is "some keys failed").
pub const APPLY_REFUSED: i32 = 3;

/// Applies and restores sysctls, saving the originals in `state`.
#[derive(Debug, Clone)]
pub struct Sysctl {
    /// The `scripts/` folder.
    pub scripts: PathBuf,
    pub state: PathBuf,
}

impl Sysctl {
    fn command(&self, script: &str) -> Command {
        let mut c = Command::new(self.scripts.join(script));
        c.arg("--state").arg(&self.state);
        // Its own process group: a Ctrl-C on the terminal must not stop it halfway.
        c.process_group(0).stdin(Stdio::null());
        c
    }

    /// Applies `profile` (if any) then each `KEY=VALUE` of `sets`. Returns whether every
    /// key was applied, and the before/after table the script printed; an error when
    /// the script refused (nothing changed: a run must not go on untuned).
    pub fn apply(&self, profile: Option<&Path>, sets: &[String]) -> anyhow::Result<(bool, String)> {
        let mut c = self.command("sysctl-apply.sh");
        if let Some(p) = profile {
            c.arg(p);
        }
        for s in sets {
            c.arg("--set").arg(s);
        }
        let out = c
            .stdout(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run {}/sysctl-apply.sh", self.scripts.display()))?;
        if matches!(out.status.code(), Some(APPLY_REFUSED | 2)) {
            anyhow::bail!(
                "sysctl-apply.sh refused the settings, nothing was changed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// A later apply of the same run (a variant's sysctls, or putting them back): the
    /// state file already holds the originals and keeps them. True if all were set.
    pub fn apply_more(&self, sets: &[String]) -> anyhow::Result<bool> {
        let mut c = self.command("sysctl-apply.sh");
        c.arg("--more");
        for s in sets {
            c.arg("--set").arg(s);
        }
        let out = c
            .output()
            .with_context(|| format!("cannot run {}/sysctl-apply.sh", self.scripts.display()))?;
        if !out.status.success() {
            crate::warn(String::from_utf8_lossy(&out.stderr).trim());
        }
        if matches!(out.status.code(), Some(APPLY_REFUSED | 2)) {
            anyhow::bail!(
                "sysctl-apply.sh refused {}: nothing was changed",
                sets.join(" ")
            );
        }
        Ok(out.status.success())
    }

    /// Restores what [`Sysctl::apply`] saved: the keys of sysctl/c1m.conf, of `profile`
    /// and `keys` (the `--set` keys). Its table goes to stderr. True if all restored.
    pub fn restore(&self, profile: Option<&Path>, keys: &[String]) -> anyhow::Result<bool> {
        let mut c = self.command("sysctl-restore.sh");
        if let Some(p) = profile {
            c.arg("--profile").arg(p);
        }
        for k in keys {
            c.arg("--key").arg(k);
        }
        let status = c
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .with_context(|| format!("cannot run {}/sysctl-restore.sh", self.scripts.display()))?;
        Ok(status.success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = "# comment\n; other\n\nnet.core.somaxconn = 65535\n\
        -net.ipv4.nonexistent=1\nnet.ipv4.ip_local_port_range =\t1024   65535\nbogus line\n\
        net.core.somaxconn = 1000\n";

    #[test]
    fn profiles_parse_like_sysctl_conf() {
        let (e, bad) = parse_profile(PROFILE);
        assert_eq!(e[0], ("net.core.somaxconn".into(), "65535".into()));
        assert_eq!(e[1], ("-net.ipv4.nonexistent".into(), "1".into()));
        assert_eq!(e[2].1, "1024 65535");
        assert_eq!(bad, vec!["bogus line".to_string()]);
        let keys = touched_keys(&e, &["net.core.somaxconn=5".into(), " a.b =1".into()]);
        assert_eq!(
            keys,
            [
                "net.core.somaxconn",
                "net.ipv4.nonexistent",
                "net.ipv4.ip_local_port_range",
                "a.b"
            ]
        );
    }

    #[test]
    fn projected_values() {
        let (e, _) = parse_profile(PROFILE);
        assert_eq!(
            projected("net.core.somaxconn", &e, &[]).as_deref(),
            Some("1000")
        );
        let sets = ["net.ipv4.ip_local_port_range=2000 3000".to_string()];
        assert_eq!(
            projected("net.ipv4.ip_local_port_range", &e, &sets).as_deref(),
            Some("2000 3000")
        );
        // Not in the profile: the current value.
        assert_eq!(projected("fs.nr_open", &[], &[]), get("fs.nr_open"));
    }

    #[test]
    fn set_keys_are_checked_and_lose_their_dash() {
        assert_eq!(set_key("-net.core.somaxconn = 5"), "net.core.somaxconn");
        assert_eq!(set_key("net.core.somaxconn=5"), "net.core.somaxconn");
        check_set("net.core.somaxconn=5", true).unwrap();
        let e = check_set("net.ipv4.tcp_no_delay=1", true).unwrap_err();
        assert!(e.contains("no sysctl net.ipv4.tcp_no_delay"), "{e}");
        check_set("-net.ipv4.tcp_no_delay=1", true).expect("optional");
        check_set("net.ipv4.tcp_no_delay=1", false).expect("not probed: the host decides");
        for bad in [
            "net/core/somaxconn=1",
            "../../etc=1",
            "somaxconn=1",
            "Net.core.x=1",
        ] {
            let e = check_set(bad, false).unwrap_err();
            assert!(e.contains("is not a sysctl key"), "{bad}: {e}");
        }
    }

    #[test]
    fn snapshots_and_diffs() {
        let keys = vec!["net.core.somaxconn".to_string(), "no.such.key".to_string()];
        let s = snapshot(&keys);
        assert!(s.starts_with("net.core.somaxconn="), "{s}");
        assert_eq!(s.lines().count(), 1);
        assert_eq!(snapshot_diff(&s, &s), "");
        assert_eq!(snapshot_diff("a=1\nb=2\n", "a=1\nb=3\n"), "< b=2\n> b=3\n");
        assert_eq!(normalize(" 1024\t 65535 "), "1024 65535");
    }
}
