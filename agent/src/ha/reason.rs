//! Why the core decided what it did: `Reason` (with `Ineligible`, why a member may not race for
//! the lease). `Display` gives Patroni's one-line summary for the log and `/patroni`; tests
//! compare the enums, never the text. Plain data: no decisions are taken here.

use std::fmt;

use super::model::{JobKind, Lsn, MemberName};

/// Why a member cannot take part in the leader race.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ineligible {
    /// Tagged `nofailover`.
    NoFailoverTag,
    /// Further behind the last known leader position than `maximum_lag_on_failover`.
    Lagging {
        /// Bytes behind.
        lag: u64,
    },
    /// Another member reports itself a running primary.
    PeerIsPrimary(MemberName),
    /// Another member has more WAL (or the same and a higher `failover_priority`).
    NotHealthiest(MemberName),
    /// A failover request names another member.
    OtherCandidate(MemberName),
    /// PostgreSQL is not running as a healthy replica or primary.
    NotRunning,
    /// The fence process is on but cannot be reached or started.
    FenceUnavailable,
    /// `watchdog.mode: required` and the watchdog cannot be used.
    WatchdogUnavailable,
    /// Failsafe mode: this leader called our `POST /failsafe` within the last ttl.
    FailsafeLeader(MemberName),
    /// Failsafe mode: the `failsafe` key does not list this member.
    NotInFailsafeTopology,
    /// `initialize` holds another system identifier than the members' data directories.
    SystemIdConflict,
    /// Synchronous mode: the `sync` key names neither this member nor it as the leader, so
    /// it may miss commits the leader acknowledged.
    NotSynchronous,
    /// Quorum mode: fewer of the `sync` key's voters (and leader) answered at or behind this
    /// member's position than `quorum + 1`, so it may miss commits the leader acknowledged.
    QuorumNotReached {
        /// Voters seen at or behind us (us included when we are one).
        votes: usize,
        /// `quorum + 1`.
        needed: usize,
    },
}

impl fmt::Display for Ineligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ineligible::NoFailoverTag => write!(f, "tagged nofailover"),
            Ineligible::Lagging { lag } => {
                write!(f, "lagging {lag} bytes behind the last leader position")
            }
            Ineligible::PeerIsPrimary(m) => write!(f, "member {m} is still running as primary"),
            Ineligible::NotHealthiest(m) => write!(f, "member {m} is healthier"),
            Ineligible::OtherCandidate(m) => write!(f, "failover candidate is {m}"),
            Ineligible::NotRunning => write!(f, "postgres is not running"),
            Ineligible::FenceUnavailable => {
                write!(f, "the fence process cannot be reached or started")
            }
            Ineligible::WatchdogUnavailable => {
                write!(f, "watchdog is required but cannot be used")
            }
            Ineligible::FailsafeLeader(m) => {
                write!(f, "failsafe mode: {m} is still running as the leader")
            }
            Ineligible::NotInFailsafeTopology => {
                write!(f, "failsafe mode: this member is not in the failsafe key")
            }
            Ineligible::QuorumNotReached { votes, needed } => write!(
                f,
                "quorum mode: {votes} of the {needed} votes needed (it may miss acknowledged commits)"
            ),
            Ineligible::NotSynchronous => write!(
                f,
                "synchronous mode: not a synchronous standby (it may miss acknowledged commits)"
            ),
            Ineligible::SystemIdConflict => write!(
                f,
                "the initialize key's system identifier is not the members' (an operator must resolve it)"
            ),
        }
    }
}

/// Why the core decided what it did. `Display` gives Patroni's style of one-line summary; tests
/// compare the enum, never the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    // ---- bootstrap ----
    /// No `initialize` key and an empty data directory: race to initialize the cluster.
    RacingToBootstrap,
    /// We claimed `initialize`; initdb and friends are running or just finished.
    Bootstrapping,
    /// We bootstrapped PostgreSQL: take the lease and publish the system identifier.
    InitializedNewCluster,
    /// Our bootstrap failed; give the race back.
    BootstrapFailed,
    /// Someone else initializes the cluster, or no leader exists to clone from.
    WaitingForLeaderToBootstrap,
    /// No `initialize` key, an empty data directory, and we may not bootstrap.
    CannotBootstrap,

    // ---- leader ----
    /// We hold the lease and run as primary: renew.
    LeaderRenewed,
    /// We hold the lease but PostgreSQL is a replica: promote it.
    PromotingHeldLease,
    /// We hold the lease and PostgreSQL is down: start it in place.
    RestartingPrimary,
    /// PostgreSQL did not come back within `primary_start_timeout`: give the lease away.
    PrimaryStartTimeout,
    /// We hold the lease but have no data directory.
    LeaderWithoutData,
    /// A switchover to `candidate` (or any replica) is due: demote gracefully and hand over.
    SwitchingOver {
        /// Requested target, if any.
        candidate: Option<MemberName>,
    },
    /// A scheduled switchover is not due yet.
    SwitchoverScheduled,
    /// The failover key cannot be acted on; clear it.
    FailoverRequestInvalid(String),
    /// etcd answers but our lease was not renewed in time: stop before it could expire.
    LeaseNotRenewedInTime,
    /// This member may not lead any more (its fence or required watchdog is gone): hand over.
    CannotLead(Ineligible),

    // ---- race for a vacant lease ----
    /// The lease is vacant and we are the healthiest eligible member.
    RacingForVacantLease,
    /// The lease is vacant but we may not take it.
    NotRacing(Ineligible),
    /// The lease is vacant; PostgreSQL runs as primary and we may not keep it.
    DemotingIneligiblePrimary(Ineligible),

    // ---- following ----
    /// Someone else holds the lease and we follow them.
    FollowingLeader(MemberName),
    /// Re-pointing replication at the leader.
    ReconfiguringToFollow(MemberName),
    /// Re-pointed at the leader a moment ago and not streaming yet: retrying at once.
    RetryingStreaming(MemberName),
    /// Starting PostgreSQL as a replica.
    StartingAsReplica,
    /// Someone else holds the lease while we run as primary: demote at once.
    LeaderKeyHeldByOther(MemberName),
    /// Our timeline diverged from the leader's: rewind.
    RewindingDiverged(MemberName),
    /// Our timeline diverged and rewind is off or did not help: clone again.
    ReinitializingDiverged(MemberName),
    /// A rewind failed a moment ago (e.g. the leader could not be reached): try again later.
    RewindRetryLater(MemberName),
    /// Empty data directory: clone from the leader.
    CloningFromLeader(MemberName),
    /// A clone failed a moment ago: try again a loop later.
    CloneRetryLater(MemberName),
    /// The leader's member record is missing; wait for it.
    WaitingForLeaderRecord(MemberName),

    // ---- etcd down ----
    /// etcd unreachable; our lease may still be valid: keep trying to renew.
    DcsUnreachableRetrying,
    /// etcd unreachable and our lease could expire before we stop: demote now.
    LeaseExpiringWithoutDcs,
    /// etcd unreachable; nothing to do as a non-primary.
    DcsUnreachable,
    /// etcd unreachable, failsafe mode: keep running as primary while every member accepts.
    FailsafeKeepsLeader,

    // ---- misc ----
    /// A background job runs.
    JobInProgress(JobKind),
    /// PostgreSQL is starting up or recovering.
    PostgresStarting,
    /// PostgreSQL runs but does not answer.
    PostgresUnresponsive,
    /// Maintenance mode: we do not touch PostgreSQL.
    Paused,
    /// Acting on a request from the API.
    Requested(JobKind),
    /// `initialize` names another system than the data we would serve or copy: nothing is
    /// stopped, nothing new is started until an operator resolves it.
    SystemIdConflict {
        /// `initialize` in etcd (or the identifier the leader reports).
        cluster: String,
        /// Ours (or the leader's).
        local: String,
    },
    /// No data yet and `initialize` cannot vouch for the leader's (absent, being written, or
    /// corrupt): wait rather than copy an unverified cluster.
    SystemIdUnverified,
    /// The `leader` key cannot be trusted and we lead in fact: take it over.
    ReclaimingLeaderKey,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::RacingToBootstrap => write!(f, "trying to bootstrap a new cluster"),
            Reason::Bootstrapping => write!(f, "bootstrap in progress"),
            Reason::InitializedNewCluster => write!(f, "initialized a new cluster"),
            Reason::BootstrapFailed => write!(f, "bootstrap failed, releasing the initialize key"),
            Reason::WaitingForLeaderToBootstrap => write!(f, "waiting for leader to bootstrap"),
            Reason::CannotBootstrap => {
                write!(
                    f,
                    "no cluster to join and this member may not bootstrap one"
                )
            }
            Reason::LeaderRenewed => write!(f, "no action. I am the leader with the lock"),
            Reason::PromotingHeldLease => {
                write!(f, "promoted self to leader because I had the session lock")
            }
            Reason::RestartingPrimary => write!(f, "starting primary after failure"),
            Reason::PrimaryStartTimeout => {
                write!(
                    f,
                    "primary did not start in time, releasing the leader lock"
                )
            }
            Reason::LeaderWithoutData => {
                write!(f, "leader lock held without a data directory, releasing it")
            }
            Reason::SwitchingOver { candidate: Some(c) } => {
                write!(f, "manual switchover: demoting myself in favour of {c}")
            }
            Reason::SwitchingOver { candidate: None } => {
                write!(f, "manual switchover: demoting myself")
            }
            Reason::SwitchoverScheduled => write!(f, "no action. a switchover is scheduled"),
            Reason::FailoverRequestInvalid(why) => write!(f, "manual failover: {why}"),
            Reason::LeaseNotRenewedInTime => write!(
                f,
                "demoting self because the leader lock could not be renewed in time"
            ),
            Reason::CannotLead(why) => write!(f, "giving up the leader lock: {why}"),
            Reason::RacingForVacantLease => {
                write!(f, "promoted self to leader by acquiring session lock")
            }
            Reason::NotRacing(why) => write!(f, "leader lock vacant, not taking it: {why}"),
            Reason::DemotingIneligiblePrimary(why) => {
                write!(f, "demoting self because I do not have the lock: {why}")
            }
            Reason::FollowingLeader(l) => {
                write!(
                    f,
                    "no action. I am a secondary and I am following a leader ({l})"
                )
            }
            Reason::ReconfiguringToFollow(l) => {
                write!(f, "changing primary_conninfo to follow {l}")
            }
            Reason::RetryingStreaming(l) => {
                write!(
                    f,
                    "not streaming from {l} yet: asking PostgreSQL to retry now"
                )
            }
            Reason::StartingAsReplica => write!(f, "starting as a secondary"),
            Reason::LeaderKeyHeldByOther(l) => {
                write!(f, "demoting self because {l} holds the leader lock")
            }
            Reason::RewindingDiverged(l) => write!(f, "running pg_rewind from {l}"),
            Reason::ReinitializingDiverged(l) => {
                write!(f, "timeline diverged from {l}: reinitializing from it")
            }
            Reason::RewindRetryLater(l) => {
                write!(f, "pg_rewind from {l} failed a moment ago; retrying later")
            }
            Reason::CloningFromLeader(l) => write!(f, "trying to bootstrap from leader '{l}'"),
            Reason::CloneRetryLater(l) => {
                write!(f, "copying from {l} failed a moment ago; retrying later")
            }
            Reason::WaitingForLeaderRecord(l) => {
                write!(f, "waiting for the member record of leader {l}")
            }
            Reason::DcsUnreachableRetrying => {
                write!(
                    f,
                    "DCS is not accessible; retrying while the lease is valid"
                )
            }
            Reason::LeaseExpiringWithoutDcs => {
                write!(
                    f,
                    "demoting self because DCS is not accessible and I was a leader"
                )
            }
            Reason::DcsUnreachable => write!(f, "DCS is not accessible"),
            Reason::FailsafeKeepsLeader => write!(
                f,
                "continue to run as a leader because failsafe mode is enabled and all members are accessible"
            ),
            Reason::JobInProgress(k) => write!(f, "{k} in progress"),
            Reason::PostgresStarting => write!(f, "postgres is starting"),
            Reason::PostgresUnresponsive => write!(f, "postgres is not responding"),
            Reason::Paused => write!(f, "PAUSE: no action"),
            Reason::Requested(k) => write!(f, "{k} requested through the API"),
            Reason::SystemIdConflict { cluster, local } => write!(
                f,
                "system ID conflict: initialize says {cluster}, data directory is {local}; not starting anything new until it is resolved"
            ),
            Reason::SystemIdUnverified => write!(
                f,
                "waiting for the initialize key before copying the leader's data"
            ),
            Reason::ReclaimingLeaderKey => write!(
                f,
                "taking back the leader lock, which named no member holding it"
            ),
        }
    }
}

/// Bytes between two WAL positions (zero when `behind` is ahead).
pub fn lag(ahead: Lsn, behind: Lsn) -> u64 {
    ahead.0.saturating_sub(behind.0)
}
