//! `hactl fix-initialize`: resolves a system-ID conflict by writing the identifier of the
//! data the leader runs into the `initialize` key (hapg's own; patronictl has no such
//! command). It shows the key and every member's identifier first and asks for confirmation
//! (or `--force`); the write is a compare-and-set on the value shown, so a change made
//! meanwhile is not overwritten.

use ha_agent::dcs::{CasOutcome, Dcs};

use crate::cmd::{Ctx, say};
use crate::error::failed;
use crate::prompt;

/// `fix-initialize` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cluster name (the configured one otherwise).
    pub cluster_name: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub force: bool,
}

/// Runs `hactl fix-initialize`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let o = ctx.open(a.cluster_name.as_deref()).await?;
    let c = o.dcs.cluster().await?;
    let found = c.initialize.clone().unwrap_or_default();
    say(&format!("initialize: {found:?}"));
    for m in &c.members {
        say(&format!(
            "  {}: {}",
            m.name,
            m.record
                .database_system_identifier
                .as_deref()
                .unwrap_or("(not reported)")
        ));
    }
    let leader = c.leader_name().ok_or_else(|| {
        failed("the cluster has no leader: its system identifier is the one to keep")
    })?;
    let sysid = c
        .member(leader)
        .and_then(|m| m.record.database_system_identifier.clone())
        .ok_or_else(|| {
            failed(format!(
                "the leader {leader} does not report its system identifier"
            ))
        })?;
    if found == sysid {
        say("The initialize key already holds the leader's system identifier.");
        return Ok(());
    }
    if !a.force {
        let q = format!("Write {sysid} (the system leader {leader} runs) into the initialize key?");
        if !prompt::confirm(&q)? {
            return Err(failed("Aborted"));
        }
    }
    match o
        .dcs
        .dcs
        .repair_initialize(&found, &sysid)
        .await
        .map_err(|e| failed(format!("writing the initialize key failed: {e}")))?
    {
        CasOutcome::Applied => {
            say(&format!("initialize is now {sysid}"));
            Ok(())
        }
        CasOutcome::Lost => Err(failed(
            "the initialize key changed meanwhile; nothing written",
        )),
    }
}
