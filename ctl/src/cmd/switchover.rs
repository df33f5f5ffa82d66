//! `hactl switchover`: the leader hands over to a replica, now or at a scheduled time
//! (through the leader's `POST /switchover`; see `handover`).

use crate::cmd::Ctx;
use crate::cmd::handover::{self, Action, Request};

/// `switchover` options (patronictl's).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cluster name (default: the configured one).
    pub cluster_name: Option<String>,
    /// The current leader (asked, or taken from etcd with --force).
    #[arg(long, visible_alias = "primary", visible_alias = "master")]
    pub leader: Option<String>,
    /// The member to become leader (default: the agents pick the best replica).
    #[arg(long)]
    pub candidate: Option<String>,
    /// When: an ISO 8601 time (local time without an offset), or `now`.
    #[arg(long, value_name = "TIME")]
    pub scheduled: Option<String>,
    /// Ask nothing.
    #[arg(long)]
    pub force: bool,
}

/// Runs `hactl switchover`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    handover::run(
        ctx,
        Request {
            action: Action::Switchover,
            cluster: a.cluster_name,
            leader: a.leader,
            candidate: a.candidate,
            scheduled: a.scheduled,
            force: a.force,
        },
    )
    .await
}
