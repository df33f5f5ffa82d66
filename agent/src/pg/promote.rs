//! `LocalPostgres`'s promotion: end recovery and wait for it, then the new timeline, its
//! history file and a checkpoint.
//!
//! Invariants: promotion is followed by a CHECKPOINT so that `pg_control` (which pg_rewind
//! reads on this node as a source) shows the new timeline.

use std::fs;
use std::time::{Duration, Instant};

use super::callbacks::CallbackAction;
use super::ctl::Invocation;
use super::lifecycle::CHECKPOINT_LIMIT;
use super::local::{LocalPostgres, lock};
use super::query::{self, Session};
use super::{PgError, Promoted, Result};
use crate::ha::PgRole;

/// `pg_promote(wait => true, wait_seconds => 60)`.
const PROMOTE_WAIT_SECS: u64 = 60;

/// The timeline of a primary's current WAL position.
pub(super) const TIMELINE_SQL: &str = "SELECT ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name(\
    pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int";

/// Parses a timeline history file: `tli<TAB>X/Y<TAB>reason` lines.
pub fn parse_history(text: &str) -> Vec<(u32, u64, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let mut parts = line.splitn(3, ['\t', ' ']);
            let tli = parts.next()?.trim().parse().ok()?;
            let lsn = crate::ha::Lsn::parse(parts.next()?.trim())?;
            let reason = parts.next().unwrap_or("").trim().to_string();
            Some((tli, lsn.0, reason))
        })
        .collect()
}

impl LocalPostgres {
    pub(super) async fn do_promote(&self) -> Result<()> {
        let s = self.settings();
        // pg_promote(wait => true) checks for the end of recovery only every 100 ms; signal
        // the promotion and poll ourselves every 5 ms instead: a switchover is that much shorter.
        // The agent's kept session: no new connection on the critical path.
        let signalled = self
            .shared_query(
                "SELECT pg_catalog.pg_promote(false)",
                Duration::from_secs(10),
            )
            .await
            .map_err(|f| PgError::Sql {
                what: "promote",
                detail: f.to_string(),
            });
        let waited = match signalled {
            Ok(rows) if first_is(&rows, "t") => self.wait_out_of_recovery().await,
            Ok(_) => Err(PgError::Sql {
                what: "promote",
                detail: "pg_promote() refused to signal the promotion".into(),
            }),
            Err(e) => Err(e),
        };
        match waited {
            Ok(()) => {}
            Err(e @ PgError::Timeout { .. }) => return Err(e),
            Err(PgError::Sql { detail, .. }) if detail.contains("recovery is not in progress") => {
                return Err(PgError::Sql {
                    what: "promote",
                    detail,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "pg_promote() failed; trying pg_ctl promote");
                Invocation::new(&s.bin_dir, "pg_ctl")
                    .args(["promote", "-w", "-t", &PROMOTE_WAIT_SECS.to_string(), "-D"])
                    .arg(&s.data_dir)
                    .run()
                    .await?;
            }
        }
        *lock(&self.upstream) = None;
        tracing::info!("promoted");
        Ok(())
    }

    /// Polls `pg_is_in_recovery()` on one session until it is false (at most
    /// `PROMOTE_WAIT_SECS`). A promotion not finished after a second is signalled again every
    /// second: one development run saw PostgreSQL 15 stay in recovery after "received promote
    /// request" when a configuration reload had reached it 3 ms before; a second signal is
    /// harmless (the postmaster removes a leftover signal file at its next start, and
    /// `pg_promote` refuses once recovery has ended).
    async fn wait_out_of_recovery(&self) -> Result<()> {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(PROMOTE_WAIT_SECS);
        let mut resignalled = 0u64;
        loop {
            let waited = start.elapsed().as_secs();
            if waited > resignalled {
                resignalled = waited;
                tracing::warn!(
                    waited_s = waited,
                    "promotion not finished; signalling it again"
                );
                let _ = self
                    .shared_query(
                        "SELECT pg_catalog.pg_promote(false)",
                        Duration::from_secs(5),
                    )
                    .await;
            }
            let rows = self
                .shared_query(
                    "SELECT pg_catalog.pg_is_in_recovery()",
                    Duration::from_secs(5),
                )
                .await
                .map_err(|f| PgError::Sql {
                    what: "waiting for the promotion",
                    detail: f.to_string(),
                })?;
            if first_is(&rows, "f") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(PgError::Timeout {
                    what: "promotion",
                    secs: PROMOTE_WAIT_SECS,
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Promotion, then the new timeline, its history and a checkpoint.
    pub(super) async fn promote_and_describe(&self) -> Result<Promoted> {
        self.do_promote().await?;
        self.fire_callback(CallbackAction::OnRoleChange, PgRole::Primary);
        let s = self.settings();
        let rows = self
            .shared_query(TIMELINE_SQL, Duration::from_secs(10))
            .await
            .map_err(|f| PgError::Sql {
                what: "timeline after promotion",
                detail: f.to_string(),
            })?;
        let timeline: u32 = rows
            .first()
            .and_then(|r| r.first())
            .and_then(|c| c.as_deref())
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| PgError::Other("no timeline after promotion".into()))?;
        let path = s.data_dir.join(format!("pg_wal/{timeline:08X}.history"));
        let history = match fs::read_to_string(&path) {
            Ok(text) => parse_history(&text),
            Err(e) if timeline == 1 && e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(PgError::Io {
                    what: "read",
                    path,
                    source,
                });
            }
        };
        // The control file names the new timeline only after a checkpoint, and pg_rewind
        // reads it from the source: checkpoint now, in the background, so the new primary
        // takes writes (and health checks turn green) without waiting for it.
        let cfg = query::local_config(&s, Duration::from_secs(5));
        tokio::spawn(async move {
            let run = async {
                let session = Session::connect(&cfg)
                    .await
                    .map_err(|e| query::error_chain(&e))?;
                session
                    .rows("CHECKPOINT")
                    .await
                    .map_err(|e| query::error_chain(&e))
            };
            match tokio::time::timeout(CHECKPOINT_LIMIT, run).await {
                Ok(Ok(_)) => tracing::debug!("checkpoint after promotion done"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "checkpoint after promotion failed")
                }
                Err(_) => tracing::warn!("checkpoint after promotion timed out"),
            }
        });
        tracing::info!(timeline, "new timeline");
        Ok(Promoted { timeline, history })
    }
}

/// The first column of the first row equals `want`.
fn first_is(rows: &[Vec<Option<String>>], want: &str) -> bool {
    rows.first()
        .and_then(|r| r.first())
        .and_then(|c| c.as_deref())
        == Some(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_files_are_parsed() {
        let text = "1\t0/3000060\tno recovery target specified\n\n\
                    2\t0/5000000\tbefore 2026-01-01\n";
        assert_eq!(
            parse_history(text),
            vec![
                (1, 0x3000060, "no recovery target specified".into()),
                (2, 0x5000000, "before 2026-01-01".into())
            ]
        );
    }
}
