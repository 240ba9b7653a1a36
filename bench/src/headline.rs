//! The end of a run: the headline file ([`crate::report::headline`]: its table of every
//! scenario, the failed runs) written and printed.

pub use crate::report::headline::{headline_md, Head};
use crate::session::{Options, Planned};
use crate::{log, warn};

use std::path::PathBuf;
use std::time::Instant;

#[allow(clippy::too_many_arguments)]
pub(crate) fn write_headline(
    o: &Options,
    p: &Planned,
    revision: &crate::revision::Revision,
    tuning: &str,
    sdirs: &[PathBuf],
    failures: &[String],
    t_start: Instant,
) -> anyhow::Result<()> {
    let path = p
        .out
        .join(crate::scenarios::headline_file(&p.stamp, &p.host));
    let head = Head {
        stamp: p.stamp.clone(),
        host: p.host.clone(),
        quick: o.quick,
        revision: revision.short(),
        server_cpus: p.split.server.clone(),
        loadgen_cpus: p.split.loadgen.clone(),
        setting: tuning.to_owned(),
        scenarios: o.scenarios.clone(),
        arrivals: Some(crate::options::arrivals_text(&o.arrivals).to_string()),
    };
    let md = headline_md(&head, sdirs, failures);
    crate::safe_fs::write_new(&path, &md)?;
    println!("\n{md}");
    let names: String = sdirs
        .iter()
        .map(|d| {
            format!(
                "{} ",
                d.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            )
        })
        .collect();
    log(format!(
        "done in {} s: {} and {names}",
        t_start.elapsed().as_secs(),
        path.display()
    ));
    if !failures.is_empty() {
        warn(format!("{} run(s) failed:", failures.len()));
        for f in failures {
            eprintln!("  {f}");
        }
    }
    Ok(())
}
