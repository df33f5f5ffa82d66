//! The imperative shell: observe → decide → execute → publish, forever.
//!
//! Each cycle reads the cluster from etcd (the watch cache; one request only when the watch is
//! down) and PostgreSQL's state, asks the other members for their status when the leader key is
//! vacant, calls the pure `ha::decide`, runs the actions in order (a failure or a lost
//! compare-and-set aborts the rest of the batch), keeps our lease alive when we are not the
//! leader, publishes our member record when it changed, and publishes a `NodeSnapshot` for the
//! REST API.
//!
//! Timing: a cycle runs every `loop_wait`, at once when etcd reports a change of the leader,
//! failover, initialize or config key, when a background job finishes, or when an API request
//! arrives; every second while etcd is unreachable (a leader must keep trying to renew and
//! demote in time); and right away after a batch that changed PostgreSQL's role.
//!
//! Shutdown (SIGTERM/SIGINT): stop PostgreSQL (a leader checkpoints first), then release the
//! leader key so a replica takes over at once, then revoke our lease. In maintenance mode
//! PostgreSQL is left running, as Patroni does.

mod config;
mod execute;
mod jobs;
mod member;
mod publish;
mod requests;
mod shutdown;
pub mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::clock::{Clock, wall_ms};
use crate::config::{Config, DynamicConfig};
use crate::dcs::{Cluster, Dcs, MemberRecord, StatusRecord};
use crate::ha::{
    self, DcsView, Decision, HaConfig, JobResult, LocalRequest, MemberName, Millis, Observation,
    PgState,
};
use crate::peers::PeerClient;
use crate::pg::{PgSettings, Postgres};

use jobs::Jobs;
pub use snapshot::NodeSnapshot;

/// What the REST API asks the agent's loop for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiWhat {
    /// Restart PostgreSQL (answered when done).
    Restart,
    /// Reinitialize this replica (answered when started).
    Reinitialize,
    /// Re-read the configuration file (answered at once).
    Reload,
}

/// A request from the REST API for this member.
#[derive(Debug)]
pub struct ApiRequest {
    /// What to do.
    pub what: ApiWhat,
    /// Answered when done (`Ok(message)`) or refused / failed (`Err(reason)`).
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// How the agent ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Asked to stop.
    Clean,
    /// A fatal situation (e.g. system ID mismatch): exit 1 with this message.
    Fatal(String),
}

/// What the shell remembers between cycles (everything else is observed afresh).
struct ShellState {
    cycle: u64,
    dynamic: DynamicConfig,
    dynamic_revision: Option<i64>,
    ha: HaConfig,
    pg_settings: PgSettings,
    lease_valid_until: Option<Millis>,
    dcs_down_since: Option<Millis>,
    dcs_last_seen: Option<u64>,
    pg_down_since: Option<Millis>,
    not_streaming_since: Option<Millis>,
    member_lease_renewed_at: Option<Millis>,
    bootstrapping: bool,
    following: Option<MemberName>,
    last_job: Option<JobResult>,
    last_role: String,
    published_member: Option<MemberRecord>,
    published_status: Option<StatusRecord>,
    slots_applied: Option<Vec<MemberName>>,
    slot_last_seen: BTreeMap<MemberName, Millis>,
    request: Option<ApiRequest>,
    awaiting_job: Option<ApiRequest>,
    cluster: Option<Arc<Cluster>>,
    demoting: bool,
}

/// The agent's loop for one member.
pub struct Runtime<D: Dcs, P: Postgres> {
    cfg: Arc<Config>,
    dcs: Arc<D>,
    pg: Arc<P>,
    clock: Clock,
    me: MemberName,
    peers: PeerClient,
    snapshot: watch::Sender<NodeSnapshot>,
    requests: mpsc::Receiver<ApiRequest>,
    jobs: Jobs,
    st: ShellState,
}

/// How long a member that disappeared keeps its replication slot on the leader (Patroni's
/// `member_slots_ttl` default), so a replica restarted within it resumes streaming.
const MEMBER_SLOTS_TTL: Millis = Millis::secs(1800);

impl<D: Dcs, P: Postgres> Runtime<D, P> {
    /// A runtime for `cfg`, publishing on `snapshot` and taking requests from `requests`.
    pub fn new(
        cfg: Arc<Config>,
        dcs: Arc<D>,
        pg: Arc<P>,
        peers: PeerClient,
        snapshot: watch::Sender<NodeSnapshot>,
        requests: mpsc::Receiver<ApiRequest>,
    ) -> Self {
        let dynamic = cfg.initial_dynamic();
        let ha = cfg.ha_config(&dynamic);
        let pg_settings = cfg.pg_settings(&dynamic);
        Runtime {
            me: MemberName::new(&cfg.name),
            cfg,
            dcs,
            pg,
            clock: Clock::new(),
            peers,
            snapshot,
            requests,
            jobs: Jobs::default(),
            st: ShellState {
                cycle: 0,
                dynamic,
                dynamic_revision: None,
                ha,
                pg_settings,
                lease_valid_until: None,
                dcs_down_since: None,
                dcs_last_seen: None,
                pg_down_since: None,
                not_streaming_since: None,
                member_lease_renewed_at: None,
                bootstrapping: false,
                following: None,
                last_job: None,
                last_role: "uninitialized".into(),
                published_member: None,
                published_status: None,
                slots_applied: None,
                slot_last_seen: BTreeMap::new(),
                request: None,
                awaiting_job: None,
                cluster: None,
                demoting: false,
            },
        }
    }

    /// Runs until `cancel` fires or a fatal decision; then shuts down.
    pub async fn run(mut self, cancel: CancellationToken) -> Exit {
        let mut wait = Duration::ZERO;
        let exit = loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break Exit::Clean,
                req = self.requests.recv() => {
                    if let Some(req) = req {
                        self.accept_request(req).await;
                    }
                }
                _ = self.jobs.finished() => {}
                _ = self.dcs.changed(), if wait > Duration::ZERO => {}
                _ = tokio::time::sleep(wait) => {}
            }
            let span = info_span!("cycle", n = self.st.cycle + 1, member = %self.me);
            let (decision, rerun) = self.cycle().instrument(span).await;
            if decision.reason.is_fatal() {
                break Exit::Fatal(decision.reason.to_string());
            }
            wait = self.next_wait(rerun);
        };
        let span = info_span!("shutdown", member = %self.me);
        self.shutdown().instrument(span).await;
        exit
    }

    /// Time until the next cycle.
    fn next_wait(&self, rerun: bool) -> Duration {
        if rerun {
            return Duration::from_millis(20);
        }
        if self.st.dcs_down_since.is_some() {
            return Duration::from_secs(1);
        }
        let loop_wait = Duration::from_millis(self.st.ha.loop_wait.0);
        // A vacant lease in an initialized cluster is urgent: look again soon rather than a
        // whole loop_wait later (a peer that was still stopping may be done by then).
        let vacant = self.st.cluster.as_ref().is_some_and(|c| {
            c.leader.is_none() && c.initialize.as_deref().is_some_and(|i| !i.is_empty())
        });
        if vacant {
            return loop_wait.min(Duration::from_millis(500));
        }
        // A replica that just started or was re-pointed and does not stream yet: look again
        // in a second, so its record (and with it the leader's slot and the health checks)
        // follows quickly. Bounded, so a replica whose leader is gone does not spin.
        let now = self.clock.now();
        if self
            .st
            .not_streaming_since
            .is_some_and(|since| now.since(since) < Millis::secs(15))
        {
            return loop_wait.min(Duration::from_secs(1));
        }
        loop_wait
    }

    /// One cycle. Returns the decision and whether to run again right away.
    async fn cycle(&mut self) -> (Decision, bool) {
        self.st.cycle += 1;
        self.reap_job().await;
        let retry = Duration::from_millis(self.st.ha.retry_timeout.0);

        // Observe etcd.
        let cluster = match tokio::time::timeout(retry, self.dcs.cluster()).await {
            Ok(Ok(c)) => Some(Arc::new(c)),
            Ok(Err(e)) => {
                warn!("cannot read the cluster from etcd: {e}");
                None
            }
            Err(_) => {
                warn!("reading the cluster from etcd timed out");
                None
            }
        };
        match &cluster {
            Some(c) => {
                self.st.dcs_down_since = None;
                self.st.dcs_last_seen = Some(wall_ms() / 1000);
                self.apply_dynamic(c).await;
                self.st.cluster = Some(c.clone());
            }
            None => {
                let now = self.clock.now();
                self.st.dcs_down_since.get_or_insert(now);
            }
        }

        // Observe PostgreSQL.
        let pg = self.pg.status().await;
        match &pg.state {
            PgState::Stopped(_) | PgState::Starting => {
                let now = self.clock.now();
                self.st.pg_down_since.get_or_insert(now);
            }
            _ => self.st.pg_down_since = None,
        }
        match &pg.state {
            PgState::Running(r) if r.role == ha::PgRole::Replica && !r.streaming => {
                let now = self.clock.now();
                self.st.not_streaming_since.get_or_insert(now);
            }
            _ => self.st.not_streaming_since = None,
        }

        // The leader race needs the others' own word on their state.
        let peers = match &cluster {
            Some(c) if c.leader.is_none() && matches!(pg.state, PgState::Running(_)) => {
                self.peers.probe(c, &self.cfg.name).await
            }
            _ => Vec::new(),
        };

        let now = self.clock.now();
        let obs = Observation {
            me: self.me.clone(),
            now,
            wall_ms: wall_ms(),
            dcs: match &cluster {
                Some(c) => DcsView::Reachable(c.view()),
                None => DcsView::Unreachable {
                    since: self.st.dcs_down_since.unwrap_or(now),
                },
            },
            pg: pg.state.clone(),
            lease_valid_until: self.st.lease_valid_until,
            job: self.jobs.running(),
            last_job: self.st.last_job,
            pg_down_since: self.st.pg_down_since,
            not_streaming_since: self.st.not_streaming_since,
            peers,
            bootstrapping: self.st.bootstrapping,
            following: self.st.following.clone(),
            request: self.st.request.as_ref().and_then(|r| match r.what {
                ApiWhat::Restart => Some(LocalRequest::Restart),
                ApiWhat::Reinitialize => Some(LocalRequest::Reinitialize),
                ApiWhat::Reload => None,
            }),
        };
        let decision = ha::decide(&obs, &self.st.ha);
        let leader = cluster
            .as_ref()
            .and_then(|c| c.leader_name().map(str::to_string));
        let lease_left_ms = self.st.lease_valid_until.map(|u| u.since(now).0);
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

        // Our lease also carries our member record; the leader's renewal already kept it. A
        // non-leader renews at most once per loop_wait, however often it cycles (one request
        // per agent per loop_wait keeps an idle cluster cheap for etcd).
        let holds_key = leader.as_deref() == Some(self.cfg.name.as_str()) && !outcome.released;
        let now = self.clock.now();
        let due = self
            .st
            .member_lease_renewed_at
            .is_none_or(|at| now.since(at) >= self.st.ha.loop_wait);
        if outcome.renewed {
            self.st.member_lease_renewed_at = Some(now);
        } else if cluster.is_some() && !holds_key && due {
            match tokio::time::timeout(retry, self.dcs.keepalive()).await {
                Ok(Ok(crate::dcs::CasOutcome::Applied)) => {
                    self.st.member_lease_renewed_at = Some(now);
                }
                Ok(Ok(crate::dcs::CasOutcome::Lost)) => {
                    // A new lease: our member key vanished with the old one.
                    self.st.published_member = None;
                    self.st.member_lease_renewed_at = Some(now);
                }
                Ok(Err(e)) => warn!("lease keepalive failed: {e}"),
                Err(_) => warn!("lease keepalive timed out"),
            }
        }
        let pg_now = if outcome.pg_changed {
            self.pg.status().await
        } else {
            pg
        };
        let leader_now = (holds_key || outcome.renewed) && !outcome.released;
        self.publish(&pg_now, &decision, cluster.is_some(), leader_now)
            .await;
        (decision, outcome.rerun)
    }

    async fn reap_job(&mut self) {
        let now = self.clock.now();
        if let Some((result, err)) = self.jobs.reap(now) {
            match &err {
                None => info!(job = %result.kind, "job finished"),
                Some(e) => tracing::error!(job = %result.kind, "job failed: {e}"),
            }
            if let Some(waiting) = self.st.awaiting_job.take() {
                let _ = waiting.reply.send(match err {
                    None => Ok(format!("{} done", result.kind)),
                    Some(e) => Err(format!("{} failed: {e}", result.kind)),
                });
            }
            if result.kind == ha::JobKind::Bootstrap && !result.ok {
                // The failed bootstrap cleaned up; CancelInitialize follows from the core.
            }
            self.st.last_job = Some(result);
        }
    }
}
