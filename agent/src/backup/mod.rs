//! Backups and point-in-time recovery with pgBackRest (hapg's own, beyond Patroni).
//!
//! - `schedule`: cron schedules from `backup.schedule.*`, asked for their latest slot.
//! - `pgbackrest`: the configuration file the agent writes, `archive_command`, and the
//!   commands it runs.
//! - `record`: the cluster's `backup` key (slot claims, requests, outcomes) and
//!   `backup-members/<name>` (where each member's PostgreSQL is).
//! - `info`: `pgbackrest info --output=json`, read for `hactl backups` and the runner.
//! - `runner`: the task beside the HA loop that runs what `ha::backup::decide_backup` says.
//! - `wal_gap`: a new leader pushes the completed WAL of older timelines still in its
//!   `pg_wal`, which the old primary may have died before archiving.
//!
//! The policy (is a backup due, which type, from where) is pure and lives in `ha::backup`;
//! nothing here decides. Backups never block the HA loop: they run as a background job.

pub mod info;
pub mod pgbackrest;
pub mod record;
pub mod runner;
pub mod schedule;
pub mod wal_gap;
