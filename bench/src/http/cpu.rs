//! Server CPU per request ([`c1m_outside::cpu`]), and the loadgen's measured window it is
//! read over.

pub use c1m_outside::cpu::*;
use std::path::Path;

/// c1m-loadgen's measured window, in seconds since the epoch, from its latency.hlog:
/// `StartTime` plus the `Tag=measured` interval.
pub fn loadgen_window(hlog: &Path) -> anyhow::Result<(f64, f64)> {
    use anyhow::Context as _;
    let text = std::fs::read(hlog).with_context(|| format!("cannot read {}", hlog.display()))?;
    let log = c1m_loadgen::report::hlog::read_interval_log(&text)
        .with_context(|| format!("cannot read {}", hlog.display()))?;
    let m = log
        .intervals
        .iter()
        .find(|i| i.tag.as_deref() == Some("measured"))
        .with_context(|| format!("{} has no Tag=measured interval", hlog.display()))?;
    let start = log.start_epoch_s + m.start_s;
    Ok((start, start + m.length_s))
}

#[cfg(test)]
mod tests {
    use super::loadgen_window;

    #[test]
    fn loadgen_windows_from_the_hlog() {
        let t = c1m_machine::tempdir::TempDir::new();
        let p = t.0.join("latency.hlog");
        // A measured histogram of one value, as c1m-loadgen writes it.
        let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        h.record(1000).unwrap();
        let out = c1m_loadgen::report::hlog::write_interval_log(
            &["test"],
            1_718_000_000.5,
            &[c1m_loadgen::report::hlog::LogLine {
                tag: Some("measured"),
                start_s: 1.0,
                length_s: 5.0,
                hist: &h,
            }],
        )
        .unwrap();
        std::fs::write(&p, out).unwrap();
        let (a, b) = loadgen_window(&p).unwrap();
        assert!(
            (a - 1_718_000_001.5).abs() < 1e-3 && (b - a - 5.0).abs() < 1e-3,
            "{a} {b}"
        );
        assert!(loadgen_window(&t.0.join("none")).is_err());
    }
}
