//! `hactl show-config [CLUSTER]`: the cluster's dynamic configuration (the `config` key) as
//! YAML, exactly as `patronictl show-config` prints it (keys sorted, `'on'` quoted).

use crate::cmd::{Ctx, say};
use crate::yaml;

/// `show-config` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cluster name (default: the configured one).
    pub cluster_name: Option<String>,
}

/// Runs `hactl show-config`. Prints nothing when the cluster has no `config` key (as
/// patronictl).
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let o = ctx.open(a.cluster_name.as_deref()).await?;
    let c = o.dcs.cluster().await?;
    if let Some(cfg) = &c.config {
        say(&yaml::dump(&cfg.value));
    }
    Ok(())
}
