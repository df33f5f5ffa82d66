//! `LocalPostgres`'s replication work: follow (re-point a replica), clone (pg_basebackup, or
//! first a restore from the pgBackRest repository: `repo_clone.rs`),
//! rewind (pg_rewind, with crash recovery first), replication slots, and reload.
//!
//! Invariants: clone and rewind never start PostgreSQL (the shell decides that); neither
//! touches the local data or stops the local PostgreSQL before the source has answered: a
//! clone is made in a staging directory inside the data directory and only swapped in once
//! pg_basebackup succeeded, so a failed clone (leader gone, network cut) loses nothing; a
//! failed clone never leaves a half-copied directory that could be mistaken for a cluster;
//! pg_rewind only ever runs on a cleanly shut down directory and against a source whose
//! `pg_control` already shows its current timeline; slot changes run only on a primary, and
//! an unchanged set of slots costs one query.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::callbacks::CallbackAction;
use super::conf::{self, conninfo_value};
use super::controldata;
use super::ctl::Invocation;
use super::local::{LocalPostgres, lock};
use super::postmaster;
use super::promote::TIMELINE_SQL;
use super::query::{self, Failure, Session, quote_literal};
use super::{GucValue, PgError, PgSettings, Result, slot_name};
use crate::ha::slots::{IgnoreSlot, SlotInfo, SlotKind, ignored};
use crate::ha::{MemberName, PgRole, StartAs, StopMode, Upstream};

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

/// Bound of the short statements here (reload, slot changes).
const SHORT: Duration = Duration::from_secs(5);

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

/// The connection string pg_rewind uses towards `upstream` (password from the pgpass file).
pub fn rewind_source(s: &PgSettings, upstream: &Upstream) -> String {
    let user = &s.rewind.as_ref().unwrap_or(&s.superuser).username;
    format!(
        "host={} port={} user={} dbname=postgres",
        conninfo_value(&upstream.conn.host),
        upstream.conn.port,
        conninfo_value(user)
    )
}

/// What to change so that the physical slots are exactly `want`: (create, drop). Active
/// slots are never dropped.
pub fn slot_changes(
    want: &BTreeSet<String>,
    existing: &BTreeMap<String, bool>,
    ignore: &[IgnoreSlot],
) -> (Vec<String>, Vec<String>) {
    let create = want
        .iter()
        .filter(|w| !existing.contains_key(*w))
        .cloned()
        .collect();
    let drop = existing
        .iter()
        .filter(|(name, active)| !want.contains(*name) && !**active)
        .filter(|(name, _)| {
            let slot = SlotInfo {
                name,
                kind: SlotKind::Physical,
                database: None,
                plugin: None,
            };
            !ignored(ignore, &slot)
        })
        .map(|(name, _)| name.clone())
        .collect();
    (create, drop)
}

impl LocalPostgres {
    pub(super) async fn do_follow(&self, upstream: Option<&Upstream>) -> Result<()> {
        self.clear_sync_names();
        let s = self.settings();
        let role = StartAs::Replica {
            upstream: upstream.cloned(),
        };
        conf::write_pgpass(&s)?;
        conf::write_postgresql_conf(&s, &role)?;
        *lock(&self.upstream) = upstream.cloned();
        if postmaster::running(&s.data_dir).is_some() {
            self.reload_conf().await?;
        }
        Ok(())
    }

    /// `pg_reload_conf()` over the shared session.
    pub(super) async fn reload_conf(&self) -> Result<()> {
        self.shared_query("SELECT pg_catalog.pg_reload_conf()", SHORT)
            .await
            .map(|_| ())
            .map_err(|f| PgError::Sql {
                what: "pg_reload_conf()",
                detail: f.to_string(),
            })
    }

    /// `synchronous_standby_names = value` in `postgresql.conf`, then a reload (no callback:
    /// this is the leader's own bookkeeping, not a configuration change).
    ///
    /// Nothing is written or reloaded when the configuration already says `value` (absent
    /// means empty): a reload right before a promotion was seen to leave PostgreSQL 15 stuck
    /// in recovery after "received promote request" (switchover in sync mode), and a replica
    /// about to promote usually already has the empty value.
    pub(super) async fn do_set_sync_names(&self, value: &str) -> Result<()> {
        let current = match self.settings().parameters.get(super::local::SYNC_NAMES) {
            Some(GucValue::Str(v)) => v.clone(),
            Some(other) => other.to_plain(),
            None => String::new(),
        };
        if current == value {
            return Ok(());
        }
        let mut parameters = self.settings().parameters.clone();
        parameters.insert(
            super::local::SYNC_NAMES.into(),
            GucValue::Str(value.to_string()),
        );
        self.set_parameters(parameters);
        let s = self.settings();
        conf::write_postgresql_conf(&s, &self.configured_role(&s))?;
        if postmaster::running(&s.data_dir).is_some() {
            self.reload_conf().await?;
        }
        Ok(())
    }

    pub(super) async fn do_reload(&self, parameters: BTreeMap<String, GucValue>) -> Result<()> {
        self.set_parameters(parameters);
        let s = self.settings();
        let role = self.configured_role(&s);
        conf::write_postgresql_conf(&s, &role)?;
        if postmaster::running(&s.data_dir).is_some() {
            self.reload_conf().await?;
            let pg_role = match role {
                StartAs::Primary => PgRole::Primary,
                StartAs::Replica { .. } => PgRole::Replica,
            };
            self.fire_callback(CallbackAction::OnReload, pg_role);
        }
        Ok(())
    }

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

    pub(super) async fn do_rewind(&self, upstream: &Upstream) -> Result<()> {
        let s = self.settings();
        // The source first: when the leader cannot be reached, the local server keeps running
        // untouched (a replica that merely lost its leader must not be stopped for nothing).
        self.ensure_source_checkpoint(&s, upstream).await?;
        self.do_stop(StopMode::Fast, true).await?;
        let state = controldata::read(&s.bin_dir, &s.data_dir).await?;
        if !controldata::is_clean(state.control_state) {
            self.crash_recovery(&s).await?;
        }
        conf::write_pgpass(&s)?;
        tracing::info!(host = %upstream.conn.host, port = upstream.conn.port, "pg_rewind");
        let mut run = Invocation::new(&s.bin_dir, "pg_rewind")
            .arg(format!("--target-pgdata={}", s.data_dir.display()))
            .arg(format!("--source-server={}", rewind_source(&s, upstream)))
            .env("PGPASSFILE", &s.pgpass)
            .env("PGOPTIONS", "-c statement_timeout=0")
            .c_locale();
        for (k, v) in super::connparams::libpq_env(&s, s.rewind.as_ref().unwrap_or(&s.superuser))? {
            run = run.env(k, v);
        }
        let out = run.run().await?;
        if out.contains("no rewind required") {
            tracing::info!("pg_rewind: no rewind required");
        } else {
            tracing::info!(output = %super::ctl::tail(&out, 5), "rewind done");
        }
        Ok(())
    }

    /// Crash recovery in single-user mode, as Patroni does before pg_rewind: without
    /// `standby.signal`, archiving on but never succeeding, so the WAL it would archive
    /// stays marked `.ready`.
    async fn crash_recovery(&self, s: &PgSettings) -> Result<()> {
        tracing::info!("unclean shutdown: crash recovery in single-user mode before pg_rewind");
        conf::set_standby_signal(&s.data_dir, false)?;
        Invocation::new(&s.bin_dir, "postgres")
            .arg("--single")
            .arg("-D")
            .arg(&s.data_dir)
            .args([
                "-c",
                "archive_mode=on",
                "-c",
                "archive_command=false",
                "template1",
            ])
            .run()
            .await?;
        let after = controldata::read(&s.bin_dir, &s.data_dir).await?;
        if !controldata::is_clean(after.control_state) {
            return Err(PgError::Other(format!(
                "crash recovery left the cluster {:?}",
                after.control_state
            )));
        }
        Ok(())
    }

    /// pg_rewind reads the source's `pg_control`; right after a promotion it may still name
    /// the old timeline until the first checkpoint, and pg_rewind would then wrongly find
    /// nothing to do. Checkpoint the source if we may, else refuse for now.
    async fn ensure_source_checkpoint(&self, s: &PgSettings, upstream: &Upstream) -> Result<()> {
        let who = s.rewind.as_ref().unwrap_or(&s.superuser);
        let is_superuser = who.username == s.superuser.username;
        let cfg = query::remote_config(&upstream.conn.host, upstream.conn.port, who, SHORT);
        fn sql_err<E: std::error::Error + 'static>(e: E) -> PgError {
            PgError::Sql {
                what: "checking the rewind source",
                detail: query::error_chain(&e),
            }
        }
        let work = async {
            let session = Session::connect(&cfg).await.map_err(sql_err)?;
            let sql = format!(
                "SELECT (pg_catalog.pg_control_checkpoint()).timeline_id, \
                 CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL ELSE ({TIMELINE_SQL}) END"
            );
            let rows = match session.rows(&sql).await {
                Ok(rows) => rows,
                Err(e) if e.as_db_error().is_some() => {
                    // A rewind role may lack the rights; pg_rewind itself will still check.
                    tracing::warn!(error = %query::error_chain(&e), "cannot check the source's checkpoint");
                    return Ok(());
                }
                Err(e) => return Err(sql_err(e)),
            };
            let row = rows.first().cloned().unwrap_or_default();
            let col = |i: usize| row.get(i).cloned().flatten();
            let (Some(checkpoint), Some(current)) = (col(0), col(1)) else {
                return Ok(());
            };
            if checkpoint == current {
                return Ok(());
            }
            if !is_superuser {
                return Err(PgError::Other(format!(
                    "{} has not checkpointed since its promotion (pg_control timeline {checkpoint}, \
                     current {current}); rewind later",
                    upstream.name
                )));
            }
            tracing::info!("checkpoint on the rewind source first");
            session.rows("CHECKPOINT").await.map_err(sql_err)?;
            Ok(())
        };
        tokio::time::timeout(Duration::from_secs(120), work)
            .await
            .unwrap_or(Err(PgError::Timeout {
                what: "checkpoint on the rewind source",
                secs: 120,
            }))
    }

    pub(super) async fn do_sync_slots(
        &self,
        members: &[MemberName],
        ignore: &[IgnoreSlot],
    ) -> Result<()> {
        let s = self.settings();
        let want: BTreeSet<String> = members
            .iter()
            .filter(|m| m.as_str() != s.member)
            .map(|m| slot_name(m.as_str()))
            .collect();
        let sql_err = |f: Failure| PgError::Sql {
            what: "replication slots",
            detail: f.to_string(),
        };
        let rows = self
            .shared_query(
                "SELECT pg_catalog.pg_is_in_recovery(), s.slot_name, s.active \
                 FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_replication_slots s \
                 ON s.slot_type = 'physical'",
                SHORT,
            )
            .await
            .map_err(sql_err)?;
        if rows
            .first()
            .and_then(|r| r.first())
            .cloned()
            .flatten()
            .as_deref()
            != Some("f")
        {
            return Ok(()); // a replica keeps no slots for others
        }
        let existing: BTreeMap<String, bool> = rows
            .iter()
            .filter_map(|r| {
                let name = r.get(1).cloned().flatten()?;
                Some((name, r.get(2).cloned().flatten().as_deref() == Some("t")))
            })
            .collect();
        let (create, drop) = slot_changes(&want, &existing, ignore);
        for name in create {
            tracing::info!(slot = %name, "creating replication slot");
            self.shared_query(
                &format!(
                    "SELECT pg_catalog.pg_create_physical_replication_slot({}, true)",
                    quote_literal(&name)
                ),
                SHORT,
            )
            .await
            .map_err(sql_err)?;
        }
        for name in drop {
            tracing::info!(slot = %name, "dropping replication slot");
            self.shared_query(
                &format!(
                    "SELECT pg_catalog.pg_drop_replication_slot(slot_name) \
                     FROM pg_catalog.pg_replication_slots WHERE slot_name = {} AND NOT active",
                    quote_literal(&name)
                ),
                SHORT,
            )
            .await
            .map_err(sql_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::ConnTarget;

    fn upstream() -> Upstream {
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

    #[test]
    fn rewind_connects_as_the_rewind_user_or_superuser() {
        let mut s = crate::pg::conf::tests::settings();
        assert_eq!(
            rewind_source(&s, &upstream()),
            "host=10.0.0.2 port=5433 user=postgres dbname=postgres"
        );
        s.rewind = Some(crate::pg::Credentials {
            username: "rewind user".into(),
            password: None,
            ..Default::default()
        });
        assert_eq!(
            rewind_source(&s, &upstream()),
            "host=10.0.0.2 port=5433 user='rewind user' dbname=postgres"
        );
    }

    #[test]
    fn slots_are_created_and_inactive_strangers_dropped() {
        let want: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        let existing = BTreeMap::from([
            ("b".to_string(), true),
            ("old".to_string(), false),
            ("busy".to_string(), true),
        ]);
        assert_eq!(
            slot_changes(&want, &existing, &[]),
            (vec!["a".to_string()], vec!["old".to_string()])
        );
        let same = BTreeMap::from([("a".to_string(), false), ("b".to_string(), true)]);
        assert_eq!(slot_changes(&want, &same, &[]), (vec![], vec![]));
    }

    #[test]
    fn ignore_slots_keeps_an_inactive_stranger() {
        let want: BTreeSet<String> = ["a".to_string()].into();
        let existing =
            BTreeMap::from([("archiver".to_string(), false), ("old".to_string(), false)]);
        let keep = IgnoreSlot {
            name: Some("archiver".into()),
            ..IgnoreSlot::default()
        };
        assert_eq!(
            slot_changes(&want, &existing, &[keep]),
            (vec!["a".to_string()], vec!["old".to_string()])
        );
    }
}
