//! Backup policy: is a backup due, of which type, and from which member.
//!
//! `decide_backup(&BackupObservation) -> BackupDecision` is pure like `decide`: the shell
//! (`crate::backup::runner`) turns the cron schedules and the wall clock into
//! [`DueSlots`] (the latest slot of each schedule at or before now, as Unix seconds), reads
//! the cluster's `backup` key, and executes the decision as a background job.
//!
//! The rule:
//! - only the leader (holding the lease, PostgreSQL running as primary) runs backups, and only
//!   one at a time on this member; the stanza must exist first;
//! - an on-demand request (`hactl backup`) runs before a scheduled slot;
//! - a slot is due when it is later than the slot last claimed in etcd (`claimed`); only the
//!   latest due slot runs (missed slots are not caught up one by one); when there is no
//!   record yet the latest slot is due, so a new cluster gets its first backup at once;
//! - the type is the strongest among the schedules with a due slot (full > diff > incr), so a
//!   missed full slot is not downgraded to an incremental by a later incr slot;
//! - the slot is claimed in etcd with compare-and-set *before* the backup starts, so two leaders
//!   in a row never run the same slot, and a slot claimed by a leader that then died is not
//!   repeated: a failed or interrupted backup is retried at the next slot;
//! - the source is the healthiest streaming replica (least lag, then name) within
//!   `max_lag` bytes whose data directory this machine can read (`reachable`: the shell
//!   finds it published and on the same machine) when `from_replica` is on, else the primary
//!   itself (members on other machines would need a pgBackRest server, `pg2-host`).

use serde::{Deserialize, Serialize};

/// pgBackRest's backup types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    /// Incremental: changed since the last backup of any type.
    Incr,
    /// Differential: changed since the last full backup.
    Diff,
    /// Full: everything.
    Full,
}

impl BackupKind {
    /// pgBackRest's `--type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Incr => "incr",
            BackupKind::Diff => "diff",
            BackupKind::Full => "full",
        }
    }

    /// Reads `full`, `diff` or `incr`.
    pub fn parse(s: &str) -> Option<BackupKind> {
        match s {
            "full" => Some(BackupKind::Full),
            "diff" => Some(BackupKind::Diff),
            "incr" => Some(BackupKind::Incr),
            _ => None,
        }
    }
}

impl std::fmt::Display for BackupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The latest slot at or before now of each configured schedule (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DueSlots {
    /// `backup.schedule.full`.
    pub full: Option<u64>,
    /// `backup.schedule.diff`.
    pub diff: Option<u64>,
    /// `backup.schedule.incr`.
    pub incr: Option<u64>,
}

/// A replica as a backup source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandbyCandidate {
    /// Member name.
    pub name: String,
    /// Running and streaming from the leader.
    pub streaming: bool,
    /// Bytes behind the leader (`None`: unknown).
    pub lag: Option<u64>,
    /// The shell knows where its data directory is (published in `backup-members/<name>`)
    /// and it is on this machine: pgBackRest reads a standby's files by their local path.
    pub reachable: bool,
}

/// What the backup policy looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupObservation {
    /// We hold the leader lease and PostgreSQL runs as primary.
    pub leader: bool,
    /// The stanza was created (or found valid) by this member since it became leader.
    pub stanza_ready: bool,
    /// A backup job of ours is running.
    pub job_running: bool,
    /// Latest slots of the schedules.
    pub due: DueSlots,
    /// The slot last claimed in the `backup` key.
    pub claimed: Option<u64>,
    /// A pending on-demand request: (id, type).
    pub request: Option<(String, BackupKind)>,
    /// The other members, as sources.
    pub replicas: Vec<StandbyCandidate>,
    /// `backup.from_replica`.
    pub from_replica: bool,
    /// Largest lag (bytes) of a replica we back up from (`maximum_lag_on_failover`).
    pub max_lag: u64,
}

/// Why it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A schedule slot (Unix seconds); claimed by compare-and-set before the backup starts.
    Slot(u64),
    /// An on-demand request with this id; taken out of the key before the backup starts.
    Request(String),
}

/// Where the data files are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupSource {
    /// The primary itself.
    Primary,
    /// A streaming replica (pgBackRest's `backup-standby`).
    Standby(String),
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupDecision {
    /// Nothing, and why.
    Wait(BackupWait),
    /// Claim the trigger, then run this backup as a background job.
    Run {
        /// Type.
        kind: BackupKind,
        /// Slot or request.
        trigger: Trigger,
        /// Source.
        source: BackupSource,
    },
}

/// Why nothing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupWait {
    /// Not the leader (or PostgreSQL is not a running primary): the leader runs backups.
    NotLeader,
    /// The stanza is not ready yet (created at the start of a leadership).
    StanzaNotReady,
    /// Our previous backup still runs.
    JobRunning,
    /// No slot later than the one claimed, and no request.
    NothingDue,
}

/// The backup policy (see the module's rule).
pub fn decide_backup(obs: &BackupObservation) -> BackupDecision {
    if !obs.leader {
        return BackupDecision::Wait(BackupWait::NotLeader);
    }
    if !obs.stanza_ready {
        return BackupDecision::Wait(BackupWait::StanzaNotReady);
    }
    if obs.job_running {
        return BackupDecision::Wait(BackupWait::JobRunning);
    }
    let source = source(obs);
    if let Some((id, kind)) = &obs.request {
        return BackupDecision::Run {
            kind: *kind,
            trigger: Trigger::Request(id.clone()),
            source,
        };
    }
    let is_due = |slot: Option<u64>| slot.filter(|s| obs.claimed.is_none_or(|c| *s > c));
    let due = [
        (BackupKind::Full, is_due(obs.due.full)),
        (BackupKind::Diff, is_due(obs.due.diff)),
        (BackupKind::Incr, is_due(obs.due.incr)),
    ];
    // The strongest type with a due slot; the claim is the latest due slot of any type.
    let kind = due.iter().find(|(_, s)| s.is_some()).map(|(k, _)| *k);
    let latest = due.iter().filter_map(|(_, s)| *s).max();
    match (kind, latest) {
        (Some(kind), Some(slot)) => BackupDecision::Run {
            kind,
            trigger: Trigger::Slot(slot),
            source,
        },
        _ => BackupDecision::Wait(BackupWait::NothingDue),
    }
}

fn source(obs: &BackupObservation) -> BackupSource {
    if !obs.from_replica {
        return BackupSource::Primary;
    }
    obs.replicas
        .iter()
        .filter(|r| r.streaming && r.reachable)
        .filter_map(|r| r.lag.filter(|l| *l <= obs.max_lag).map(|l| (l, r)))
        .min_by(|(la, a), (lb, b)| la.cmp(lb).then_with(|| a.name.cmp(&b.name)))
        .map_or(BackupSource::Primary, |(_, r)| {
            BackupSource::Standby(r.name.clone())
        })
}

#[cfg(test)]
mod tests;
