//! The end of a run: the headline file ([`crate::report::headline`]: its table of every
//! scenario, the failed runs) written and printed.

pub use crate::report::headline::{headline_md, Head};
use crate::{log, warn};

use std::path::{Path, PathBuf};
use std::time::Instant;

/// Writes the headline of `head` over `sdirs` to `path` (a new file), prints it, and
/// says where everything went and which runs failed.
pub(crate) fn write_headline(
    path: &Path,
    head: &Head,
    sdirs: &[PathBuf],
    failures: &[String],
    t_start: Instant,
) -> anyhow::Result<()> {
    let md = headline_md(head, sdirs, failures);
    crate::safe_fs::write_new(path, &md)?;
    crate::sayln_out!("\n{md}");
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
            crate::sayln!("  {f}");
        }
    }
    Ok(())
}
