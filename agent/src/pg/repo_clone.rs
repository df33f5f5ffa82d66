//! `create_replica_methods: [pgbackrest, ...]`: a new replica restored from the pgBackRest
//! repository instead of copied from the leader with pg_basebackup (Patroni's `pgbackrest`
//! method, with hapg's own `backup` section as the repository).
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

use super::{PgError, PgSettings, RepoClone, Result, controldata};

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
    super::replication::ensure_dir(staging)?;
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
