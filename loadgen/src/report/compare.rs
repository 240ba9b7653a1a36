use crate::cli::CompareArgs;

pub fn run(_args: CompareArgs) -> anyhow::Result<()> {
    anyhow::bail!("c1m-loadgen compare is not built yet")
}
