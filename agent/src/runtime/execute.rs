//! Running a decision's actions, in order. A failed action or a lost compare-and-set stops the
//! batch: this is what makes `[AcquireLease, Promote]` safe. Long PostgreSQL work becomes a
//! background job; everything else runs inline, bounded by timeouts.
//!
//! `run_action` only dispatches; each action runs in the module for what it touches:
//! `lease.rs` (the leader lease, the fence, failsafe mode), `keys.rs` (the `initialize`,
//! `config`, `failover` and `history` keys), `postgres.rs` (PostgreSQL and its jobs), and
//! `runtime::sync` (synchronous replication).

mod keys;
mod lease;
mod postgres;

use std::time::Duration;

use tracing::warn;

use super::Runtime;
use crate::dcs::{Dcs, DcsError};
use crate::ha::{Action, Decision, Observation};
use crate::pg::Postgres;

/// What executing a batch did, as far as the rest of the cycle cares.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// `AcquireLease` or `RenewLease` applied: we hold a fresh lease.
    pub renewed: bool,
    /// `ReleaseLease` ran, or a renewal was lost: we no longer hold the key.
    pub released: bool,
    /// PostgreSQL's role or run state changed (re-read it before publishing).
    pub pg_changed: bool,
    /// Run the next cycle right away.
    pub rerun: bool,
}

pub(super) enum Step {
    Done,
    Stop(String),
}

impl<D: Dcs, P: Postgres> Runtime<D, P> {
    pub(super) async fn execute(&mut self, decision: &Decision, obs: &Observation) -> Outcome {
        self.st.demoting = false;
        let mut out = Outcome::default();
        for action in &decision.actions {
            match self.run_action(action, obs, &mut out).await {
                Step::Done => {}
                Step::Stop(why) => {
                    warn!(?action, "stopping the batch: {why}");
                    break;
                }
            }
        }
        out
    }

    async fn run_action(&mut self, action: &Action, obs: &Observation, out: &mut Outcome) -> Step {
        // Recomputed per action: a renewal earlier in the batch moves the demotion point.
        let retry = self.etcd_budget();
        match action {
            Action::ClaimInitialize => self.claim_initialize(retry).await,
            Action::Bootstrap => self.bootstrap_job(action),
            Action::CancelInitialize => self.cancel_initialize(retry).await,
            Action::WriteInitialize { sysid } => self.write_initialize(sysid, retry).await,
            Action::SeedConfig { replacing } => self.seed_config(*replacing, retry).await,
            Action::RepairInitialize { found, sysid } => {
                self.repair_initialize(found, sysid, retry).await
            }
            Action::TakeOverLeaderKey { revision } => {
                self.take_over_leader_key(*revision, retry, out).await
            }
            Action::AcquireLease => self.acquire_lease(retry, out).await,
            Action::RenewLease => self.renew_lease(retry, out).await,
            Action::PublishPosition => self.publish_position(retry).await,
            Action::ReleaseLease => self.release_lease(retry, out).await,
            Action::Promote => self.promote_pg(out).await,
            Action::Demote { mode } => self.demote_pg(*mode, out).await,
            Action::Start { role } => self.start_pg(action, role),
            Action::Follow { upstream } => self.follow_upstream(upstream).await,
            Action::RetryStreaming => self.retry_streaming().await,
            Action::Rewind { upstream } => self.rewind_job(action, upstream),
            Action::Reinitialize { upstream, sysid } | Action::Clone { upstream, sysid } => {
                self.clone_job(action, upstream, sysid)
            }
            Action::Restart { role } => self.restart_job(action, role),
            Action::SyncSlots { members } => self.sync_slots(members, obs).await,
            Action::ExtendFence => self.extend_fence().await,
            Action::DisarmFence => self.disarm_fence().await,
            Action::FailsafeRound => self.failsafe_round().await,
            Action::WriteFailsafeKey { members } => self.write_failsafe_key(members, retry).await,
            Action::SetSyncStandbyNames(_)
            | Action::WriteSyncKey { .. }
            | Action::DeleteSyncKey { .. } => self.run_sync_action(action, retry).await,
            Action::ClearFailover { revision } => self.clear_failover(*revision, retry).await,
        }
    }
}

/// Awaits `fut` for at most `limit`; errors and timeouts become a message.
pub(super) async fn bounded<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, DcsError>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "etcd did not answer within {} ms",
            limit.as_millis()
        )),
    }
}
