//! `hactl remove CLUSTER`: delete every key of a cluster from etcd, after patronictl's three
//! typed confirmations (the cluster name, `Yes I am aware`, and the leader's name when the
//! cluster has a leader). The answers may come from a pipe, as with patronictl.

use ha_agent::dcs::Dcs;

use crate::cmd::{Ctx, say};
use crate::error::failed;
use crate::members;
use crate::output::{self, Format, Layout};
use crate::prompt;

/// `remove` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster to remove.
    pub cluster_name: String,
    /// Format of the member list shown first.
    #[arg(short = 'f', long = "format", value_enum, default_value = "pretty")]
    pub format: Format,
}

/// Runs `hactl remove`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let o = ctx.open(Some(&a.cluster_name)).await?;
    let name = a.cluster_name.as_str();
    let c = o.dcs.cluster().await?;
    let l = members::listing(&c, name, false, false);
    say(&output::listing(&l, Layout::Format(a.format)));
    if prompt::ask("Please confirm the cluster name to remove", None)? != name {
        return Err(failed("Cluster names specified do not match"));
    }
    let message = "Yes I am aware";
    let typed = prompt::ask(
        &format!(
            "You are about to remove all information in DCS for {name}, please type: \"{message}\""
        ),
        None,
    )?;
    if typed != message {
        return Err(failed(format!("You did not exactly type \"{message}\"")));
    }
    if let Some(leader) = c.leader_name() {
        let typed = prompt::ask(
            "This cluster currently is healthy. Please specify the leader name to continue",
            None,
        )?;
        if typed != leader {
            return Err(failed(
                "You did not specify the current leader of the cluster",
            ));
        }
    }
    o.dcs
        .dcs
        .delete_cluster()
        .await
        .map_err(|e| failed(format!("deleting the cluster's keys failed: {e}")))?;
    Ok(())
}
