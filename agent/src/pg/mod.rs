//! The local PostgreSQL: `trait Postgres` and the settings it runs with.
//!
//! The trait covers what the shell executes (bootstrap, start, stop, promote, follow, clone,
//! rewind, slots, reload) and one observation (`status`), nothing more. `status` never fails:
//! a PostgreSQL that does not answer is a *state* (`PgState::Unknown`), as the core expects.
//!
//! Invariants: PostgreSQL runs as the agent's own OS user (the agent refuses root); every file
//! the agent writes in the data directory (`postgresql.conf`, `pg_hba.conf`, `standby.signal`)
//! is rewritten from the settings before each start, because pg_basebackup and pg_rewind copy
//! the leader's.

pub mod bootstrap;
pub mod callbacks;
pub mod clone;
pub mod conf;
pub mod connparams;
pub mod controldata;
pub mod ctl;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod lifecycle;
pub mod local;
pub mod postmaster;
pub mod promote;
pub mod query;
pub mod replication;
mod repo_clone;
pub mod rewind;
pub mod session;
pub mod slots;
pub mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;

use crate::ha::slots::IgnoreSlot;
use crate::ha::{ConnTarget, MemberName, PgState, StartAs, StopMode, Upstream};

/// PostgreSQL could not do what we asked.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// A PostgreSQL program (initdb, pg_ctl, pg_basebackup, pg_rewind, ...) failed.
    #[error("{program} failed ({status}): {output}")]
    Command {
        /// Program name.
        program: String,
        /// Exit status text.
        status: String,
        /// The last lines of its output.
        output: String,
    },
    /// A program could not be started at all.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// Program path.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A SQL statement failed or the connection did not work.
    #[error("{what}: {detail}")]
    Sql {
        /// What we tried.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// Reading or writing a file in or beside the data directory failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What we tried.
        what: &'static str,
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Waited too long.
    #[error("{what} did not finish within {secs} s")]
    Timeout {
        /// What we waited for.
        what: &'static str,
        /// How long.
        secs: u64,
    },
    /// Anything else, with context.
    #[error("{0}")]
    Other(String),
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, PgError>;

/// A user name and password, and (for PostgreSQL roles) the role's libpq TLS settings.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// Role name.
    pub username: String,
    /// Password, if any.
    pub password: Option<String>,
    /// `sslmode`, `sslcert`, ... of `postgresql.authentication.<role>` (empty elsewhere).
    pub conn: connparams::ConnParams,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("conn", &self.conn)
            .finish()
    }
}

/// A PostgreSQL setting's value as written to `postgresql.conf`. YAML and JSON booleans render
/// as `on`/`off`, as Patroni does (`hot_standby: on` in YAML is a boolean).
#[derive(Debug, Clone, PartialEq)]
pub enum GucValue {
    /// on / off.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Anything else, written quoted.
    Str(String),
}

impl GucValue {
    /// From a JSON value; `None` for null, arrays and objects.
    pub fn from_json(v: &serde_json::Value) -> Option<GucValue> {
        match v {
            serde_json::Value::Bool(b) => Some(GucValue::Bool(*b)),
            serde_json::Value::Number(n) => Some(match n.as_i64() {
                Some(i) => GucValue::Int(i),
                None => GucValue::Float(n.as_f64().unwrap_or_default()),
            }),
            serde_json::Value::String(s) => Some(GucValue::Str(s.clone())),
            _ => None,
        }
    }
    /// The value as `postgresql.conf` syntax (strings single-quoted and escaped).
    pub fn to_conf(&self) -> String {
        match self {
            GucValue::Bool(true) => "on".into(),
            GucValue::Bool(false) => "off".into(),
            GucValue::Int(i) => i.to_string(),
            GucValue::Float(f) => f.to_string(),
            GucValue::Str(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
        }
    }
    /// The bare value as PostgreSQL reports it in `pg_settings` (unquoted).
    pub fn to_plain(&self) -> String {
        match self {
            GucValue::Str(s) => s.clone(),
            other => other.to_conf(),
        }
    }
}

/// `postgresql.create_replica_methods` with `pgbackrest` first: a new replica is restored
/// from the pgBackRest repository (then streams) instead of copied from the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoClone {
    /// The agent's pgBackRest configuration file (`backup.config_file`).
    pub config_file: PathBuf,
    /// `backup.stanza`.
    pub stanza: String,
    /// `basebackup` is listed too: fall back to pg_basebackup when the restore fails.
    pub then_basebackup: bool,
}

/// `bootstrap.method: pgbackrest`: a new cluster starts from a backup in the repository
/// (recovered to `target` and promoted) instead of initdb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoBootstrap {
    /// The agent's pgBackRest configuration file (`backup.config_file`).
    pub config_file: PathBuf,
    /// The stanza to restore from (another cluster's, or this one's).
    pub stanza: String,
    /// pgBackRest's `--type`: `default` (end of the archive), `time`, `lsn`, `name`, `immediate`.
    pub kind: String,
    /// `--target` for `time`, `lsn` and `name`.
    pub target: Option<String>,
    /// `--set`: a backup label.
    pub set: Option<String>,
}

/// Everything `LocalPostgres` needs to run one member's PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub struct PgSettings {
    /// Cluster name (`scope`), written as `cluster_name`.
    pub scope: String,
    /// This member's name: `application_name` towards the leader and its slot name.
    pub member: String,
    /// `postgresql.data_dir`.
    pub data_dir: PathBuf,
    /// `postgresql.bin_dir` (directory of initdb, pg_ctl, ...).
    pub bin_dir: PathBuf,
    /// `listen_addresses` from `postgresql.listen` (e.g. `0.0.0.0` or `127.0.0.1,::1`).
    pub listen_addresses: String,
    /// Port from `postgresql.listen`.
    pub port: u16,
    /// How other members and clients reach this PostgreSQL (`postgresql.connect_address`).
    pub connect_address: ConnTarget,
    /// Where the agent itself connects: a Unix socket directory or a host (default: the first
    /// listen address, `127.0.0.1` for a wildcard).
    pub local_host: String,
    /// `postgresql.authentication.superuser`.
    pub superuser: Credentials,
    /// `postgresql.authentication.replication`.
    pub replication: Credentials,
    /// `postgresql.authentication.rewind` (the superuser when absent).
    pub rewind: Option<Credentials>,
    /// Merged parameters: the cluster's dynamic ones, then local ones (see `config`).
    pub parameters: BTreeMap<String, GucValue>,
    /// `postgresql.pg_hba`: written on every start when set.
    pub pg_hba: Option<Vec<String>>,
    /// `bootstrap.pg_hba`: written once after initdb.
    pub bootstrap_pg_hba: Option<Vec<String>>,
    /// initdb arguments, already in `--flag` / `--key=value` form.
    pub initdb_args: Vec<String>,
    /// pg_basebackup arguments, already in `--flag` / `--key=value` form.
    pub basebackup_args: Vec<String>,
    /// `postgresql.pgpass`: the password file for replication and rewind connections.
    pub pgpass: PathBuf,
    /// Keep `primary_slot_name` = our slot on replicas (`use_slots`).
    pub use_slots: bool,
    /// `postgresql.callbacks`: `on_start`, `on_stop`, `on_restart`, `on_reload`, `on_role_change`.
    pub callbacks: BTreeMap<String, String>,
    /// Clone from the pgBackRest repository first (`create_replica_methods`).
    pub repo_clone: Option<RepoClone>,
    /// Bootstrap from the pgBackRest repository instead of initdb (`bootstrap.method`).
    pub repo_bootstrap: Option<RepoBootstrap>,
}

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

/// The local PostgreSQL as the shell drives it.
pub trait Postgres: Send + Sync + 'static {
    /// Looks at the data directory and, if a postmaster runs, asks it (each query bounded by
    /// a short timeout). Never fails.
    fn status(&self) -> impl Future<Output = PgStatus> + Send;

    /// New cluster: initdb, configuration, start as primary, create the superuser password,
    /// replication and rewind roles. On failure the data directory is removed again.
    fn bootstrap(&self) -> impl Future<Output = Result<()>> + Send;

    /// Writes the configuration for `role` and starts PostgreSQL, waiting until it accepts
    /// connections (or, for a replica, until it is up in recovery).
    fn start(&self, role: &StartAs) -> impl Future<Output = Result<()>> + Send;

    /// Stops PostgreSQL; nothing to do when it is not running.
    fn stop(&self, mode: StopMode) -> impl Future<Output = Result<()>> + Send;

    /// Restarts PostgreSQL in its current role.
    fn restart(&self, role: &StartAs) -> impl Future<Output = Result<()>> + Send;

    /// Ends recovery and waits for it; returns the new timeline and its history.
    fn promote(&self) -> impl Future<Output = Result<Promoted>> + Send;

    /// Points a running replica at `upstream` (or none): rewrite `primary_conninfo` and
    /// `primary_slot_name`, reload.
    fn follow(&self, upstream: Option<&Upstream>) -> impl Future<Output = Result<()>> + Send;

    /// Asks a replica to try streaming again now (a reload, which wakes the startup process
    /// out of its `wal_retrieve_retry_interval` wait); changes no setting.
    fn retry_streaming(&self) -> impl Future<Output = Result<()>> + Send;

    /// Creates a replica's data (Patroni's `create_replica_methods`: from the backup
    /// repository when configured, else `pg_basebackup` from `upstream`) in a staging
    /// directory; only when the copy is complete and of system `sysid` does it replace the
    /// data directory's contents. Does not start.
    fn create_replica(
        &self,
        upstream: &Upstream,
        sysid: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Stops PostgreSQL cleanly if it runs (crash recovery first if it was not shut down
    /// cleanly), then `pg_rewind` from `upstream`. Does not start.
    fn rewind_from(&self, upstream: &Upstream) -> impl Future<Output = Result<()>> + Send;

    /// Primary: physical replication slots are exactly one per name in `members` (slot names
    /// derived as Patroni does); other inactive physical slots are dropped.
    fn sync_slots(
        &self,
        members: &[MemberName],
        ignore: &[IgnoreSlot],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Replaces the parameters (after a change of the cluster's dynamic configuration),
    /// rewrites `postgresql.conf` and reloads a running PostgreSQL.
    fn reload(
        &self,
        parameters: BTreeMap<String, GucValue>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Sets `synchronous_standby_names` (kept across later `reload`s, which never carry it)
    /// in `postgresql.conf` and reloads a running PostgreSQL. No restart.
    fn set_sync_standby_names(&self, value: &str) -> impl Future<Output = Result<()>> + Send;
}

/// The replication slot name Patroni uses for member `name`: lower case, every character
/// outside `[a-z0-9_]` replaced by `_`, at most 63 bytes.
pub fn slot_name(name: &str) -> String {
    let mut s: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(63);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guc_rendering() {
        assert_eq!(GucValue::Bool(true).to_conf(), "on");
        assert_eq!(GucValue::Int(100).to_conf(), "100");
        assert_eq!(GucValue::Str("it's".into()).to_conf(), "'it''s'");
        assert_eq!(
            GucValue::from_json(&serde_json::json!("64MB")),
            Some(GucValue::Str("64MB".into()))
        );
    }

    #[test]
    fn slot_names_like_patroni() {
        assert_eq!(slot_name("Node-1.a"), "node_1_a");
    }
}
