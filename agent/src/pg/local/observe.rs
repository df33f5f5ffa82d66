//! `LocalPostgres`'s observation behind `status()`: the data directory, pg_controldata when
//! no postmaster runs, else one status query on the persistent session.
//!
//! Invariants: never fails (a PostgreSQL that does not answer is `PgState::Unknown`); while
//! a postmaster runs it spawns no process; a problem is logged once per change.

use super::{LocalPostgres, STATUS_BUDGET, has_data, lock};
use crate::ha::{PgState, StoppedPg};
use crate::pg::query::{self, Failure};
use crate::pg::{PgDetails, PgSettings, PgStatus, Result, controldata, postmaster};

impl LocalPostgres {
    /// Logs a problem at warn when it differs from the last one; `None` clears it.
    pub(super) fn note_problem(&self, problem: Option<String>) {
        let mut last = lock(&self.last_problem);
        if *last == problem {
            return;
        }
        match &problem {
            Some(p) => tracing::warn!(problem = %p, "postgresql did not answer"),
            None => tracing::info!("postgresql answers again"),
        }
        *last = problem;
    }

    /// `pg_controldata`, re-run only when `global/pg_control` changed.
    async fn stopped_state(&self, s: &PgSettings) -> Result<StoppedPg> {
        let mtime = std::fs::metadata(s.data_dir.join("global/pg_control"))
            .and_then(|m| m.modified())
            .ok();
        if let (Some(t), Some((cached_t, cached))) = (mtime, lock(&self.stopped_cache).as_ref())
            && t == *cached_t
        {
            return Ok(cached.clone());
        }
        let state = controldata::read(&s.bin_dir, &s.data_dir).await?;
        if let Some(t) = mtime {
            *lock(&self.stopped_cache) = Some((t, state.clone()));
        }
        Ok(state)
    }

    /// The observation behind `status()`, with the postmaster's pid when one runs.
    pub(super) async fn observe(&self) -> PgStatus {
        let pid = postmaster::running(&self.settings().data_dir).map(|p| p.pid);
        let mut st = self.observe_state(pid.is_some()).await;
        st.details.postmaster_pid = pid;
        st
    }

    async fn observe_state(&self, postmaster_runs: bool) -> PgStatus {
        let s = self.settings();
        let plain = |state| PgStatus {
            state,
            details: PgDetails::default(),
        };
        if !has_data(&s.data_dir) {
            self.forget_session();
            self.note_problem(None);
            return plain(PgState::NoData);
        }
        if !postmaster_runs {
            self.forget_session();
            return match self.stopped_state(&s).await {
                Ok(st) => {
                    self.note_problem(None);
                    plain(PgState::Stopped(st))
                }
                Err(e) => {
                    self.note_problem(Some(format!("pg_controldata: {e}")));
                    plain(PgState::Unknown)
                }
            };
        }
        match self.shared_query(query::STATUS_SQL, STATUS_BUDGET).await {
            Ok(rows) => match rows.first().map(|r| query::interpret(r)) {
                Some(Ok((running, details))) => {
                    self.note_problem(None);
                    PgStatus {
                        state: PgState::Running(running),
                        details,
                    }
                }
                Some(Err(why)) => {
                    self.note_problem(Some(format!("unexpected status row: {why}")));
                    plain(PgState::Unknown)
                }
                None => {
                    self.note_problem(Some("status query returned no row".into()));
                    plain(PgState::Unknown)
                }
            },
            Err(Failure::Starting(why)) => {
                tracing::debug!(%why, "postgresql is starting");
                plain(PgState::Starting)
            }
            Err(Failure::Unknown(why)) => {
                self.note_problem(Some(why));
                plain(PgState::Unknown)
            }
        }
    }
}

impl LocalPostgres {
    /// A streaming replica's timeline is remembered; a replica that stopped streaming reports
    /// at least that timeline (never the stale checkpoint timeline, which would make it look
    /// diverged from its own leader).
    pub(super) fn remember_timeline(&self, st: &mut PgStatus) {
        use std::sync::atomic::Ordering;
        let PgState::Running(r) = &mut st.state else {
            return;
        };
        if r.role != crate::ha::PgRole::Replica {
            return;
        }
        if r.streaming {
            self.streamed_timeline.store(r.timeline, Ordering::Relaxed);
        } else {
            r.timeline = r
                .timeline
                .max(self.streamed_timeline.load(Ordering::Relaxed));
        }
    }
}
