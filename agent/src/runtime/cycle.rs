//! One cycle of the loop: observe (etcd, the fence, PostgreSQL, and the other members when
//! the core needs them), decide, execute, keep our member lease alive, publish.
//!
//! While this member may be writing, every etcd request here is bounded by the time left
//! before the demotion point (`Runtime::etcd_budget`); once it has passed, etcd is not even
//! asked (the decision to demote does not depend on what it would say).

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::{ApiWhat, Runtime, sync};
use crate::clock::wall_ms;
use crate::dcs::{CasOutcome, Cluster, Dcs};
use crate::ha::{self, DcsView, Decision, LocalRequest, MemberName, Millis, Observation, PgState};
use crate::pg::Postgres;

impl<D: Dcs, P: Postgres> Runtime<D, P> {
    /// One cycle. Returns the decision and whether to run again right away.
    pub(super) async fn cycle(&mut self) -> (Decision, bool) {
        self.st.cycle += 1;
        self.st.sync_recheck = false;
        self.reap_job().await;

        let cluster = self.observe_dcs().await;
        match &cluster {
            Some(c) => {
                self.st.dcs_down_since = None;
                self.st.dcs_last_seen = Some(wall_ms() / 1000);
                self.apply_dynamic(c).await;
                self.remember(c);
                self.st.cluster = Some(c.clone());
            }
            None => {
                let now = self.clock.now();
                self.st.dcs_down_since.get_or_insert(now);
            }
        }

        // The fence: started, adopted (with the authority an earlier agent process left in
        // it) or found gone.
        let adopted = self.guards.observe(&self.clock).await;
        if !self.st.renewed_once
            && self.st.lease_valid_until.is_none()
            && let Some(v) = adopted
        {
            info!(
                lease_left_ms = v.since(self.clock.now()).0,
                "adopted the running fence and the lease validity it holds"
            );
            self.st.lease_valid_until = Some(v);
        }

        let pg = self.pg.status().await;
        self.st.postmaster_pid = pg.details.postmaster_pid;
        let now = self.clock.now();
        match &pg.state {
            PgState::Stopped(_) | PgState::Starting => {
                self.st.pg_down_since.get_or_insert(now);
            }
            _ => self.st.pg_down_since = None,
        }
        match &pg.state {
            PgState::Running(r) if r.role == ha::PgRole::Replica && !r.streaming => {
                self.st.not_streaming_since.get_or_insert(now);
            }
            _ => self.st.not_streaming_since = None,
        }
        match &cluster {
            Some(c) if c.leader.is_none() => {
                self.st.leader_vacant_since.get_or_insert(now);
            }
            _ => self.st.leader_vacant_since = None,
        }

        // The leader race (and a member about to copy the leader's data) needs the others'
        // own word on their state.
        let lease = self.dcs.lease_id();
        let peers = match &cluster {
            Some(c) if ha::needs_peers(&c.view(lease), &self.me, &pg.state) => {
                let remembered = self
                    .st
                    .remembered
                    .iter()
                    .map(|(n, (u, _))| (n.clone(), u.clone()))
                    .collect();
                self.peers.probe(c, &remembered, &self.cfg.name).await
            }
            _ => Vec::new(),
        };

        let streaming = pg
            .details
            .replication
            .iter()
            .filter(|r| r.state == "streaming")
            .map(|r| MemberName::new(&r.application_name))
            .collect();
        let (sync_names, sync) = sync::confirm_sync(&mut self.st.sync_confirm, &pg);
        let mut obs = self.observation(
            cluster.as_deref(),
            pg.state.clone(),
            peers,
            (streaming, sync),
        );
        obs.sync_names = sync_names;
        self.log_conflict(&obs);
        let decision = ha::decide(&obs, &self.st.ha);
        // Quorum mode: the votes may be missing only because the others have not yet answered
        // from a cycle after the leader left; ask again within a second, not a loop later.
        if let ha::Reason::NotRacing(ha::Ineligible::QuorumNotReached { .. }) = decision.reason {
            self.st.sync_recheck = true;
        }
        let leader = cluster
            .as_ref()
            .and_then(|c| c.leader_name().map(str::to_string));
        let lease_left_ms = self.st.lease_valid_until.map(|u| u.since(obs.now).0);
        info!(
            cycle = self.st.cycle,
            role = %pg.state.role(),
            leader = ?leader,
            lease_left_ms = ?lease_left_ms,
            reason = %decision.reason,
            "ha cycle"
        );

        let outcome = self.execute(&decision, &obs).await;
        self.answer_request(&decision);
        let holds_key = leader.as_deref() == Some(self.cfg.name.as_str()) && !outcome.released;
        self.keep_member_lease(cluster.is_some(), holds_key, outcome.renewed)
            .await;

        let pg_now = if outcome.pg_changed {
            self.pg.status().await
        } else {
            pg
        };
        // Exempt as in the core: maintenance mode, and our own bootstrap.
        self.st.guarding = !self.st.ha.pause
            && !self.st.bootstrapping
            && (pg_now.state.role() == ha::PgRole::Primary
                || self.jobs.running().is_some_and(|j| j.primary)
                || (pg_now.state == PgState::Unknown
                    && matches!(
                        self.guards.fence(),
                        ha::FenceState::Ready { armed: Some(_) }
                    )));
        let primary = pg_now.state.role() == ha::PgRole::Primary;
        let leader_now = ha::serving::serves_as_leader(&ha::serving::ServingInput {
            dcs_reachable: cluster.is_some(),
            holds_key,
            renewed: outcome.renewed,
            released: outcome.released,
            was_serving: self.snapshot.borrow().holds_leader_key,
            runs_primary: primary,
            demoting: self.st.demoting,
            lease_valid: self
                .st
                .lease_valid_until
                .is_some_and(|u| u > self.clock.now()),
            failsafe_active: self.failsafe_active(),
        });
        self.publish(&pg_now, &decision, cluster.is_some(), leader_now)
            .await;
        (decision, outcome.rerun)
    }

    /// The cluster from etcd within the budget; the watch cache (no request) when the budget
    /// is spent.
    async fn observe_dcs(&mut self) -> Option<Arc<Cluster>> {
        let budget = self.etcd_budget();
        if budget.is_zero() {
            return self.dcs.cached_cluster().map(Arc::new);
        }
        match tokio::time::timeout(budget, self.dcs.cluster()).await {
            Ok(Ok(c)) => Some(Arc::new(c)),
            Ok(Err(e)) => {
                warn!("cannot read the cluster from etcd: {e}");
                None
            }
            Err(_) => {
                warn!(
                    budget_ms = budget.as_millis(),
                    "reading the cluster from etcd did not finish in time"
                );
                None
            }
        }
    }

    /// Everything the core decides on.
    fn observation(
        &self,
        cluster: Option<&Cluster>,
        pg: PgState,
        peers: Vec<ha::PeerStatus>,
        (streaming_replicas, sync_replicas): (Vec<MemberName>, Vec<MemberName>),
    ) -> Observation {
        let now = self.clock.now();
        let ttl = Duration::from_millis(self.st.ha.ttl.0);
        Observation {
            me: self.me.clone(),
            now,
            wall_ms: wall_ms(),
            dcs: match cluster {
                Some(c) => DcsView::Reachable(c.view(self.dcs.lease_id())),
                None => DcsView::Unreachable {
                    since: self.st.dcs_down_since.unwrap_or(now),
                },
            },
            pg,
            lease_valid_until: self.st.lease_valid_until,
            job: self.jobs.running(),
            last_job: self.st.last_job,
            pg_down_since: self.st.pg_down_since,
            not_streaming_since: self.st.not_streaming_since,
            leader_vacant_since: self.st.leader_vacant_since,
            peers,
            bootstrapping: self.st.bootstrapping,
            following: self.st.following.clone(),
            following_since: self.st.following_since,
            request: self.st.request.as_ref().and_then(|r| match r.what {
                ApiWhat::Restart => Some(LocalRequest::Restart),
                ApiWhat::Reinitialize => Some(LocalRequest::Reinitialize),
                ApiWhat::Reload => None,
            }),
            fence: self.guards.fence(),
            watchdog: self.guards.watchdog(),
            failsafe_valid_until: self.st.failsafe_valid_until,
            failsafe_leader: self.failsafe.leader_within(ttl).map(MemberName::new),
            streaming_replicas,
            sync_replicas,
            sync_names: None,
        }
    }

    /// What a wipe of etcd's keys must not make us forget: the members seen within the last
    /// ten ttls (asked in a leader race, as Patroni asks the members of its last healthy
    /// view), and the last usable history.
    fn remember(&mut self, c: &Cluster) {
        let now = self.clock.now();
        for m in c.members.iter().filter(|m| !m.record.api_url.is_empty()) {
            self.st
                .remembered
                .insert(m.name.clone(), (m.record.api_url.clone(), now));
        }
        let keep = Millis(self.st.ha.ttl.0.saturating_mul(10));
        self.st
            .remembered
            .retain(|_, (_, seen)| now.since(*seen) <= keep);
        if let Some(h) = c.history.as_ref().filter(|h| !h.value.is_empty()) {
            self.st.history_seen = Some(h.value.clone());
        }
    }

    /// Logs a system-ID conflict once per change (it is also in `/patroni`, `/cluster` and
    /// the metrics for as long as it lasts).
    fn log_conflict(&mut self, obs: &Observation) {
        let DcsView::Reachable(view) = &obs.dcs else {
            return;
        };
        let now =
            ha::keys::system_id_conflict(obs, view).map(|(c, l)| (c.to_string(), l.to_string()));
        if now != self.st.conflict_logged {
            match &now {
                Some((c, l)) => tracing::error!(
                    initialize = %c,
                    data_directory = %l,
                    "system ID conflict: the initialize key names another system than this data directory; \
                     nothing new is started until an operator resolves it (hactl fix-initialize)"
                ),
                None => info!("no system ID conflict any more"),
            }
            self.st.conflict_logged = now;
        }
    }

    /// Our lease also carries our member record; the leader's renewal already kept it. A
    /// non-leader renews at most once per loop_wait, however often it cycles (one request
    /// per agent per loop_wait keeps an idle cluster cheap for etcd).
    async fn keep_member_lease(&mut self, dcs_up: bool, holds_key: bool, renewed: bool) {
        let now = self.clock.now();
        let due = self
            .st
            .member_lease_renewed_at
            .is_none_or(|at| now.since(at) >= self.st.ha.loop_wait);
        if renewed {
            self.st.member_lease_renewed_at = Some(now);
            return;
        }
        if !dcs_up || holds_key || !due {
            return;
        }
        match tokio::time::timeout(self.etcd_budget(), self.dcs.keepalive()).await {
            Ok(Ok(CasOutcome::Applied)) => {
                self.st.member_lease_renewed_at = Some(now);
            }
            Ok(Ok(CasOutcome::Lost)) => {
                // A new lease: our member key vanished with the old one.
                self.st.published_member = None;
                self.st.member_lease_renewed_at = Some(now);
            }
            Ok(Err(e)) => warn!("lease keepalive failed: {e}"),
            Err(_) => warn!("lease keepalive timed out"),
        }
    }
}
