//! The pgBackRest repository as a source of data: `create_replica_methods: [pgbackrest, ...]`
//! (a new replica restored from the repository instead of copied from the leader with
//! pg_basebackup, Patroni's `pgbackrest` method, with hapg's own `backup` section as the
//! repository), and `bootstrap.method: pgbackrest` (a new cluster from a backup, recovered to a
//! target and promoted, instead of initdb).
//!
//! `pgbackrest restore --type=standby` writes the newest backup into the clone's staging
//! directory, with `restore_command` (archive-get) in `postgresql.auto.conf` and
//! `standby.signal`; the agent then starts it as a replica of the leader as after any clone: it
//! replays the archive, then streams. The leader only serves the WAL since the backup.
//!
//! Invariants: as for pg_basebackup, the copy is made in the staging directory and checked to
//! be of the cluster's system before anything local is touched; a failed or refused restore
//! leaves no staging directory behind.

use std::path::Path;
use std::time::Duration;

use super::{PgError, PgSettings, RepoBootstrap, RepoClone, Result, controldata};

/// Longest a restore may take.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Restores the newest backup into `staging` and checks its system identifier.
pub(super) async fn restore_into(
    s: &PgSettings,
    rc: &RepoClone,
    staging: &Path,
    sysid: &str,
) -> Result<()> {
    let res = restore(s, rc, staging, sysid).await;
    if res.is_err()
        && staging.exists()
        && let Err(e) = std::fs::remove_dir_all(staging)
    {
        tracing::error!(error = %e, "could not remove the staging directory of a failed restore");
    }
    res
}

async fn restore(s: &PgSettings, rc: &RepoClone, staging: &Path, sysid: &str) -> Result<()> {
    if staging.exists() {
        std::fs::remove_dir_all(staging).map_err(|source| PgError::Io {
            what: "remove",
            path: staging.to_path_buf(),
            source,
        })?;
    }
    super::clone::ensure_dir(staging)?;
    tracing::info!(stanza = %rc.stanza, "restoring a replica from the pgBackRest repository");
    let pgbr = crate::backup::pgbackrest::Pgbackrest::with(
        &rc.config_file,
        &rc.stanza,
        s.superuser.password.clone(),
    );
    let args = [
        format!("--pg1-path={}", staging.display()),
        "--type=standby".to_string(),
        "--target-timeline=latest".to_string(),
    ];
    pgbr.run("restore", &args, RESTORE_TIMEOUT)
        .await
        .map_err(|e| PgError::Other(e.to_string()))?;
    let copied = controldata::read(&s.bin_dir, staging).await?;
    if copied.sysid != sysid {
        return Err(PgError::Other(format!(
            "the repository holds system {}, not {sysid} as the initialize key says: not used",
            copied.sysid
        )));
    }
    Ok(())
}

/// Settings pgBackRest's restore writes into `postgresql.auto.conf` for a targeted recovery;
/// reset once promoted, or a replica cloned later would stop at the target.
const RECOVERY_SETTINGS: &[&str] = &[
    "restore_command",
    "recovery_target",
    "recovery_target_time",
    "recovery_target_lsn",
    "recovery_target_name",
    "recovery_target_xid",
    "recovery_target_action",
    "recovery_target_inclusive",
    "recovery_target_timeline",
];

/// Restores a backup of `rb.stanza` into the (empty) data directory for a recovery to the
/// target that ends in a promotion.
pub(super) async fn restore_for_bootstrap(s: &PgSettings, rb: &RepoBootstrap) -> Result<()> {
    tracing::info!(stanza = %rb.stanza, kind = %rb.kind, target = ?rb.target, "bootstrapping from the pgBackRest repository");
    let pgbr = crate::backup::pgbackrest::Pgbackrest::with(
        &rb.config_file,
        &rb.stanza,
        s.superuser.password.clone(),
    );
    let mut args = vec![
        format!("--pg1-path={}", s.data_dir.display()),
        format!("--type={}", rb.kind),
    ];
    if let Some(t) = &rb.target {
        args.push(format!("--target={t}"));
    }
    if rb.kind != "default" {
        args.push("--target-action=promote".into());
    }
    if let Some(set) = &rb.set {
        args.push(format!("--set={set}"));
    }
    pgbr.run("restore", &args, RESTORE_TIMEOUT)
        .await
        .map_err(|e| PgError::Other(e.to_string()))?;
    Ok(())
}

/// Waits until the recovering server promoted, then resets the recovery settings.
pub(super) async fn wait_promoted(s: &PgSettings) -> Result<()> {
    let sql = |detail: String| PgError::Sql {
        what: "bootstrap from the repository",
        detail,
    };
    let target = super::session::local_config(s, Duration::from_secs(5));
    let deadline = std::time::Instant::now() + RESTORE_TIMEOUT;
    loop {
        if std::time::Instant::now() > deadline {
            return Err(PgError::Other("recovery did not end".into()));
        }
        if super::postmaster::running(&s.data_dir).is_none() {
            return Err(PgError::Other(format!(
                "PostgreSQL stopped during recovery (target not reached?); see {}",
                super::conf::server_log(&s.data_dir).display()
            )));
        }
        if let Ok(session) = super::session::Session::connect(&target).await
            && let Ok(rows) = session.rows("SELECT pg_is_in_recovery()::text").await
            && rows
                .first()
                .and_then(|r| r.first())
                .cloned()
                .flatten()
                .as_deref()
                == Some("false")
        {
            // One statement per query: ALTER SYSTEM cannot run in a transaction block.
            for k in RECOVERY_SETTINGS {
                session
                    .rows(&format!("ALTER SYSTEM RESET {k}"))
                    .await
                    .map_err(|e| sql(e.to_string()))?;
            }
            session
                .rows("SELECT pg_reload_conf()::text")
                .await
                .map_err(|e| sql(e.to_string()))?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
