//! A variant's sysctls, set for one case and put back after it. On netns a key each
//! namespace has its own copy of is set inside the server and every client namespace
//! (and put back there); a machine-wide key goes through the root namespace's
//! save/apply (`scripts/sysctl-apply.sh`, whose state file keeps the machine's original
//! for the run's final restore). Values to put back are the ones read just before.

use super::active::Topology;
use super::netns::sysctl::apply_in;
use crate::sysctl::{self, Sysctl};
use anyhow::{bail, Context as _, Result};
use std::collections::BTreeMap;

/// What one case set, and how to put it back.
#[derive(Debug, Default)]
pub struct CaseSysctls {
    /// Root namespace: `KEY=VALUE` as it was before the case.
    root_before: Vec<String>,
    /// Per namespace: `(key, value)` as it was before the case.
    ns_before: Vec<(String, Vec<(String, String)>)>,
    /// `where -> key -> value` read back after setting: the case's record.
    pub read_back: BTreeMap<String, BTreeMap<String, String>>,
}

impl CaseSysctls {
    /// Sets `sets` (bare keys, checked values) where `topo` says they live. Nothing is
    /// set for an empty list.
    pub fn apply(topo: &Topology, sysctl: &Sysctl, sets: &[(String, String)]) -> Result<Self> {
        let mut out = CaseSysctls::default();
        if sets.is_empty() {
            return Ok(out);
        }
        let (per_ns, global) = match topo.netns() {
            Some(ns) => {
                let split = ns.split_sysctls(sets)?;
                (split.per_netns, split.global)
            }
            None => (Vec::new(), sets.to_vec()),
        };
        if let (Some(ns), false) = (topo.netns(), per_ns.is_empty()) {
            for (name, applied) in ns.apply_sysctls(&per_ns)? {
                let read = out.read_back.entry(name.clone()).or_default();
                for a in &applied {
                    read.insert(a.key.clone(), a.after.clone());
                }
                let before = applied.into_iter().map(|a| (a.key, a.before)).collect();
                out.ns_before.push((name, before));
            }
        }
        if !global.is_empty() {
            for (k, _) in &global {
                let v = sysctl::get(k).with_context(|| format!("cannot read sysctl {k}"))?;
                out.root_before.push(format!("{k}={v}"));
            }
            let wanted: Vec<String> = global.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if !sysctl.apply_more(&wanted)? {
                bail!(
                    "sysctl-apply.sh could not set {} (see above)",
                    wanted.join(" ")
                );
            }
            let read = out.read_back.entry("root namespace".into()).or_default();
            for (k, _) in &global {
                read.insert(k.clone(), sysctl::get(k).unwrap_or_default());
            }
        }
        Ok(out)
    }

    /// Puts back what [`CaseSysctls::apply`] set.
    pub fn undo(self, sysctl: &Sysctl) -> Result<()> {
        for (ns, before) in &self.ns_before {
            apply_in(ns, before).with_context(|| format!("putting sysctls back in {ns}"))?;
        }
        if !self.root_before.is_empty() && !sysctl.apply_more(&self.root_before)? {
            bail!(
                "sysctl-apply.sh could not put back {} (see above)",
                self.root_before.join(" ")
            );
        }
        Ok(())
    }

    /// `where: key = value` lines for the case folder (empty when nothing was set).
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (place, kv) in &self.read_back {
            for (k, v) in kv {
                s.push_str(&format!("{place}: {k} = {v}\n"));
            }
        }
        s
    }
}
