//! What the local PostgreSQL reports: `status()`'s answer (the core's `PgState` plus the
//! details the REST API shows) and what a promotion learned.

use crate::ha::PgState;

/// One row of `pg_stat_replication`, for `GET /patroni`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplicationRow {
    /// Role name.
    pub usename: String,
    /// The replica's `application_name` (its member name).
    pub application_name: String,
    /// Its address.
    pub client_addr: Option<String>,
    /// `streaming`, `catchup`, ...
    pub state: String,
    /// `async`, `sync`, `quorum`, `potential`.
    pub sync_state: String,
    /// Priority in `synchronous_standby_names`.
    pub sync_priority: i32,
    /// Its flush position (not shown by the REST API, as in Patroni).
    #[serde(skip)]
    pub flush_lsn: Option<u64>,
}

/// What the REST API shows beyond the core's `PgState`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PgDetails {
    /// `server_version_num`.
    pub server_version: Option<i32>,
    /// `pg_postmaster_start_time()` as text.
    pub postmaster_start_time: Option<String>,
    /// Replica: received position.
    pub receive_lsn: Option<u64>,
    /// Replica: replayed position.
    pub replay_lsn: Option<u64>,
    /// Replica: `pg_last_xact_replay_timestamp()` as text.
    pub replayed_timestamp: Option<String>,
    /// Replica: WAL replay paused.
    pub replay_paused: bool,
    /// Replica: the WAL receiver's status (`streaming`, ...).
    pub receiver_state: Option<String>,
    /// Primary: `pg_stat_replication`.
    pub replication: Vec<ReplicationRow>,
    /// Some setting waits for a restart (`pg_settings.pending_restart`).
    pub pending_restart: bool,
    /// The postmaster's pid, when one runs on the data directory (the fence is told, so it
    /// knows whom to stop first).
    pub postmaster_pid: Option<i32>,
    /// Primary: `synchronous_standby_names` as the server reports it.
    pub sync_standby_names: Option<String>,
}

/// `status()`'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PgStatus {
    /// What the core decides on.
    pub state: PgState,
    /// What the API shows.
    pub details: PgDetails,
}

/// What `promote` learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promoted {
    /// The new timeline.
    pub timeline: u32,
    /// The new timeline's history file: `(timeline, switch_lsn, reason)` for each ended one.
    pub history: Vec<(u32, u64, String)>,
}
