//! `LocalPostgres`'s SQL: the persistent session that `status()` and short statements share,
//! and own connections for statements that may take long.
//!
//! Invariants: everything runs under the caller's time bound; a connection-level failure or
//! a timeout drops the persistent session (its task aborted), and the next call reconnects.

use std::time::Duration;

use super::{LocalPostgres, Rows};
use crate::pg::query::{self, Failure, Session};
use crate::pg::{PgError, Result};

impl LocalPostgres {
    /// Drops the persistent session (before a stop, after a failure).
    pub(in crate::pg) async fn drop_session(&self) {
        self.session.lock().await.take();
    }

    /// Drops the persistent session unless someone is using it (never waits: `status()`
    /// must stay bounded).
    pub(super) fn forget_session(&self) {
        if let Ok(mut guard) = self.session.try_lock() {
            guard.take();
        }
    }

    /// Runs `sql` on the persistent session (connecting first if needed), all within
    /// `budget`. Connection-level failures drop the session.
    pub(in crate::pg) async fn shared_query(
        &self,
        sql: &str,
        budget: Duration,
    ) -> std::result::Result<Rows, Failure> {
        let settings = self.settings();
        let work = async {
            let mut guard = self.session.lock().await;
            // A kept session may have died since (server restarted, backend terminated):
            // then one retry on a fresh connection, so a restart is not reported as Unknown.
            let mut kept = guard.take().filter(|s| !s.is_closed());
            loop {
                let reused = kept.is_some();
                let session = match kept.take() {
                    Some(s) => s,
                    None => Session::connect(&query::local_config(&settings, budget))
                        .await
                        .map_err(|e| query::classify_connect(&e))?,
                };
                match session.rows(sql).await {
                    Ok(rows) => {
                        *guard = Some(session);
                        return Ok(rows);
                    }
                    Err(e) => {
                        // An SQL error leaves a healthy connection; anything else does not.
                        let healthy = e.as_db_error().is_some() && !session.is_closed();
                        if healthy {
                            *guard = Some(session);
                        } else if reused {
                            tracing::debug!(error = %query::error_chain(&e), "reconnecting");
                            continue;
                        }
                        return Err(query::classify(&e));
                    }
                }
            }
        };
        // On timeout the session, taken out of the slot, is dropped with the future.
        tokio::time::timeout(budget, work)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Unknown(format!(
                    "no answer within {} ms",
                    budget.as_millis()
                )))
            })
    }

    /// Runs `sql` on a connection of its own (for statements that may take long).
    pub(in crate::pg) async fn own_query(&self, sql: &str, limit: Duration) -> Result<Rows> {
        let settings = self.settings();
        let work = async {
            let session = Session::connect(&query::local_config(&settings, Duration::from_secs(5)))
                .await
                .map_err(|e| query::error_chain(&e))?;
            session.rows(sql).await.map_err(|e| query::error_chain(&e))
        };
        match tokio::time::timeout(limit, work).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(detail)) => Err(PgError::Sql {
                what: "query",
                detail,
            }),
            Err(_) => Err(PgError::Timeout {
                what: "query",
                secs: limit.as_secs(),
            }),
        }
    }
}
