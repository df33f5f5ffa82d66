//! The functional core: all high-availability policy, as one pure function.
//!
//! `decide(&Observation, &HaConfig) -> Decision` maps what a node sees (its PostgreSQL, the
//! cluster's keys in etcd, its lease, the clock) to an ordered list of actions and a reason.
//! The shell (`runtime`) observes, calls `decide`, executes, and publishes.
//!
//! Rules this module keeps (checked by `proptests.rs`):
//! - no I/O, no clock, no randomness, no logging: only `std` and `crate::ha` are used here;
//! - `decide` is total and deterministic;
//! - never `Promote` (or start as primary) unless the lease is held and fresh, or an
//!   `AcquireLease`/`RenewLease` earlier in the same batch proves it (a lost CAS aborts the batch);
//! - a primary whose authority (lease, or an accepted failsafe round) is not valid beyond the
//!   demotion point (`timing::demote_at`) demotes at once, whatever etcd's cache says and
//!   whichever situation it is in; only maintenance mode and our own bootstrap are exempt;
//! - PostgreSQL is made primary (promote, start as primary) only after the fence is armed in
//!   the same batch, when the fence is on.
//!
//! The situation decides the submodule: etcd down (`dcs_down`), leader key vacant
//! (`no_leader`), we hold it (`leader`), someone else holds it (`replica`).

pub mod action;
pub mod backup;
pub mod cadence;
pub mod candidate;
mod dcs_down;
mod fencing;
pub mod keys;
mod leader;
pub mod local;
pub mod model;
mod no_leader;
pub mod quorum;
mod quorum_leader;
pub mod quorum_vote;
pub mod reason;
mod replica;
pub mod serving;
pub mod shutdown;
pub mod slots;
pub mod sync;
pub mod sync_confirm;
pub mod sync_names;
pub mod timing;
mod untrusted;

#[cfg(test)]
mod builders;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod proptests_quorum;
#[cfg(test)]
mod proptests_sync;
#[cfg(test)]
mod tests;

pub use action::{Action, Decision, Ineligible, Reason, StartAs, StopMode};
pub use model::*;
pub use sync::{SyncKey, SyncMode, SyncStandbyNames};

/// The settings decisions depend on: the cluster's dynamic configuration (etcd `config`, else
/// `bootstrap.dcs`, else Patroni's defaults) and this member's own tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// Lease time to live.
    pub ttl: Millis,
    /// Time between cycles.
    pub loop_wait: Millis,
    /// How long etcd and PostgreSQL operations are retried; also the margin a leader keeps
    /// between demoting and the earliest moment its lease could expire.
    pub retry_timeout: Millis,
    /// A replica further behind than this (bytes) may not become leader.
    pub maximum_lag_on_failover: u64,
    /// How long a leader tries to bring its crashed PostgreSQL back before giving the lease away.
    pub primary_start_timeout: Millis,
    /// Rewind a diverged former primary instead of cloning it again.
    pub use_pg_rewind: bool,
    /// Keep a physical replication slot per member on the leader.
    pub use_slots: bool,
    /// How long a member that disappeared keeps its slot (`member_slots_ttl`).
    pub member_slots_ttl: Millis,
    /// Slots the leader's clean-up leaves alone (`ignore_slots`).
    pub ignore_slots: Vec<slots::IgnoreSlot>,
    /// Maintenance mode: do not start, stop, promote or demote PostgreSQL.
    pub pause: bool,
    /// This member may not become leader.
    pub nofailover: bool,
    /// Tie-break between equally advanced candidates; higher wins.
    pub failover_priority: i64,
    /// The config file has a `bootstrap` section: this member may initialize a new cluster.
    pub can_bootstrap: bool,
    /// The fence process guards a primary against a stalled agent (`fence.enabled`).
    pub fence: bool,
    /// `watchdog.mode`.
    pub watchdog: WatchdogMode,
    /// `watchdog.safety_margin`; `None` for Patroni's -1 (the watchdog fires at ttl / 2).
    pub watchdog_safety_margin: Option<Millis>,
    /// `failsafe_mode`: a leader that cannot reach etcd keeps running while every member
    /// accepts it through `POST /failsafe`.
    pub failsafe_mode: bool,
    /// `synchronous_mode` (see `sync`).
    pub synchronous_mode: SyncMode,
    /// `synchronous_mode_strict`: with no eligible standby, commits wait (`'*'`) rather
    /// than fall back to asynchronous replication.
    pub synchronous_mode_strict: bool,
    /// `synchronous_node_count` (at least 1).
    pub synchronous_node_count: usize,
    /// `maximum_lag_on_syncnode` in bytes; `None` (Patroni's -1) for unlimited.
    pub maximum_lag_on_syncnode: Option<u64>,
}

/// `watchdog.mode` (Patroni's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogMode {
    /// No watchdog.
    Off,
    /// Use the watchdog when it can be opened.
    Automatic,
    /// Never become leader without a working watchdog.
    Required,
}

impl Default for HaConfig {
    /// Patroni's defaults.
    fn default() -> Self {
        HaConfig {
            ttl: Millis::secs(30),
            loop_wait: Millis::secs(10),
            retry_timeout: Millis::secs(10),
            maximum_lag_on_failover: 1_048_576,
            primary_start_timeout: Millis::secs(300),
            use_pg_rewind: true,
            use_slots: true,
            member_slots_ttl: slots::MEMBER_SLOTS_TTL,
            ignore_slots: Vec::new(),
            pause: false,
            nofailover: false,
            failover_priority: 1,
            can_bootstrap: true,
            fence: true,
            watchdog: WatchdogMode::Off,
            watchdog_safety_margin: Some(Millis::secs(5)),
            failsafe_mode: false,
            synchronous_mode: SyncMode::Off,
            synchronous_mode_strict: false,
            synchronous_node_count: 1,
            maximum_lag_on_syncnode: None,
        }
    }
}

/// Decides what this member does now. See the module documentation for the rules.
pub fn decide(obs: &Observation, cfg: &HaConfig) -> Decision {
    if let Some(d) = fencing::authority_expired(obs, cfg) {
        return fencing::disarm_when_idle(obs, cfg, d);
    }
    let d = match &obs.dcs {
        DcsView::Unreachable { since } => dcs_down::decide(obs, *since, cfg),
        DcsView::Reachable(view) => match keys::leader_state(view, &obs.me) {
            keys::LeaderState::Vacant => no_leader::decide(obs, view, cfg),
            keys::LeaderState::Ours(l) => leader::decide(obs, view, l, cfg),
            keys::LeaderState::Other(l) => replica::decide(obs, view, l, cfg),
            keys::LeaderState::Untrusted(l) => untrusted::decide(obs, view, l, cfg),
        },
    };
    fencing::disarm_when_idle(obs, cfg, d)
}

/// Whether this member should ask the others for their status (`GET /patroni`) before
/// deciding: the leader race (vacant or untrusted `leader` key, PostgreSQL running), and a
/// member without data that must check the leader's system identifier before copying it.
pub fn needs_peers(view: &ClusterView, me: &MemberName, pg: &PgState) -> bool {
    match keys::leader_state(view, me) {
        keys::LeaderState::Vacant | keys::LeaderState::Untrusted(_) => {
            matches!(pg, PgState::Running(_))
        }
        keys::LeaderState::Other(_) => *pg == PgState::NoData,
        keys::LeaderState::Ours(_) => false,
    }
}

/// Whether the lease is known to be valid at `obs.now`.
pub fn lease_is_fresh(obs: &Observation) -> bool {
    obs.lease_valid_until.is_some_and(|until| until > obs.now)
}

/// Until when this member may accept writes: the later of its lease's validity and, in
/// failsafe mode, of the last failsafe round every member accepted.
pub fn authority_until(obs: &Observation, cfg: &HaConfig) -> Option<Millis> {
    let failsafe = obs.failsafe_valid_until.filter(|_| cfg.failsafe_mode);
    obs.lease_valid_until.max(failsafe)
}

pub use fencing::writes_possible;

/// Whether this member accepts a `POST /failsafe` from a leader cut off from etcd: unless it
/// runs as a primary itself (Patroni's rule; a primary answers "Running as a leader").
pub fn accepts_failsafe(pg: &PgState) -> bool {
    pg.role() != PgRole::Primary
}

/// PostgreSQL runs as primary here, or a job may leave it running as one.
pub fn may_write(obs: &Observation) -> bool {
    obs.pg.role() == PgRole::Primary || obs.job.is_some_and(|j| j.primary)
}

/// The replication target for `leader`, if its member record says where it listens.
fn upstream_of(view: &ClusterView, leader: &MemberName) -> Option<Upstream> {
    let m = view.member(leader)?;
    Some(Upstream {
        name: m.name.clone(),
        conn: m.conn.clone()?,
    })
}

/// Members that stream from the leader `me`: every other member in the view.
fn slot_members(view: &ClusterView, me: &MemberName) -> Vec<MemberName> {
    let mut v: Vec<MemberName> = view
        .members
        .iter()
        .filter(|m| &m.name != me)
        .map(|m| m.name.clone())
        .collect();
    v.sort();
    v
}
