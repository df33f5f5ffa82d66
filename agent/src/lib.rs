//! hapg's agent: PostgreSQL high availability with a leader lease in etcd, compatible with
//! Patroni's configuration, etcd layout and REST API.
//!
//! Architecture: **observe → decide → execute**, every `loop_wait` or as soon as etcd reports
//! a change of the leader key.
//! - `ha`: the functional core. `ha::decide` maps one observation to actions; no I/O.
//! - `runtime`: the imperative shell that observes etcd and PostgreSQL, calls `decide`, runs the
//!   actions (long ones as background jobs), and publishes a snapshot for the REST API.
//! - `dcs`: the cluster's keys in etcd (`trait Dcs`, `EtcdDcs`), in Patroni's layout.
//! - `pg`: the local PostgreSQL (`trait Postgres`, `LocalPostgres`): pg_ctl, initdb,
//!   pg_basebackup, pg_rewind, configuration files, state queries.
//! - `config`: the Patroni-style YAML file and `PATRONI_*` overrides, validated.
//! - `status`: the snapshot the runtime publishes and `/patroni`'s JSON, shared by `runtime`
//!   and `api` (neither depends on the other's internals through it).
//! - `api`: the REST API (health checks for HAProxy, status JSON, switchover).
//! - `backup`: backups with pgBackRest, run by the leader on cron schedules.

pub mod api;
pub mod app;
pub mod backup;
pub mod clock;
pub mod config;
pub mod dcs;
pub mod fence;
#[cfg(test)]
mod fuzz;
pub mod ha;
pub mod keyfile;
pub mod logging;
pub mod peers;
pub mod pg;
pub mod runtime;
pub mod status;

/// This agent's version, reported in member records and `GET /patroni`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
