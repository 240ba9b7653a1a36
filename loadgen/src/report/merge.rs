use crate::cli::MergeArgs;

pub fn run(_args: MergeArgs) -> anyhow::Result<()> {
    anyhow::bail!("c1m-loadgen merge is not built yet")
}
