//! What the core asks the shell to do (`Decision`, `Action`); why is in `reason.rs`
//! (re-exported here).
//!
//! The shell runs a decision's actions in order. An action that fails, or a compare-and-set that
//! comes back `Lost`, aborts the rest of the batch: `[AcquireLease, Promote]` can therefore never
//! promote without the lease. The safety rule of each action is stated on its variant and checked
//! by the property tests in `ha/proptests.rs`.

use super::model::{JobKind, MemberName, Revision, Upstream};
use super::sync::SyncStandbyNames;

pub use super::reason::{Ineligible, Reason, lag};

/// The core's answer for one cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Run in order; stop at the first failure or lost compare-and-set.
    pub actions: Vec<Action>,
    /// Why, as one Patroni-style line.
    pub reason: Reason,
}

impl Decision {
    /// A decision with these actions.
    pub fn new(actions: impl Into<Vec<Action>>, reason: Reason) -> Self {
        Decision {
            actions: actions.into(),
            reason,
        }
    }
    /// A decision to do nothing.
    pub fn idle(reason: Reason) -> Self {
        Decision {
            actions: Vec::new(),
            reason,
        }
    }
}

/// How to stop PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// `CHECKPOINT`, then `pg_ctl stop -m fast`: WAL senders ship everything to the replicas
    /// before the postmaster exits (switchover, shutdown).
    Graceful,
    /// `pg_ctl stop -m fast`.
    Fast,
    /// `pg_ctl stop -m immediate`: stop accepting writes now (lost lease, split brain).
    Immediate,
}

/// Which role PostgreSQL starts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAs {
    /// Without `standby.signal`: accepts writes once up.
    Primary,
    /// With `standby.signal`, streaming from `upstream` when one is known.
    Replica {
        /// Whom to stream from; `None` starts a read-only standby with no upstream.
        upstream: Option<Upstream>,
    },
}

/// One step for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create `initialize` (empty) if absent. CAS: `Lost` aborts the batch, so only one member
    /// ever runs initdb for a cluster.
    ClaimInitialize,
    /// Job: initdb, write the configuration, start as primary, create the roles. Only after
    /// `ClaimInitialize` was applied in this process.
    Bootstrap,
    /// Delete our claim on `initialize` after a failed bootstrap, so the race can run again.
    CancelInitialize,
    /// Write the system identifier into `initialize`; only while holding the lease.
    WriteInitialize {
        /// PostgreSQL's database system identifier.
        sysid: String,
    },
    /// Replace a corrupt `initialize` (compare-and-set on the corrupt value) with our system
    /// identifier; only while holding the lease.
    RepairInitialize {
        /// The value found.
        found: String,
        /// Our data directory's system identifier.
        sysid: String,
    },
    /// Write `config` (the last configuration seen, else `bootstrap.dcs`) where there is none,
    /// or replacing an unusable one at `replacing` (compare-and-set either way: a usable config
    /// someone wrote meanwhile is never overwritten).
    SeedConfig {
        /// The revision of the unusable value to replace; `None`: create only.
        replacing: Option<Revision>,
    },
    /// Create `leader` with our name under our lease if it does not exist. CAS: `Lost` aborts
    /// the batch. The only way a member that does not hold the key may start to.
    AcquireLease,
    /// Put our name under our lease into a `leader` key that cannot be trusted (names no
    /// member, has no lease, or names us under a lease that is not ours), if its revision is
    /// still `revision`. CAS: `Lost` aborts the batch. Same safety as `AcquireLease`: it comes
    /// only from a running primary with authority or the winner of a leader race.
    TakeOverLeaderKey {
        /// mod_revision of the key the decision saw.
        revision: Revision,
    },
    /// Keep our lease alive and, when the key was written under an older lease of ours,
    /// re-attach it with a compare on its value. CAS: `Lost` (the key is not ours any more or
    /// our lease expired) aborts the batch.
    RenewLease,
    /// Delete `leader` if it still names us; lets another member take over at once.
    ReleaseLease,
    /// After a graceful stop: write where our WAL ends (the shutdown checkpoint) into
    /// `status`, so a switchover candidate promotes only once it received all of it.
    PublishPosition,
    /// End recovery. Safety: only when this batch or a fresh lease proves we hold `leader`
    /// (an `AcquireLease` or `RenewLease` earlier in the batch, or a lease still valid).
    Promote,
    /// Stop PostgreSQL. The shell publishes our non-leader state before stopping, so health
    /// checks move traffic away as early as possible.
    Demote {
        /// How hard.
        mode: StopMode,
    },
    /// Job: start PostgreSQL in the given role.
    Start {
        /// Role to start in. `Primary` only when this batch or a fresh lease proves we hold
        /// `leader`.
        role: StartAs,
    },
    /// Point a running replica at `upstream` (rewrite `primary_conninfo`, reload).
    Follow {
        /// The leader.
        upstream: Upstream,
    },
    /// Ask PostgreSQL to try streaming again at once (a reload: it wakes the startup process
    /// out of its `wal_retrieve_retry_interval` wait). Changes no setting.
    RetryStreaming,
    /// Job: stop, `pg_rewind` from the leader, start as its replica.
    Rewind {
        /// The leader.
        upstream: Upstream,
    },
    /// Job: `pg_basebackup` from the leader into a staging directory, then (only if the copy
    /// has the cluster's system identifier) swap it in for the data directory and start as
    /// replica.
    Reinitialize {
        /// The leader.
        upstream: Upstream,
        /// The system identifier the copy must have (`initialize`).
        sysid: String,
    },
    /// Job: `pg_basebackup` into the empty data directory (through a staging directory, kept
    /// only if the copy has the cluster's system identifier), start as replica.
    Clone {
        /// The leader.
        upstream: Upstream,
        /// The system identifier the copy must have (`initialize`).
        sysid: String,
    },
    /// Job: restart PostgreSQL (requested through the API), coming back as `role`: a leader
    /// (whose batch proved the lease first) as primary, a replica as its leader's replica.
    Restart {
        /// The role to come back in.
        role: StartAs,
    },
    /// Leader: make the physical replication slots exactly those of `members` (use_slots).
    SyncSlots {
        /// Members that stream from us.
        members: Vec<MemberName>,
    },
    /// Delete the `failover` key if its revision is still `revision`.
    ClearFailover {
        /// mod_revision the decision saw.
        revision: Revision,
    },
    /// Move the fence's deadline to `timing::fence_deadline` of our authority as it stands
    /// now (and pet the watchdog it holds). Safety: only right after the `AcquireLease`,
    /// `RenewLease` or `FailsafeRound` that proved that authority in this batch, and before
    /// any `Promote` or start as primary; a failure aborts the batch, so PostgreSQL is never
    /// made primary unfenced.
    ExtendFence,
    /// Clear the fence's deadline (and close the watchdog cleanly): nothing to guard any more,
    /// or maintenance mode. Harmless when late: the fence would only stop a PostgreSQL that
    /// must not write anyway.
    DisarmFence,
    /// etcd unreachable, failsafe mode: ask every member named in the `failsafe` key to
    /// accept us as leader (`POST /failsafe`). Applied only when every one accepts, and then
    /// our authority runs until the round's send time plus ttl (a member that accepted does
    /// not race for that long); otherwise the batch is aborted.
    FailsafeRound,
    /// Running primary: make `synchronous_standby_names` this value (a reload, no restart;
    /// nothing when it already is). Safety (`ha::sync`): a standby is added here before the
    /// `sync` key names it, and removed here only after a `WriteSyncKey` without it applied.
    SetSyncStandbyNames(SyncStandbyNames),
    /// Write the `sync` key `{"leader": <us>, "quorum": q, "sync_standby": "a,b"}`, creating
    /// it when `revision` is `None`, else if its mod_revision is still `revision`. CAS: `Lost`
    /// aborts the batch. Safety (on): names only standbys PostgreSQL already reports
    /// synchronous under the setting in force (or that were named before and still are
    /// listed). Safety (quorum, `ha::quorum`): with the setting in force, any `q + 1` of the
    /// voters and the leader include a member holding every acknowledged commit.
    WriteSyncKey {
        /// The synchronous standbys (quorum mode: the voters) to name.
        standbys: Vec<MemberName>,
        /// `quorum` (0 with synchronous mode on).
        quorum: usize,
        /// mod_revision the decision saw; `None`: create only.
        revision: Option<Revision>,
    },
    /// Delete the `sync` key if its mod_revision is still `revision` (synchronous mode was
    /// switched off). CAS: `Lost` aborts the batch.
    DeleteSyncKey {
        /// mod_revision the decision saw.
        revision: Revision,
    },
    /// Leader, failsafe mode: write the `failsafe` key listing these members (with their
    /// REST API URLs, which the shell knows).
    WriteFailsafeKey {
        /// Every member of the cluster, us included.
        members: Vec<MemberName>,
    },
}

impl Action {
    /// Whether the shell runs this as a background job.
    pub fn job_kind(&self) -> Option<JobKind> {
        match self {
            Action::Bootstrap => Some(JobKind::Bootstrap),
            Action::Start { .. } => Some(JobKind::Start),
            Action::Rewind { .. } => Some(JobKind::Rewind),
            Action::Reinitialize { .. } => Some(JobKind::Reinitialize),
            Action::Clone { .. } => Some(JobKind::Clone),
            Action::Restart { .. } => Some(JobKind::Restart),
            _ => None,
        }
    }
}
