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
//! arrives; every second while etcd is unreachable (a leader must keep trying to renew); right
//! away after a batch that changed PostgreSQL's role; and, while this member may be writing,
//! no later than its demotion point (`ha::timing::demote_at`). Every etcd request a cycle
//! waits on is bounded by the time left before that point, so no request that hangs can make
//! the demotion late (the fence, a separate process, is the backstop if the agent stalls).
//!
//! Shutdown (SIGTERM/SIGINT): stop PostgreSQL (a leader checkpoints first), then release the
//! leader key so a replica takes over at once, then revoke our lease. In maintenance mode
//! PostgreSQL is left running, as Patroni does.

mod config;
mod cycle;
mod execute;
pub mod failsafe;
mod guards;
mod jobs;
mod member;
mod publish;
mod requests;
mod shutdown;
pub use crate::status::snapshot;
mod sync;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span};

use crate::clock::Clock;
use crate::config::{Config, DynamicConfig};
use crate::dcs::{Cluster, Dcs, MemberRecord, StatusRecord};
use crate::ha::{self, HaConfig, JobResult, MemberName, Millis};
use crate::peers::PeerClient;
use crate::pg::{PgSettings, Postgres};

pub use failsafe::FailsafeInbox;
use guards::Guards;
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
    leader_vacant_since: Option<Millis>,
    member_lease_renewed_at: Option<Millis>,
    bootstrapping: bool,
    following: Option<MemberName>,
    /// When `following` last changed.
    following_since: Option<Millis>,
    last_job: Option<JobResult>,
    last_role: String,
    published_member: Option<MemberRecord>,
    published_status: Option<StatusRecord>,
    slots_applied: Option<Vec<MemberName>>,
    /// The `ignore_slots` rules the last slot clean-up honoured.
    slots_ignore_applied: Vec<ha::slots::IgnoreSlot>,
    /// `synchronous_standby_names` as last set (None: not since the last role change).
    sync_names_applied: Option<String>,
    /// Which standbys hold every commit acknowledged before the setting in force
    /// (`ha::sync_confirm`; fed by `runtime::sync::confirm_sync`).
    sync_confirm: ha::sync_confirm::SyncConfirm,
    /// Look again within a second: `synchronous_standby_names` changed this cycle (quorum
    /// mode's next key write waits for PostgreSQL to confirm it, as Patroni's loop does), or
    /// the quorum rule found too few votes in a leader race (fresh answers may follow).
    sync_recheck: bool,
    slot_last_seen: BTreeMap<MemberName, Millis>,
    request: Option<ApiRequest>,
    awaiting_job: Option<ApiRequest>,
    cluster: Option<Arc<Cluster>>,
    demoting: bool,
    /// Until when the last failsafe round every member accepted lets us write.
    failsafe_valid_until: Option<Millis>,
    /// The last observation said PostgreSQL may be writing here: bound etcd calls by the
    /// demotion point.
    guarding: bool,
    /// The postmaster's pid at the last observation (for the fence).
    postmaster_pid: Option<i32>,
    /// A lease renewal or acquisition succeeded in this process (an adopted fence's authority
    /// is only used before that).
    renewed_once: bool,
    /// A usable `config` was read from etcd (it is what a wiped or garbled key is restored to).
    config_seen: bool,
    /// Members seen recently (name -> API URL, last seen): asked too in a leader race, so that
    /// a wiped or garbled member record does not hide a running primary.
    remembered: BTreeMap<String, (String, Millis)>,
    /// The last usable `history`, restored by the leader when the key is gone or garbled.
    history_seen: Option<Vec<crate::dcs::HistoryRecord>>,
    /// The system-ID conflict last logged, so it is logged once per change.
    conflict_logged: Option<(String, String)>,
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
    guards: Guards,
    failsafe: FailsafeInbox,
    st: ShellState,
}

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
            guards: Guards::new(&cfg),
            failsafe: FailsafeInbox::default(),
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
                leader_vacant_since: None,
                member_lease_renewed_at: None,
                bootstrapping: false,
                following: None,
                following_since: None,
                last_job: None,
                last_role: "uninitialized".into(),
                published_member: None,
                published_status: None,
                slots_applied: None,
                slots_ignore_applied: Vec::new(),
                sync_names_applied: None,
                sync_confirm: ha::sync_confirm::SyncConfirm::default(),
                sync_recheck: false,
                slot_last_seen: BTreeMap::new(),
                request: None,
                awaiting_job: None,
                cluster: None,
                demoting: false,
                failsafe_valid_until: None,
                guarding: false,
                postmaster_pid: None,
                renewed_once: false,
                config_seen: false,
                remembered: BTreeMap::new(),
                history_seen: None,
                conflict_logged: None,
            },
        }
    }

    /// Shares `inbox` with the REST API, which records `POST /failsafe` promises in it.
    pub fn with_failsafe(mut self, inbox: FailsafeInbox) -> Self {
        self.failsafe = inbox;
        self
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
            let (_, rerun) = self.cycle().instrument(span).await;
            wait = self.next_wait(rerun);
        };
        let span = info_span!("shutdown", member = %self.me);
        self.shutdown().instrument(span).await;
        exit
    }

    /// Time until the next cycle (the rule: `ha::cadence`).
    fn next_wait(&self, rerun: bool) -> Duration {
        let input = ha::cadence::CadenceInput {
            now: self.clock.now(),
            rerun,
            dcs_down: self.st.dcs_down_since.is_some(),
            lease_vacant: self.st.cluster.as_ref().is_some_and(|c| {
                c.leader.is_none() && c.initialize.as_deref().is_some_and(|i| !i.is_empty())
            }),
            not_streaming_since: self.st.not_streaming_since,
            following_since: self.st.following_since,
            sync_recheck: self.st.sync_recheck,
            demote_at: self.demote_point().filter(|_| self.st.guarding),
        };
        Duration::from_millis(ha::cadence::next_wait(&input, &self.st.ha).0)
    }

    /// Records whom PostgreSQL is configured to stream from, and since when.
    fn set_following(&mut self, upstream: Option<MemberName>) {
        if self.st.following != upstream {
            self.st.following_since = upstream.as_ref().map(|_| self.clock.now());
        }
        self.st.following = upstream;
    }

    /// The demotion point of our current authority, if we have any.
    fn demote_point(&self) -> Option<Millis> {
        let failsafe = self
            .st
            .failsafe_valid_until
            .filter(|_| self.st.ha.failsafe_mode);
        let until = self.st.lease_valid_until.max(failsafe)?;
        Some(ha::timing::demote_at(until, &self.st.ha))
    }

    /// Failsafe mode is what keeps this member writing now: etcd cannot be read and the last
    /// failsafe round every member accepted is still valid.
    fn failsafe_active(&self) -> bool {
        self.st.ha.failsafe_mode
            && self.st.dcs_down_since.is_some()
            && self
                .st
                .failsafe_valid_until
                .is_some_and(|u| u > self.clock.now())
    }

    /// How long an etcd request may take now: `retry_timeout`, or less when this member may
    /// be writing and its demotion point is closer (zero once it has passed).
    fn etcd_budget(&self) -> Duration {
        let retry = Duration::from_millis(self.st.ha.retry_timeout.0);
        if !self.st.guarding {
            return retry;
        }
        match self.demote_point() {
            Some(at) => retry.min(Duration::from_millis(at.since(self.clock.now()).0)),
            None => Duration::ZERO,
        }
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
