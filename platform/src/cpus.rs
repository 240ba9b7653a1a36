//! CPU lists (`0`, `0-3`, `0,2,5-7`) and pinning threads to CPUs.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CpuListError {
    #[error("empty CPU list: give CPU numbers such as `0`, `0-3` or `0,2`")]
    Empty,
    #[error("`{0}` is not a CPU number or range: use forms such as `0`, `0-3` or `0,2`")]
    Malformed(String),
    #[error("CPU range `{0}` runs backwards: write the lower number first")]
    Backwards(String),
    #[error("CPU {cpu} is not online (online: {online}); pick CPUs from the online list")]
    Offline { cpu: usize, online: String },
    #[error("CPU number in `{0}` is past the kernel's limit of {MAX_CPUS} CPUs")]
    TooLarge(String),
}

/// No Linux kernel has more CPUs than this (`NR_CPUS` is at most 8192, x86's MAXSMP):
/// a list is bounded by it, so a list from another host cannot ask for huge memory.
pub const MAX_CPUS: usize = 8192;

/// Parses a Linux CPU list such as `0-2,5` into sorted, de-duplicated CPU numbers, each
/// below [`MAX_CPUS`] (memory stays bounded whatever the text).
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, CpuListError> {
    let mut set = vec![false; MAX_CPUS];
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| CpuListError::Malformed(part.to_string()))
        };
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (parse(lo)?, parse(hi)?);
                if lo > hi {
                    return Err(CpuListError::Backwards(part.to_string()));
                }
                if hi >= MAX_CPUS {
                    return Err(CpuListError::TooLarge(part.to_string()));
                }
                set[lo..=hi].iter_mut().for_each(|c| *c = true);
            }
            None => {
                let c = parse(part)?;
                if c >= MAX_CPUS {
                    return Err(CpuListError::TooLarge(part.to_string()));
                }
                set[c] = true;
            }
        }
    }
    let cpus: Vec<usize> = (0..MAX_CPUS).filter(|&c| set[c]).collect();
    if cpus.is_empty() {
        return Err(CpuListError::Empty);
    }
    Ok(cpus)
}

/// Formats CPU numbers back into the compact list form (`0-3,6`).
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// CPUs this process may run on (its affinity mask), which is what "all online" means
/// for a process started under `taskset` or in a cgroup.
pub fn online_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if cpus.is_empty() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        cpus = (0..n).collect();
    }
    cpus.sort_unstable();
    cpus
}

/// Resolves an optional `--cpus` value: parsed and checked against the online CPUs, or
/// all online CPUs when absent.
pub fn resolve_cpus(arg: Option<&str>) -> Result<Vec<usize>, CpuListError> {
    let online = online_cpus();
    let Some(text) = arg else {
        return Ok(online);
    };
    let cpus = parse_cpu_list(text)?;
    if let Some(&cpu) = cpus.iter().find(|c| !online.contains(c)) {
        return Err(CpuListError::Offline {
            cpu,
            online: format_cpu_list(&online),
        });
    }
    Ok(cpus)
}

/// Pins the calling thread to one CPU. Returns false if the kernel refused.
pub fn pin_current_thread(cpu: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_lists() {
        assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
        assert_eq!(parse_cpu_list("0-1").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_list("3,0-1,1").unwrap(), vec![0, 1, 3]);
        assert_eq!(parse_cpu_list(" 2 , 4-5 ").unwrap(), vec![2, 4, 5]);
    }

    #[test]
    fn rejects_bad_lists() {
        assert_eq!(parse_cpu_list(""), Err(CpuListError::Empty));
        assert!(matches!(
            parse_cpu_list("a"),
            Err(CpuListError::Malformed(_))
        ));
        assert!(matches!(
            parse_cpu_list("3-1"),
            Err(CpuListError::Backwards(_))
        ));
        assert!(matches!(
            resolve_cpus(Some("8000")),
            Err(CpuListError::Offline { .. })
        ));
        // A list from a hostile host cannot ask for gigabytes.
        assert_eq!(
            parse_cpu_list("0-4294967295"),
            Err(CpuListError::TooLarge("0-4294967295".into()))
        );
        assert!(matches!(
            parse_cpu_list("0-18446744073709551615"),
            Err(CpuListError::TooLarge(_))
        ));
        assert!(matches!(
            parse_cpu_list("8192"),
            Err(CpuListError::TooLarge(_))
        ));
        assert_eq!(parse_cpu_list("8191").unwrap(), vec![8191]);
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_cpu_list(&[4]), "4");
    }
}
