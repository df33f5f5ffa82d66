//! Executing the actions on the local PostgreSQL: promote and demote inline (they change who
//! may write, so the batch waits for them), start, rewind, clone and restart as background
//! jobs (one at a time), following a new upstream, and the leader's replication slots.

use std::sync::Arc;

use tracing::{error, info, warn};

use super::{Outcome, Step};
use crate::dcs::Dcs;
use crate::ha::{Action, MemberName, Observation, StartAs, StopMode, Upstream};
use crate::pg::Postgres;
use crate::runtime::Runtime;

impl<D: Dcs, P: Postgres> Runtime<D, P> {
    /// `Promote`: PostgreSQL becomes primary; the timeline switch goes into `history`.
    pub(super) async fn promote_pg(&mut self, out: &mut Outcome) -> Step {
        out.pg_changed = true;
        match self.pg.promote().await {
            Ok(p) => {
                info!(timeline = p.timeline, "promoted PostgreSQL to primary");
                self.failsafe.clear();
                self.announce_promotion().await;
                self.set_following(None);
                self.st.slots_applied = None;
                self.st.sync_names_applied = None;
                self.record_history(&p.history).await;
                Step::Done
            }
            Err(e) => {
                error!("promote failed: {e}");
                Step::Stop(format!("promote failed: {e}"))
            }
        }
    }

    /// `Demote`: stop PostgreSQL (a running job is cancelled first).
    pub(super) async fn demote_pg(&mut self, mode: StopMode, out: &mut Outcome) -> Step {
        self.announce_demotion();
        out.pg_changed = true;
        out.rerun = true;
        if let Some(j) = self.jobs.abort().await {
            warn!(job = %j.kind, "cancelled a job to demote");
        }
        self.set_following(None);
        self.st.slots_applied = None;
        self.st.sync_names_applied = None;
        self.st.failsafe_valid_until = None;
        match self.pg.stop(mode).await {
            Ok(()) => {
                info!(?mode, "demoted: PostgreSQL stopped");
                // Nothing is written here any more: etcd calls are no longer bounded
                // by the demotion point (a release must not be starved by it).
                self.st.guarding = false;
                Step::Done
            }
            Err(e) => {
                error!("demote failed: {e}");
                Step::Stop(format!("demote failed: {e}"))
            }
        }
    }

    /// `Start`: start PostgreSQL in `role`, as a job.
    pub(super) fn start_pg(&mut self, action: &Action, role: &StartAs) -> Step {
        let primary = matches!(role, StartAs::Primary);
        let following = match role {
            StartAs::Replica { upstream } => upstream.as_ref().map(|u| u.name.clone()),
            StartAs::Primary => None,
        };
        self.set_following(following);
        let pg = self.pg.clone();
        let role = role.clone();
        self.spawn_job(action, primary, async move {
            pg.start(&role).await.map_err(|e| format!("{e:#}"))
        });
        Step::Done
    }

    /// `Follow`: point the running replica at `upstream`.
    pub(super) async fn follow_upstream(&mut self, upstream: &Upstream) -> Step {
        match self.pg.follow(Some(upstream)).await {
            Ok(()) => {
                info!(leader = %upstream.name, "now following");
                self.set_following(Some(upstream.name.clone()));
                Step::Done
            }
            Err(e) => Step::Stop(format!("follow failed: {e}")),
        }
    }

    /// `RetryStreaming`: best effort; a failure only logs.
    pub(super) async fn retry_streaming(&mut self) -> Step {
        if let Err(e) = self.pg.retry_streaming().await {
            warn!("asking PostgreSQL to retry streaming failed: {e}");
        }
        Step::Done
    }

    /// `Rewind`: pg_rewind from `upstream`, then start as its replica, as a job.
    pub(super) fn rewind_job(&mut self, action: &Action, upstream: &Upstream) -> Step {
        self.set_following(Some(upstream.name.clone()));
        let (pg, up) = (self.pg.clone(), upstream.clone());
        self.spawn_job(action, false, async move {
            pg.rewind_from(&up)
                .await
                .map_err(|e| format!("pg_rewind: {e:#}"))?;
            start_replica(&pg, up).await
        });
        Step::Done
    }

    /// `Reinitialize` and `Clone`: a new copy from `upstream`, then start as its replica.
    pub(super) fn clone_job(&mut self, action: &Action, upstream: &Upstream, sysid: &str) -> Step {
        self.set_following(Some(upstream.name.clone()));
        let (pg, up, sysid) = (self.pg.clone(), upstream.clone(), sysid.to_owned());
        self.spawn_job(action, false, async move {
            pg.create_replica(&up, &sysid)
                .await
                .map_err(|e| format!("pg_basebackup: {e:#}"))?;
            start_replica(&pg, up).await
        });
        Step::Done
    }

    /// `Restart`: restart PostgreSQL in `role`, as a job.
    pub(super) fn restart_job(&mut self, action: &Action, role: &StartAs) -> Step {
        let primary = matches!(role, StartAs::Primary);
        let (pg, role) = (self.pg.clone(), role.clone());
        self.spawn_job(action, primary, async move {
            pg.restart(&role).await.map_err(|e| format!("{e:#}"))
        });
        Step::Done
    }

    /// `SyncSlots`: the leader's physical slots for `members` (and those kept a while).
    pub(super) async fn sync_slots(&mut self, members: &[MemberName], obs: &Observation) -> Step {
        let wanted = crate::ha::slots::retained(
            &mut self.st.slot_last_seen,
            members,
            &self.me,
            obs.now,
            self.st.ha.member_slots_ttl,
        );
        let ignore = self.st.ha.ignore_slots.clone();
        if self.st.slots_applied.as_ref() == Some(&wanted) && self.st.slots_ignore_applied == ignore
        {
            return Step::Done;
        }
        match self.pg.sync_slots(&wanted, &ignore).await {
            Ok(()) => {
                self.st.slots_applied = Some(wanted);
                self.st.slots_ignore_applied = ignore;
                Step::Done
            }
            // Slots are housekeeping: log and carry on with the batch.
            Err(e) => {
                warn!("syncing replication slots failed: {e}");
                Step::Done
            }
        }
    }

    pub(super) fn spawn_job<F>(&mut self, action: &Action, primary: bool, work: F)
    where
        F: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        let Some(kind) = action.job_kind() else {
            return;
        };
        if let Some(running) = self.jobs.running() {
            warn!(running = %running.kind, wanted = %kind, "a job is already running");
            return;
        }
        info!(job = %kind, "starting job");
        let now = self.clock.now();
        self.jobs.spawn(kind, now, primary, work);
    }
}

async fn start_replica<P: Postgres>(pg: &Arc<P>, up: Upstream) -> Result<(), String> {
    pg.start(&StartAs::Replica { upstream: Some(up) })
        .await
        .map_err(|e| format!("start: {e:#}"))
}
