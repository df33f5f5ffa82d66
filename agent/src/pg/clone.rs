//! `LocalPostgres`'s clone: a replica's data from pg_basebackup, or first a restore from
//! the pgBackRest repository (`repo_clone.rs`), made in a staging directory and swapped in.
//!
//! Invariants: a clone never starts PostgreSQL (the shell decides that), and neither touches
//! the local data nor stops the local PostgreSQL before the source has answered: the copy is
//! made in a staging directory inside the data directory and only swapped in once it is
//! complete and of the expected system, so a failed clone (leader gone, network cut) loses
//! nothing and never leaves a half-copied directory that could be mistaken for a cluster.

use super::conf;
use super::controldata;
use super::ctl::Invocation;
use super::local::LocalPostgres;
use super::{PgError, PgSettings, Result};
use crate::ha::{StopMode, Upstream};

/// The staging directory of a clone, inside the data directory.
const STAGING: &str = ".hapg-clone";

/// Creates `dir` (mode 0700) if it does not exist.
pub(super) fn ensure_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let io = |what, source| PgError::Io {
        what,
        path: dir.to_path_buf(),
        source,
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| io("create", e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io("chmod", e))?;
    }
    Ok(())
}

/// Removes a file or directory tree if it exists.
fn remove_path(p: &std::path::Path) -> Result<()> {
    let r = match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
    };
    r.map_err(|source| PgError::Io {
        what: "remove",
        path: p.to_path_buf(),
        source,
    })
}

/// Replaces the contents of `data_dir` with those of `staging` (a directory inside it).
fn swap_in(data_dir: &std::path::Path, staging: &std::path::Path) -> Result<()> {
    let io = |what, path: &std::path::Path, source| PgError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let entries = std::fs::read_dir(data_dir).map_err(|e| io("read", data_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io("read", data_dir, e))?;
        if entry.file_name() != STAGING {
            remove_path(&entry.path())?;
        }
    }
    let entries = std::fs::read_dir(staging).map_err(|e| io("read", staging, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io("read", staging, e))?;
        let to = data_dir.join(entry.file_name());
        std::fs::rename(entry.path(), &to).map_err(|e| io("move", &to, e))?;
    }
    std::fs::remove_dir(staging).map_err(|e| io("remove", staging, e))
}

/// pg_basebackup's arguments: ours first (so the user's may override them), then the user's,
/// plus a fast checkpoint unless they choose one.
pub fn basebackup_args(
    s: &PgSettings,
    upstream: &Upstream,
    target: &std::path::Path,
) -> Vec<String> {
    let mut args = vec![
        "-D".to_string(),
        target.to_string_lossy().into_owned(),
        "-h".into(),
        upstream.conn.host.clone(),
        "-p".into(),
        upstream.conn.port.to_string(),
        "-U".into(),
        s.replication.username.clone(),
        "-X".into(),
        "stream".into(),
        "--no-password".into(),
    ];
    args.extend(s.basebackup_args.iter().cloned());
    let chooses_checkpoint = s
        .basebackup_args
        .iter()
        .any(|a| a.starts_with("--checkpoint") || a.starts_with("-c"));
    if !chooses_checkpoint {
        args.push("--checkpoint=fast".into());
    }
    args
}

impl LocalPostgres {
    pub(super) async fn do_clone(&self, upstream: &Upstream, sysid: &str) -> Result<()> {
        let s = self.settings();
        ensure_dir(&s.data_dir)?;
        // Inside the data directory: the same filesystem even when the data directory is a
        // mount point, so the swap below is a rename.
        let staging = s.data_dir.join(STAGING);
        remove_path(&staging)?;
        conf::write_pgpass(&s)?;
        let method = match &s.repo_clone {
            None => "basebackup",
            Some(rc) => match super::repo_clone::restore_into(&s, rc, &staging, sysid).await {
                Ok(()) => "pgbackrest",
                Err(e) if rc.then_basebackup => {
                    tracing::warn!(error = %e, "restore from the pgBackRest repository failed: trying pg_basebackup");
                    "basebackup"
                }
                Err(e) => return Err(e),
            },
        };
        if method == "basebackup" {
            tracing::info!(host = %upstream.conn.host, port = upstream.conn.port, "pg_basebackup");
            let mut run = Invocation::new(&s.bin_dir, "pg_basebackup")
                .args(basebackup_args(&s, upstream, &staging))
                .env("PGPASSFILE", &s.pgpass)
                .env("PGAPPNAME", &s.member);
            for (k, v) in super::connparams::libpq_env(&s, &s.replication)? {
                run = run.env(k, v);
            }
            let res = run.run().await;
            if let Err(e) = res {
                // Nothing local was touched: the old data (if any) and PostgreSQL stay as they were.
                if let Err(rm) = remove_path(&staging) {
                    tracing::error!(error = %rm, "could not remove the staging directory of a failed clone");
                }
                return Err(e);
            }
            // The copy must be of the cluster `initialize` names: a leader that turned out to run
            // another system does not get its data swapped in over ours.
            let copied = controldata::read(&s.bin_dir, &staging).await;
            let copied = copied.as_ref().map(|c| c.sysid.as_str());
            if copied.ok() != Some(sysid) {
                if let Err(rm) = remove_path(&staging) {
                    tracing::error!(error = %rm, "could not remove the staging directory of a refused clone");
                }
                return Err(PgError::Other(format!(
                    "the copy from {} is of system {}, not {sysid} as the initialize key says: not used",
                    upstream.name,
                    copied.map_or_else(|e| format!("unknown ({e})"), str::to_string)
                )));
            }
        }
        // The copy is complete: only now stop the local server and swap the data in.
        self.do_stop(StopMode::Fast, true).await?;
        swap_in(&s.data_dir, &staging)?;
        tracing::info!(method, "clone done");
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ha::{ConnTarget, MemberName};

    pub(crate) fn upstream() -> Upstream {
        Upstream {
            name: MemberName::new("node2"),
            conn: ConnTarget {
                host: "10.0.0.2".into(),
                port: 5433,
            },
        }
    }

    #[test]
    fn basebackup_checkpoints_fast_unless_told_otherwise() {
        let mut s = crate::pg::conf::tests::settings();
        let args = basebackup_args(&s, &upstream(), &s.data_dir);
        assert_eq!(args.last().map(String::as_str), Some("--checkpoint=fast"));
        assert!(args.windows(2).any(|w| w == ["-U", "replicator"]));
        assert!(args.windows(2).any(|w| w == ["-X", "stream"]));
        s.basebackup_args = vec!["--checkpoint=spread".into(), "--max-rate=100M".into()];
        let args = basebackup_args(&s, &upstream(), &s.data_dir);
        assert!(!args.contains(&"--checkpoint=fast".to_string()));
        assert_eq!(args.last().map(String::as_str), Some("--max-rate=100M"));
    }
}
