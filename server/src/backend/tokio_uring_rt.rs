//! Not built yet.

use super::LoopContext;

pub fn run(ctx: LoopContext) -> anyhow::Result<()> {
    ctx.report_ready(Err(anyhow::anyhow!("this backend is not built yet")));
    Ok(())
}
