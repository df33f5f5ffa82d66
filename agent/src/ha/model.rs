//! Plain data the HA core decides on: what this node sees of itself, of PostgreSQL and of the
//! cluster in etcd, at one instant.
//!
//! Invariants: everything here is a value. Time is a monotonic [`Millis`] supplied by the shell
//! (plus a wall-clock reading used only for scheduled switchovers); nothing here reads a clock,
//! touches a socket or logs. Failures of the outside world are *states* (`DcsView::Unreachable`,
//! `PgState::Unknown`), never errors.

use std::fmt;

pub use super::local::{
    ControlState, JobKind, JobResult, LocalRequest, PgRole, PgState, RunningJob, RunningPg,
    StoppedPg,
};

/// Milliseconds on the shell's monotonic clock (or a duration in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// A duration of `s` seconds.
    pub const fn secs(s: u64) -> Self {
        Millis(s * 1000)
    }
    /// `self - earlier`, or zero when `earlier` is later.
    pub fn since(self, earlier: Millis) -> Millis {
        Millis(self.0.saturating_sub(earlier.0))
    }
    /// `self + d`, saturating.
    pub fn plus(self, d: Millis) -> Millis {
        Millis(self.0.saturating_add(d.0))
    }
}

/// A member's name as it appears in `members/<name>` and in the `leader` key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MemberName(pub String);

impl MemberName {
    /// Wraps a name.
    pub fn new(s: impl Into<String>) -> Self {
        MemberName(s.into())
    }
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A WAL position (PostgreSQL's `pg_lsn` as a 64-bit integer, as Patroni stores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    /// PostgreSQL's text form, e.g. `0/42A6A70`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl Lsn {
    /// Parses PostgreSQL's `X/Y` text form.
    pub fn parse(s: &str) -> Option<Lsn> {
        let (hi, lo) = s.trim().split_once('/')?;
        let hi = u64::from_str_radix(hi, 16).ok()?;
        let lo = u64::from_str_radix(lo, 16).ok()?;
        if hi > u64::from(u32::MAX) || lo > u64::from(u32::MAX) {
            return None;
        }
        Some(Lsn((hi << 32) | lo))
    }
}

/// An etcd `mod_revision`, used for compare-and-set on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision(pub i64);

/// Everything the core knows at one instant. Built by the shell's `observe()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// This member.
    pub me: MemberName,
    /// Monotonic now.
    pub now: Millis,
    /// Wall clock, milliseconds since the Unix epoch; only compared with `scheduled_at`.
    pub wall_ms: u64,
    /// The cluster as read from etcd, or when etcd could not be read since.
    pub dcs: DcsView,
    /// Local PostgreSQL.
    pub pg: PgState,
    /// Until when our own etcd lease is known to be alive: the send time of the last
    /// successful renewal plus ttl. `None` when we never renewed in this process.
    pub lease_valid_until: Option<Millis>,
    /// A long-running PostgreSQL job (clone, rewind, start, ...) still in flight.
    pub job: Option<RunningJob>,
    /// The most recently finished job and whether it worked.
    pub last_job: Option<JobResult>,
    /// Since when PostgreSQL has been seen not running (`Stopped`), if it is not running now.
    pub pg_down_since: Option<Millis>,
    /// Since when a running replica's WAL receiver has not been streaming (`None` while it
    /// streams, or when PostgreSQL is not a running replica).
    pub not_streaming_since: Option<Millis>,
    /// Since when etcd has shown no leader key (`None` while one exists, or etcd is not
    /// reachable): how long a switchover candidate has had to take over.
    pub leader_vacant_since: Option<Millis>,
    /// What the other members answered on `GET /patroni`; filled only when the leader key is
    /// vacant (the leader race needs it). Members that did not answer are absent.
    pub peers: Vec<PeerStatus>,
    /// We won the `initialize` race in this process and are bootstrapping the cluster.
    pub bootstrapping: bool,
    /// Whom the local PostgreSQL is configured to stream from, as last written by the shell.
    /// `None` after an agent restart, which makes the core re-point it once.
    pub following: Option<MemberName>,
    /// Since when the local PostgreSQL has been configured to stream from `following`.
    pub following_since: Option<Millis>,
    /// A request made through the REST API (restart, reinitialize) waiting to be acted on.
    pub request: Option<LocalRequest>,
    /// The fence process that stops PostgreSQL when our authority runs out.
    pub fence: FenceState,
    /// The watchdog device (held by the fence process).
    pub watchdog: WatchdogState,
    /// Until when the last failsafe round that every member accepted lets us keep writing
    /// (its send time plus ttl); `None` when no round was accepted since etcd was last seen.
    pub failsafe_valid_until: Option<Millis>,
    /// A leader that called our `POST /failsafe` within the last ttl (failsafe mode: while it
    /// lasts we do not race for the lease).
    pub failsafe_leader: Option<MemberName>,
    /// Running primary: the members its WAL senders stream to now (`pg_stat_replication`,
    /// state `streaming`). A switchover goes only to one of them.
    pub streaming_replicas: Vec<MemberName>,
    /// Running primary: the members confirmed synchronous under the `synchronous_standby_names`
    /// in force (`sync_names`): since that value took effect, `pg_stat_replication` reported
    /// them `sync` or `quorum`, streaming, with a flush position at or past the primary's WAL
    /// position when the shell first saw the value (so they hold every commit acknowledged
    /// before it). They may have disconnected since.
    pub sync_replicas: Vec<MemberName>,
    /// Running primary: `synchronous_standby_names` as PostgreSQL reports it (`None`: not
    /// known, or not a value this agent writes).
    pub sync_names: Option<super::sync::SyncStandbyNames>,
}

/// The fence process, as the shell found it this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceState {
    /// Switched off by configuration (`fence.enabled: false`).
    Disabled,
    /// It answers; `armed` is the deadline it holds (on our monotonic clock), if any.
    Ready {
        /// Current deadline.
        armed: Option<Millis>,
    },
    /// It neither answers nor could be started again: nothing guards a stalled agent.
    Unavailable,
}

/// The watchdog device, as the fence process reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogState {
    /// Not configured (`watchdog.mode: off`).
    Off,
    /// Configured and the device can be used.
    Usable,
    /// Configured but the device cannot be opened or set up.
    Unusable,
}

/// What etcd showed this cycle.
// One per cycle, built once and moved: boxing the view would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum DcsView {
    /// etcd answered: the cluster's keys.
    Reachable(ClusterView),
    /// etcd could not be read since `since` (monotonic).
    Unreachable {
        /// First failed read of the current outage.
        since: Millis,
    },
}

/// The cluster's keys in etcd, reduced to what decisions need.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterView {
    /// `initialize`: `None` when absent; `Some("")` while a member bootstraps; else the system id.
    pub initialize: Option<String>,
    /// `leader`.
    pub leader: Option<LeaderKey>,
    /// `members/*` that parsed.
    pub members: Vec<MemberView>,
    /// `failover`: a requested switchover or failover.
    pub failover: Option<FailoverRequest>,
    /// `status.optime`: the last WAL position the leader published.
    pub optime: Option<Lsn>,
    /// `history`: where each timeline ended.
    pub history: Vec<TimelineSwitch>,
    /// The `config` key exists (the cluster's dynamic configuration has been seeded).
    pub has_config: bool,
    /// `failsafe`: the members the leader last listed for failsafe mode (`None`: no key).
    pub failsafe: Option<Vec<MemberName>>,
    /// `config` exists but is unusable (not a JSON object): its revision, for replacing it.
    pub config_garbage: Option<Revision>,
    /// `sync`: the synchronous standbys the leader recorded.
    pub sync: Option<super::sync::SyncKey>,
}

impl ClusterView {
    /// The member record of `name`, if present.
    pub fn member(&self, name: &MemberName) -> Option<&MemberView> {
        self.members.iter().find(|m| &m.name == name)
    }
}

/// The `leader` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderKey {
    /// Member named in the key.
    pub holder: MemberName,
    /// mod_revision of the key.
    pub revision: Revision,
    /// Which lease the key is attached to.
    pub lease: KeyLease,
}

/// The lease a key is attached to, as this member sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLease {
    /// Our current lease.
    Ours,
    /// Some other lease (another member's, or an earlier one of ours).
    Other,
    /// No lease: the key never expires (written by hand, or restored).
    None,
}

/// A member's record (`members/<name>`) as the core needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberView {
    /// Member name.
    pub name: MemberName,
    /// Role it reported.
    pub role: PgRole,
    /// `state == running` (PostgreSQL up and answering).
    pub running: bool,
    /// Where to reach its PostgreSQL, from `conn_url`.
    pub conn: Option<ConnTarget>,
    /// Timeline it reported.
    pub timeline: Option<u32>,
    /// WAL position it reported (`xlog_location`).
    pub lsn: Option<Lsn>,
    /// Tagged `nofailover` (or `failover_priority: 0`).
    pub nofailover: bool,
    /// It reported `replication_state: streaming`.
    pub streaming: bool,
    /// Tagged `nosync`: never a synchronous standby.
    pub nosync: bool,
}

/// A host and port of a member's PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnTarget {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Whom to stream from: the leader's name and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Leader member.
    pub name: MemberName,
    /// Its PostgreSQL.
    pub conn: ConnTarget,
}

/// The `failover` key: a switchover (with `leader`) or failover request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverRequest {
    /// The leader the request was made against (switchover); `None` for a failover.
    pub leader: Option<MemberName>,
    /// The member that should become leader; `None` means "any healthy replica".
    pub candidate: Option<MemberName>,
    /// When to act, as Unix milliseconds; `None` means now.
    pub scheduled_at_ms: Option<u64>,
    /// mod_revision, for clearing the key with compare-and-delete.
    pub revision: Revision,
}

/// One entry of the `history` key: timeline `timeline` ended at `switch_lsn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineSwitch {
    /// The timeline that ended.
    pub timeline: u32,
    /// The WAL position where the next timeline forked off it.
    pub switch_lsn: Lsn,
}

/// What another member answered on its REST API during the leader race.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerStatus {
    /// Member name.
    pub name: MemberName,
    /// It reports itself a running primary (`role: primary`, `state: running`).
    pub running_primary: bool,
    /// Its timeline.
    pub timeline: Option<u32>,
    /// Its WAL position (receive/replay on a replica, current on a primary).
    pub lsn: Option<Lsn>,
    /// It may not become leader (`nofailover`).
    pub nofailover: bool,
    /// Its `failover_priority` tag (higher wins ties).
    pub failover_priority: i64,
    /// Its data directory's system identifier (`database_system_identifier`).
    pub sysid: Option<String>,
    /// The `leader` key as it last read it, before taking the WAL position it answered
    /// (hapg's own `/patroni` field `leader_seen`). A position read after the old leader lost
    /// the key is final: only such an answer is a quorum vote (`quorum_vote`).
    pub leader_seen: LeaderSeen,
}

/// What a peer's answer says about the `leader` key when it took its WAL position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderSeen {
    /// Not said (another agent, or it could not read etcd).
    Unknown,
    /// Vacant.
    Vacant,
    /// Held by this member.
    Held(MemberName),
}
