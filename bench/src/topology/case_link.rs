//! A variant's link (netns): the client side of each veth shaped for one case, read
//! back, and the shaping removed after the case (the namespaces' teardown removes it
//! on every other exit path). Options refuse a variant's link beside `--link` and off
//! netns, so after a case the veths are bare again.

use super::active::Topology;
use super::netns::link::{self, Applied, LinkSpec};
use super::netns::NetnsPlan;
use anyhow::{Context as _, Result};
use serde_json::{json, Value};

/// What one case shaped.
#[derive(Debug, Default)]
pub struct CaseLink {
    applied: Vec<Applied>,
}

/// Where a case's link goes and the commands that shape and unshape it, in order.
pub fn plan(ns: &NetnsPlan, spec: &LinkSpec) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let sides = link::client_side(ns);
    let apply = sides
        .iter()
        .flat_map(|(n, d)| link::tc_argv(n, d, spec))
        .collect();
    let undo = sides.iter().map(|(n, d)| link::clear_argv(n, d)).collect();
    (apply, undo)
}

/// Shapes and clears the links once before any case, so that a kernel without netem
/// stops the run before it starts rather than at the first shaped case.
pub fn probe(topo: &Topology, variants: &[crate::variants::Variant]) -> Result<()> {
    match variants.iter().find_map(|v| v.link.as_ref()) {
        Some(spec) => CaseLink::apply(topo, Some(spec))?.undo(),
        None => Ok(()),
    }
}

impl CaseLink {
    /// Shapes every client side as `spec` asks (nothing without one).
    pub fn apply(topo: &Topology, spec: Option<&LinkSpec>) -> Result<Self> {
        let mut out = CaseLink::default();
        let Some(spec) = spec else {
            return Ok(out);
        };
        let ns = topo
            .netns()
            .context("a variant's link needs --topology netns")?;
        for (name, dev) in link::client_side(ns.plan()) {
            out.applied.push(link::apply(name, dev, spec)?);
        }
        Ok(out)
    }

    /// Removes what [`CaseLink::apply`] shaped.
    pub fn undo(self) -> Result<()> {
        for a in &self.applied {
            link::clear(&a.namespace, &a.device)?;
        }
        Ok(())
    }

    /// For case.json: the link asked and each qdisc read back; None without a link.
    pub fn record(&self) -> Option<Value> {
        let first = self.applied.first()?;
        Some(json!({
            "link": first.spec.to_string(),
            "applied": self.applied.iter().map(Applied::describe).collect::<Vec<_>>(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::netns::{LinkOptions, DEVICE};

    #[test]
    fn a_variants_link_shapes_every_client_side_and_clears_it() {
        let two = NetnsPlan::new(2, 3, LinkOptions::default(), "abc123").expect("plan");
        let spec = LinkSpec::parse("delay=50ms,loss=0.1%").unwrap();
        let (apply, undo) = plan(&two, &spec);
        assert_eq!(apply.len(), 2);
        assert_eq!(
            apply[1].join(" "),
            format!("tc -n c1m-cli1-abc123 qdisc replace dev {DEVICE} root netem limit 10000000 delay 50000us loss 0.1%")
        );
        assert_eq!(
            undo[0].join(" "),
            format!("tc -n c1m-cli0-abc123 qdisc del dev {DEVICE} root")
        );
        assert!(CaseLink::default().record().is_none());
    }
}
