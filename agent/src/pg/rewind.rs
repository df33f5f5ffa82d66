//! `LocalPostgres`'s rewind: pg_rewind from the leader, with crash recovery first when the
//! local server was not shut down cleanly.
//!
//! Invariants: a rewind never starts PostgreSQL (the shell decides that) and does not stop
//! the local PostgreSQL before the source has answered; pg_rewind only ever runs on a
//! cleanly shut down directory and against a source whose `pg_control` already shows its
//! current timeline.

use std::time::Duration;

use super::conf::{self, conninfo_value};
use super::controldata;
use super::ctl::Invocation;
use super::local::LocalPostgres;
use super::promote::TIMELINE_SQL;
use super::query::{self, Session};
use super::replication::SHORT;
use super::{PgError, PgSettings, Result};
use crate::ha::{StopMode, Upstream};

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

impl LocalPostgres {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::clone::tests::upstream;

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
}
