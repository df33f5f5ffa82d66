//! Executing the actions on the leader lease and the authority it gives: acquire, renew,
//! release and take over the `leader` key, publish the final WAL position for a switchover,
//! the fence that guards a primary, and failsafe mode's rounds and key.
//!
//! Timing: the lease is taken to run `ttl` from the moment *before* the etcd call (the call
//! keeps the lease alive first), so the recorded validity never outlasts the real one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use super::{Outcome, Step, bounded};
use crate::dcs::{CasOutcome, Dcs, StatusRecord};
use crate::ha::{MemberName, Millis, PgState, Revision};
use crate::pg::Postgres;
use crate::runtime::Runtime;

impl<D: Dcs, P: Postgres> Runtime<D, P> {
    /// `TakeOverLeaderKey`: replace a leader key that names no member holding it.
    pub(super) async fn take_over_leader_key(
        &mut self,
        revision: Revision,
        retry: Duration,
        out: &mut Outcome,
    ) -> Step {
        let ttl = self.st.ha.ttl;
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

    /// `AcquireLease`: the create-only race for the vacant leader key.
    pub(super) async fn acquire_lease(&mut self, retry: Duration, out: &mut Outcome) -> Step {
        let ttl = self.st.ha.ttl;
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
            Ok(CasOutcome::Lost) => Step::Stop("another member took the leader lease".into()),
            Err(e) => Step::Stop(e),
        }
    }

    /// `RenewLease`: keep the lease; a lost compare means it is not ours any more.
    pub(super) async fn renew_lease(&mut self, retry: Duration, out: &mut Outcome) -> Step {
        let ttl = self.st.ha.ttl;
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

    /// `PublishPosition`: write where the stopped primary's WAL ends (`status.optime`).
    pub(super) async fn publish_position(&mut self, retry: Duration) -> Step {
        let end = match self.pg.status().await.state {
            PgState::Stopped(s) => s.checkpoint_lsn,
            other => {
                return Step::Stop(format!(
                    "cannot tell where the WAL ends: PostgreSQL is {other:?}"
                ));
            }
        };
        let status = StatusRecord {
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

    /// `ReleaseLease`: give the leader key up (we stop counting on it first).
    pub(super) async fn release_lease(&mut self, retry: Duration, out: &mut Outcome) -> Step {
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

    /// `ExtendFence`: move the fence's deadline to the end of our authority.
    pub(super) async fn extend_fence(&mut self) -> Step {
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

    /// `DisarmFence`.
    pub(super) async fn disarm_fence(&mut self) -> Step {
        match self.guards.disarm(&self.clock).await {
            Ok(()) => {
                info!("fence disarmed");
                Step::Done
            }
            Err(e) => Step::Stop(format!("disarming the fence: {e}")),
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
    pub(super) async fn failsafe_round(&mut self) -> Step {
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
        match crate::runtime::failsafe::round(self.peers.http(), &targets, &body, auth.as_ref())
            .await
        {
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

    /// `WriteFailsafeKey`: the members a failsafe round asks, with their REST API URLs.
    pub(super) async fn write_failsafe_key(
        &mut self,
        members: &[MemberName],
        retry: Duration,
    ) -> Step {
        let key = self.failsafe_topology(members);
        match bounded(retry, self.dcs.write_failsafe(&key)).await {
            Ok(()) => {
                // What etcd holds now, as far as we know: a failsafe round right after
                // this (etcd gone before our next read) asks these members.
                if let Some(c) = &self.st.cluster {
                    let mut c = (**c).clone();
                    c.failsafe = Some(key);
                    self.st.cluster = Some(Arc::new(c));
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

    /// The `failsafe` key's value: each member's REST API URL (ours from the configuration).
    fn failsafe_topology(&self, members: &[MemberName]) -> BTreeMap<String, String> {
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
}
