//! What a run does to the kernel's settings: the profile and the `--set`s, decided from
//! the options and root (see `session` for where they are applied).

use crate::options::Options;
use crate::{preflight, sysctl, warn};
use std::path::{Path, PathBuf};

/// What the kernel tuning of a run is.
pub struct Tuning {
    /// Apply the profile.
    pub profile: Option<PathBuf>,
    /// `--set KEY=VALUE`s to apply (only as root).
    pub sets: Vec<String>,
    pub entries: Vec<(String, String)>,
    pub touched: Vec<String>,
}

impl Tuning {
    pub fn decide(o: &Options) -> anyhow::Result<Tuning> {
        let root = preflight::is_root();
        let mut tune = o.tune;
        if tune && !root {
            warn("not root: sysctls stay as they are (no --no-tune needed); the hold scenario is sized to what fits untuned");
            tune = false;
        }
        let mut sets = o.sets.clone();
        if !root && !sets.is_empty() {
            warn(format!("not root: ignoring --set {}", sets.join(" ")));
            sets.clear();
        }
        let entries = sysctl::profile_entries(&o.profile)?;
        let touched = sysctl::touched_keys(if tune { &entries } else { &[] }, &sets);
        Ok(Tuning {
            profile: tune.then(|| o.profile.clone()),
            sets,
            entries,
            touched,
        })
    }

    pub fn active(&self) -> bool {
        self.profile.is_some() || !self.sets.is_empty()
    }

    /// The sysctl-apply arguments as one line, paths shortened by `strip`.
    pub fn args_text(&self, strip: Option<&Path>) -> String {
        let mut words: Vec<String> = Vec::new();
        if let Some(p) = &self.profile {
            let p = strip.and_then(|r| p.strip_prefix(r).ok()).unwrap_or(p);
            words.push(p.display().to_string());
        }
        for s in &self.sets {
            words.extend(["--set".to_owned(), s.clone()]);
        }
        words.join(" ")
    }

    pub fn set_keys(&self) -> Vec<String> {
        self.sets.iter().map(|s| sysctl::set_key(s)).collect()
    }

    /// Every setting the run makes, in order: the profile's (when tuning), then the
    /// `--set`s.
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut all = if self.profile.is_some() {
            self.entries.clone()
        } else {
            Vec::new()
        };
        all.extend(self.sets.iter().filter_map(|s| {
            let (k, v) = s.split_once('=')?;
            Some((sysctl::normalize(k), sysctl::normalize(v)))
        }));
        all
    }

    /// The value `key` will have in a new network namespace of this run: the run's
    /// setting, else the kernel's default for a new namespace (not the root's value).
    pub fn netns_value(&self, key: &str, default: &str) -> String {
        self.settings()
            .iter()
            .rev()
            .find(|(k, _)| k.trim_start_matches('-') == key)
            .map_or_else(|| default.to_owned(), |(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    #[test]
    fn tuning_text() {
        let t = Tuning {
            profile: Some(PathBuf::from("/r/sysctl/c1m.conf")),
            sets: vec!["a.b=1 2".into()],
            entries: vec![],
            touched: vec![],
        };
        assert_eq!(t.args_text(None), "/r/sysctl/c1m.conf --set a.b=1 2");
        assert_eq!(
            t.args_text(Some(Path::new("/r/"))),
            "sysctl/c1m.conf --set a.b=1 2"
        );
        assert_eq!(t.set_keys(), vec!["a.b".to_string()]);
    }
}
