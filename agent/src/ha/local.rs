//! Plain data about this node itself, as the core sees it: its PostgreSQL (`PgState`, `PgRole`),
//! background jobs (`RunningJob`, `JobResult`) and local requests from the REST API or `hactl`.
//! Part of the observation (`model.rs` re-exports everything here); values only, no I/O.

use std::fmt;

use super::model::{Lsn, Millis};

/// PostgreSQL's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PgRole {
    /// Accepts writes.
    Primary,
    /// In recovery.
    Replica,
    /// Not known (stopped, unreachable, or not reported).
    Unknown,
}

impl fmt::Display for PgRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PgRole::Primary => "primary",
            PgRole::Replica => "replica",
            PgRole::Unknown => "unknown",
        })
    }
}

/// The local PostgreSQL as the shell found it.
#[derive(Debug, Clone, PartialEq)]
pub enum PgState {
    /// The data directory is missing or empty.
    NoData,
    /// A data directory exists and no postmaster runs on it.
    Stopped(StoppedPg),
    /// A postmaster runs but does not accept connections yet (startup, crash recovery).
    Starting,
    /// A postmaster runs and answered our queries.
    Running(RunningPg),
    /// A postmaster runs but did not answer (hung, SIGSTOPped, refused our login).
    Unknown,
}

impl PgState {
    /// The role if PostgreSQL runs and answered.
    pub fn role(&self) -> PgRole {
        match self {
            PgState::Running(r) => r.role,
            _ => PgRole::Unknown,
        }
    }
    /// Whether a data directory exists.
    pub fn has_data(&self) -> bool {
        !matches!(self, PgState::NoData)
    }
    /// The running primary's or replica's details.
    pub fn running(&self) -> Option<&RunningPg> {
        match self {
            PgState::Running(r) => Some(r),
            _ => None,
        }
    }
}

/// A data directory without a postmaster, from `pg_controldata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoppedPg {
    /// Database system identifier.
    pub sysid: String,
    /// Latest checkpoint's timeline.
    pub timeline: u32,
    /// How the cluster was left.
    pub control_state: ControlState,
    /// Latest checkpoint location: after a clean shutdown, the last record of the WAL (a
    /// replica has everything once it received past it).
    pub checkpoint_lsn: Lsn,
}

/// `Database cluster state` from `pg_controldata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlState {
    /// `shut down`: a primary stopped cleanly.
    ShutDown,
    /// `shut down in recovery`: a replica stopped cleanly.
    ShutDownInRecovery,
    /// `in production`: a primary that crashed.
    InProduction,
    /// `in archive recovery` / `in crash recovery`: a replica that crashed.
    InRecovery,
    /// Anything else.
    Other,
}

/// A running PostgreSQL that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningPg {
    /// Primary or replica.
    pub role: PgRole,
    /// Database system identifier.
    pub sysid: String,
    /// Current timeline (a replica's: the one it replays).
    pub timeline: u32,
    /// Primary: `pg_current_wal_lsn()`. Replica: the received or replayed position, whichever is later.
    pub lsn: Lsn,
    /// Replica: last replayed position (decides divergence from a new leader's timeline).
    pub replay_lsn: Lsn,
    /// Replica: the WAL receiver is streaming.
    pub streaming: bool,
}

/// Kinds of long-running PostgreSQL work the shell runs in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// initdb, start, create roles.
    Bootstrap,
    /// Start PostgreSQL.
    Start,
    /// Restart PostgreSQL.
    Restart,
    /// pg_basebackup from the leader, then start.
    Clone,
    /// pg_rewind from the leader, then start.
    Rewind,
    /// Wipe the data directory, clone, start.
    Reinitialize,
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobKind::Bootstrap => "bootstrap",
            JobKind::Start => "start",
            JobKind::Restart => "restart",
            JobKind::Clone => "clone",
            JobKind::Rewind => "rewind",
            JobKind::Reinitialize => "reinitialize",
        })
    }
}

/// A job in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunningJob {
    /// What it does.
    pub kind: JobKind,
    /// When it started.
    pub since: Millis,
    /// The job may leave PostgreSQL running as a primary (start or restart as primary).
    /// Such a job must be stopped as soon as this member cannot prove it holds the lease.
    pub primary: bool,
}

/// A finished job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobResult {
    /// What it did.
    pub kind: JobKind,
    /// It succeeded.
    pub ok: bool,
    /// When it finished.
    pub at: Millis,
}

/// A request from the REST API or `hactl` for this member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalRequest {
    /// Restart PostgreSQL in its current role.
    Restart,
    /// Throw the data away and clone again from the leader.
    Reinitialize,
}
