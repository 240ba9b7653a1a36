//! Which CPUs the server and the load generator get.

/// Which CPUs the server and the loadgen get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSplit {
    /// `--cpus` values, comma lists.
    pub server: String,
    pub loadgen: String,
    pub online: usize,
    /// One CPU only: both share it.
    pub shared: bool,
}

/// Server on the first half of the online CPUs, loadgen on the second half; one CPU is
/// shared.
pub fn split_cpus(cpus: &[usize]) -> CpuSplit {
    let join = |c: &[usize]| {
        c.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    if cpus.len() <= 1 {
        let one = cpus.first().copied().unwrap_or(0).to_string();
        return CpuSplit {
            server: one.clone(),
            loadgen: one,
            online: cpus.len(),
            shared: true,
        };
    }
    let half = cpus.len() / 2;
    CpuSplit {
        server: join(&cpus[..half]),
        loadgen: join(&cpus[half..]),
        online: cpus.len(),
        shared: false,
    }
}
