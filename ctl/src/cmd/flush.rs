//! `hactl flush [CLUSTER] [MEMBER...] switchover|restart`: discard scheduled events, as
//! patronictl's `flush`. A scheduled switchover is cancelled with `DELETE /switchover` (the
//! leader first); when no member answers, the `failover` key is deleted with a
//! compare-and-set on its revision. hapg's agent never schedules restarts, so `restart` only
//! reports that there is none.

use std::time::Duration;

use ha_agent::dcs::{CasOutcome, Dcs};
use reqwest::Method;

use crate::cmd::select::{self, Role};
use crate::cmd::{Ctx, cluster_and_members, say};
use crate::error::{failed, usage};
use crate::pyfmt;

/// `flush` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// [CLUSTER] [MEMBER...] TARGET, where TARGET is `switchover` or `restart`.
    #[arg(required = true, num_args = 1..)]
    pub args: Vec<String>,
    /// Only members with this role (restart).
    #[arg(short = 'r', long, value_enum, default_value = "any")]
    pub role: Role,
    /// Ask nothing.
    #[arg(long)]
    pub force: bool,
}

/// Runs `hactl flush`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let Some((target, rest)) = a.args.split_last() else {
        return Err(usage("say what to flush: switchover or restart"));
    };
    if target != "switchover" && target != "restart" {
        return Err(usage(format!(
            "cannot flush {target:?}: the last argument must be switchover or restart"
        )));
    }
    let settings = ctx.settings()?;
    let (cluster, names) = cluster_and_members(rest, settings.scope.as_deref());
    let o = ctx.open(cluster.as_deref()).await?;
    let scope = o.dcs.scope.clone();
    let c = o.dcs.cluster().await?;
    if target == "restart" {
        for m in select::members(&c, &scope, &names, a.role)? {
            say(&format!("No scheduled restart for member {}", m.name));
        }
        return Ok(());
    }
    let Some(f) = c
        .failover
        .as_ref()
        .filter(|f| f.value.scheduled_at.is_some())
    else {
        say("No pending scheduled switchover");
        return Ok(());
    };
    let leader = c.leader_name();
    let mut order: Vec<_> = c
        .members
        .iter()
        .filter(|m| !m.record.api_url.is_empty())
        .collect();
    order.sort_by_key(|m| Some(m.name.as_str()) != leader);
    for m in order {
        match o
            .api
            .call(
                &m.record.api_url,
                Method::DELETE,
                "switchover",
                None,
                Duration::from_secs(10),
            )
            .await
        {
            Ok(r) if r.status == 200 => {
                say(&format!("Success: {}", r.text()));
                return Ok(());
            }
            Ok(r) if r.status == 404 => {
                return Err(failed(format!("Failed: {}", r.text())));
            }
            Ok(r) => say(&format!(
                "Failed: member={}, status_code={}, ({})",
                m.name,
                r.status,
                r.text()
            )),
            Err(e) => say(&format!("Member {} is not accessible: {e}", m.name)),
        }
    }
    say(&format!(
        "{} Could not find any accessible member of cluster {scope}",
        pyfmt::timestamp(6)
    ));
    match o.dcs.dcs.clear_failover(f.revision).await {
        Ok(CasOutcome::Applied) => {
            say("Success: scheduled switchover deleted from etcd");
            Ok(())
        }
        Ok(CasOutcome::Lost) => Err(failed(
            "the failover key changed meanwhile: look again with `hactl list`",
        )),
        Err(e) => Err(failed(format!("deleting the failover key failed: {e}"))),
    }
}
