//! `hactl failover`: make a named replica the leader, also when the cluster has no leader.
//! As in patronictl 4, a candidate is required (a failover without one is refused) and a
//! healthy leader is demoted. Goes through a member's `POST /failover` (the leader's first);
//! with no leader, or no reachable API, the request is written into etcd (see `handover`).

use crate::cmd::Ctx;
use crate::cmd::handover::{self, Action, Request};

/// `failover` options (patronictl's).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cluster name (default: the configured one).
    pub cluster_name: Option<String>,
    /// The member to become leader (required; asked when not given).
    #[arg(long)]
    pub candidate: Option<String>,
    /// Ask nothing.
    #[arg(long)]
    pub force: bool,
}

/// Runs `hactl failover`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    handover::run(
        ctx,
        Request {
            action: Action::Failover,
            cluster: a.cluster_name,
            leader: None,
            candidate: a.candidate,
            scheduled: None,
            force: a.force,
        },
    )
    .await
}
