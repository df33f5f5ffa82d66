//! Running a decision's actions, in order. A failed action or a lost compare-and-set stops the
//! batch: this is what makes `[AcquireLease, Promote]` safe. Long PostgreSQL work becomes a
//! background job; everything else runs inline, bounded by timeouts.

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use super::Runtime;
use crate::clock::wall_ms;
use crate::dcs::records::format_iso8601;
use crate::dcs::{CasOutcome, Dcs, DcsError, HistoryRecord};
use crate::ha::{Action, Decision, MemberName, Millis, Observation, StartAs, Upstream};
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
        let ttl = self.st.ha.ttl;
        match action {
            Action::ClaimInitialize => match bounded(retry, self.dcs.claim_initialize()).await {
                Ok(CasOutcome::Applied) => {
                    info!("won the initialize race: bootstrapping a new cluster");
                    self.st.bootstrapping = true;
                    Step::Done
                }
                Ok(CasOutcome::Lost) => Step::Stop("another member initializes the cluster".into()),
                Err(e) => Step::Stop(e),
            },
            Action::Bootstrap => {
                let pg = self.pg.clone();
                self.spawn_job(action, false, async move {
                    pg.bootstrap().await.map_err(|e| format!("{e:#}"))
                });
                Step::Done
            }
            Action::CancelInitialize => {
                self.st.bootstrapping = false;
                self.st.last_job = None;
                match bounded(retry, self.dcs.cancel_initialize()).await {
                    Ok(_) => Step::Done,
                    Err(e) => Step::Stop(e),
                }
            }
            Action::WriteInitialize { sysid } => {
                match bounded(retry, self.dcs.write_initialize(sysid)).await {
                    Ok(()) => {
                        info!(sysid = %sysid, "published the system identifier");
                        self.st.bootstrapping = false;
                        Step::Done
                    }
                    Err(e) => Step::Stop(e),
                }
            }
            Action::SeedConfig { replacing } => {
                // The configuration last read from etcd (a wiped or garbled key is put back as
                // it was), else `bootstrap.dcs`.
                let value = if self.st.config_seen {
                    self.st.dynamic.raw.clone()
                } else {
                    self.cfg
                        .bootstrap
                        .as_ref()
                        .map(|b| b.dcs.clone())
                        .filter(serde_json::Value::is_object)
                        .unwrap_or_else(|| self.st.dynamic.raw.clone())
                };
                let r = match replacing {
                    None => bounded(retry, self.dcs.create_config(&value)).await,
                    Some(rev) => {
                        warn!(
                            "the config key holds no usable configuration: writing back the last one seen"
                        );
                        bounded(retry, self.dcs.write_config(&value, rev.0)).await
                    }
                };
                match r {
                    Ok(_) => Step::Done,
                    Err(e) => Step::Stop(e),
                }
            }
            Action::RepairInitialize { found, sysid } => {
                match bounded(retry, self.dcs.repair_initialize(found, sysid)).await {
                    Ok(o) => {
                        warn!(found = %found, sysid = %sysid, outcome = ?o, "the initialize key held no system identifier: replaced with ours");
                        Step::Done
                    }
                    Err(e) => Step::Stop(e),
                }
            }
            Action::TakeOverLeaderKey { revision } => {
                let t0 = self.clock.now();
                match bounded(retry, self.dcs.take_over_leader(revision.0)).await {
                    Ok(CasOutcome::Applied) => {
                        warn!("took over a leader key that named no member holding it");
                        // `take_over_leader` keeps the lease alive first, as acquire does.
                        self.st.lease_valid_until = Some(t0.plus(ttl));
                        self.st.renewed_once = true;
                        out.renewed = true;
                        Step::Done
                    }
                    Ok(CasOutcome::Lost) => Step::Stop("the leader key changed meanwhile".into()),
                    Err(e) => Step::Stop(e),
                }
            }
            Action::AcquireLease => {
                let t0 = self.clock.now();
                match bounded(retry, self.dcs.acquire_leader()).await {
                    Ok(CasOutcome::Applied) => {
                        info!("acquired the leader lease");
                        // `acquire_leader` keeps the lease alive before it writes the key, so
                        // the lease runs at least ttl from t0.
                        self.st.lease_valid_until = Some(t0.plus(ttl));
                        self.st.renewed_once = true;
                        out.renewed = true;
                        Step::Done
                    }
                    Ok(CasOutcome::Lost) => {
                        Step::Stop("another member took the leader lease".into())
                    }
                    Err(e) => Step::Stop(e),
                }
            }
            Action::RenewLease => {
                let t0 = self.clock.now();
                match bounded(retry, self.dcs.renew_leader()).await {
                    Ok(CasOutcome::Applied) => {
                        self.st.lease_valid_until = Some(t0.plus(ttl));
                        self.st.renewed_once = true;
                        out.renewed = true;
                        Step::Done
                    }
                    Ok(CasOutcome::Lost) => {
                        warn!("lost the leader lease");
                        self.st.lease_valid_until = None;
                        self.st.published_member = None;
                        out.released = true;
                        out.rerun = true;
                        Step::Stop("the leader lease is not ours any more".into())
                    }
                    Err(e) => {
                        // Keep going only if our lease is still valid for longer than the
                        // safety margin: the next decision (etcd down) handles the rest.
                        out.rerun = false;
                        Step::Stop(e)
                    }
                }
            }
            Action::PublishPosition => {
                let end = match self.pg.status().await.state {
                    crate::ha::PgState::Stopped(s) => s.checkpoint_lsn,
                    other => {
                        return Step::Stop(format!(
                            "cannot tell where the WAL ends: PostgreSQL is {other:?}"
                        ));
                    }
                };
                let status = crate::dcs::StatusRecord {
                    optime: end.0,
                    ..self.st.published_status.clone().unwrap_or_default()
                };
                match bounded(retry, self.dcs.write_status(&status)).await {
                    Ok(()) => {
                        info!(end = %end, "published where the WAL ends for the switchover candidate");
                        self.st.published_status = Some(status);
                        Step::Done
                    }
                    // Without it the candidate could not tell it has everything: keep the
                    // lease (it expires, and the most advanced member wins the race).
                    Err(e) => Step::Stop(format!("publishing the final WAL position: {e}")),
                }
            }
            Action::ReleaseLease => {
                out.released = true;
                self.st.lease_valid_until = None;
                out.rerun = true;
                match bounded(retry, self.dcs.release_leader()).await {
                    Ok(o) => {
                        info!(outcome = ?o, "released the leader lease");
                        Step::Done
                    }
                    Err(e) => Step::Stop(e),
                }
            }
            Action::Promote => {
                out.pg_changed = true;
                match self.pg.promote().await {
                    Ok(p) => {
                        info!(timeline = p.timeline, "promoted PostgreSQL to primary");
                        self.failsafe.clear();
                        self.announce_promotion().await;
                        self.set_following(None);
                        self.st.slots_applied = None;
                        self.st.sync_names_applied = None;
                        self.record_history(obs, &p.history).await;
                        Step::Done
                    }
                    Err(e) => {
                        error!("promote failed: {e}");
                        Step::Stop(format!("promote failed: {e}"))
                    }
                }
            }
            Action::Demote { mode } => {
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
                match self.pg.stop(*mode).await {
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
            Action::Start { role } => {
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
            Action::Follow { upstream } => match self.pg.follow(Some(upstream)).await {
                Ok(()) => {
                    info!(leader = %upstream.name, "now following");
                    self.set_following(Some(upstream.name.clone()));
                    Step::Done
                }
                Err(e) => Step::Stop(format!("follow failed: {e}")),
            },
            Action::RetryStreaming => {
                if let Err(e) = self.pg.retry_streaming().await {
                    warn!("asking PostgreSQL to retry streaming failed: {e}");
                }
                Step::Done
            }
            Action::Rewind { upstream } => {
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
            Action::Reinitialize { upstream, sysid } | Action::Clone { upstream, sysid } => {
                self.set_following(Some(upstream.name.clone()));
                let (pg, up, sysid) = (self.pg.clone(), upstream.clone(), sysid.clone());
                self.spawn_job(action, false, async move {
                    pg.create_replica(&up, &sysid)
                        .await
                        .map_err(|e| format!("pg_basebackup: {e:#}"))?;
                    start_replica(&pg, up).await
                });
                Step::Done
            }
            Action::Restart { role } => {
                let primary = matches!(role, StartAs::Primary);
                let (pg, role) = (self.pg.clone(), role.clone());
                self.spawn_job(action, primary, async move {
                    pg.restart(&role).await.map_err(|e| format!("{e:#}"))
                });
                Step::Done
            }
            Action::SyncSlots { members } => {
                let wanted = crate::ha::slots::retained(
                    &mut self.st.slot_last_seen,
                    members,
                    &self.me,
                    obs.now,
                    self.st.ha.member_slots_ttl,
                );
                let ignore = self.st.ha.ignore_slots.clone();
                if self.st.slots_applied.as_ref() == Some(&wanted)
                    && self.st.slots_ignore_applied == ignore
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
            Action::ExtendFence => {
                let Some(until) = self.authority() else {
                    return Step::Stop("no authority to extend the fence to".into());
                };
                let ha = self.st.ha.clone();
                match self
                    .guards
                    .extend(until, &ha, self.st.postmaster_pid, &self.clock)
                    .await
                {
                    Ok(()) => Step::Done,
                    Err(e) => {
                        error!("moving the fence deadline failed: {e}");
                        Step::Stop(format!("fence: {e}"))
                    }
                }
            }
            Action::DisarmFence => match self.guards.disarm(&self.clock).await {
                Ok(()) => {
                    info!("fence disarmed");
                    Step::Done
                }
                Err(e) => Step::Stop(format!("disarming the fence: {e}")),
            },
            Action::FailsafeRound => self.failsafe_round().await,
            Action::WriteFailsafeKey { members } => {
                let key = self.failsafe_topology(members);
                match bounded(retry, self.dcs.write_failsafe(&key)).await {
                    Ok(()) => {
                        // What etcd holds now, as far as we know: a failsafe round right after
                        // this (etcd gone before our next read) asks these members.
                        if let Some(c) = &self.st.cluster {
                            let mut c = (**c).clone();
                            c.failsafe = Some(key);
                            self.st.cluster = Some(std::sync::Arc::new(c));
                        }
                        Step::Done
                    }
                    // Housekeeping: the next cycle tries again.
                    Err(e) => {
                        warn!("writing the failsafe key failed: {e}");
                        Step::Done
                    }
                }
            }
            Action::SetSyncStandbyNames(_)
            | Action::WriteSyncKey { .. }
            | Action::DeleteSyncKey { .. } => self.run_sync_action(action, retry).await,
            Action::ClearFailover { revision } => {
                match bounded(retry, self.dcs.clear_failover(revision.0)).await {
                    Ok(o) => {
                        info!(outcome = ?o, "cleared the failover key");
                        Step::Done
                    }
                    Err(e) => Step::Stop(e),
                }
            }
        }
    }

    /// Our current authority: the later of the lease's and the failsafe round's validity.
    fn authority(&self) -> Option<Millis> {
        let failsafe = self
            .st
            .failsafe_valid_until
            .filter(|_| self.st.ha.failsafe_mode);
        self.st.lease_valid_until.max(failsafe)
    }

    /// `POST /failsafe` to every other member of the `failsafe` key (as last read from etcd).
    async fn failsafe_round(&mut self) -> Step {
        let mut targets = self
            .st
            .cluster
            .as_ref()
            .and_then(|c| c.failsafe.clone())
            .unwrap_or_default();
        if !targets.contains_key(&self.cfg.name) {
            return Step::Stop("failsafe: this member is not in the failsafe key".into());
        }
        targets.remove(&self.cfg.name);
        let body = serde_json::json!({
            "name": self.cfg.name,
            "conn_url": self.cfg.conn_url(),
            "api_url": self.cfg.api_url(),
            "slots": {},
        });
        let t0 = self.clock.now();
        let auth = self.cfg.restapi.authentication.clone();
        match super::failsafe::round(self.peers.http(), &targets, &body, auth.as_ref()).await {
            Ok(()) => {
                self.st.failsafe_valid_until = Some(t0.plus(self.st.ha.ttl));
                tracing::debug!(members = targets.len(), "failsafe round accepted");
                Step::Done
            }
            Err(e) => {
                warn!("failsafe: {e}");
                Step::Stop(format!("failsafe round: {e}"))
            }
        }
    }

    /// The `failsafe` key's value: each member's REST API URL (ours from the configuration).
    fn failsafe_topology(
        &self,
        members: &[MemberName],
    ) -> std::collections::BTreeMap<String, String> {
        members
            .iter()
            .filter_map(|m| {
                let url = if m == &self.me {
                    Some(self.cfg.api_url())
                } else {
                    self.st
                        .cluster
                        .as_ref()
                        .and_then(|c| c.member(m.as_str()))
                        .map(|e| e.record.api_url.clone())
                        .filter(|u| !u.is_empty())
                };
                url.map(|u| (m.to_string(), u))
            })
            .collect()
    }

    fn spawn_job<F>(&mut self, action: &Action, primary: bool, work: F)
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

    /// Appends the timelines PostgreSQL's history file knows and `history` does not, the
    /// newest stamped with now and our name (Patroni's format).
    async fn record_history(&mut self, _obs: &Observation, file: &[(u32, u64, String)]) {
        let mut history: Vec<HistoryRecord> = self
            .st
            .cluster
            .as_ref()
            .and_then(|c| c.history.as_ref())
            .map(|h| h.value.clone())
            .unwrap_or_default();
        let newest = file.iter().map(|e| e.0).max();
        for (tl, lsn, reason) in file {
            if history.iter().any(|h| h.timeline == *tl) {
                continue;
            }
            let stamp = Some(*tl) == newest;
            history.push(HistoryRecord {
                timeline: *tl,
                switch_lsn: *lsn,
                reason: reason.clone(),
                timestamp: stamp.then(|| format_iso8601(wall_ms())),
                new_leader: stamp.then(|| self.cfg.name.clone()),
            });
        }
        history.sort_by_key(|h| h.timeline);
        let retry = Duration::from_millis(self.st.ha.retry_timeout.0);
        if let Err(e) = bounded(retry, self.dcs.write_history(&history)).await {
            warn!("writing the history key failed: {e}");
        }
    }
}

async fn start_replica<P: Postgres>(pg: &Arc<P>, up: Upstream) -> Result<(), String> {
    pg.start(&StartAs::Replica { upstream: Some(up) })
        .await
        .map_err(|e| format!("start: {e:#}"))
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
