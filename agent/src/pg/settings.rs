//! `PgSettings`: everything `LocalPostgres` needs to run one member's PostgreSQL, with the
//! roles' credentials and the pgBackRest clone and bootstrap sources.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::{GucValue, connparams};
use crate::ha::ConnTarget;

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
