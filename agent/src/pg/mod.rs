//! The local PostgreSQL: `trait Postgres` and the settings it runs with.
//!
//! The trait covers what the shell executes (bootstrap, start, stop, promote, follow, clone,
//! rewind, slots, reload) and one observation (`status`), nothing more. `status` never fails:
//! a PostgreSQL that does not answer is a *state* (`PgState::Unknown`), as the core expects.
//! The types it takes and returns live in `settings.rs`, `guc.rs` and `status.rs` and are
//! re-exported here.
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
mod guc;
pub mod lifecycle;
pub mod local;
pub mod postmaster;
pub mod promote;
pub mod query;
pub mod replication;
mod repo_clone;
pub mod rewind;
pub mod session;
mod settings;
pub mod slots;
mod status;
pub mod tls;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;

pub use guc::GucValue;
pub use settings::{Credentials, PgSettings, RepoBootstrap, RepoClone};
pub use slots::slot_name;
pub use status::{PgDetails, PgStatus, Promoted, ReplicationRow};

use crate::ha::slots::IgnoreSlot;
use crate::ha::{MemberName, StartAs, StopMode, Upstream};

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
