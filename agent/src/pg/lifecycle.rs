//! `LocalPostgres`'s lifecycle: start, stop and restart. Bootstrap is in `bootstrap.rs`,
//! promotion in `promote.rs`.
//!
//! Invariants: configuration files are rewritten before every start; `start` of a running
//! server and `stop` of a stopped one are no-ops.

use std::path::Path;
use std::time::{Duration, Instant};

use super::callbacks::CallbackAction;
use super::conf;
use super::ctl::{self, Invocation};
use super::local::{LocalPostgres, has_data, lock};
use super::postmaster;
use super::{PgError, Result};
use crate::ha::{PgRole, StartAs, StopMode};

/// pg_ctl's wait for start and stop, seconds.
const PG_CTL_WAIT_SECS: u64 = 60;
/// How long a started primary may take to let us log in after pg_ctl says it is up.
const LOGIN_WAIT: Duration = Duration::from_secs(30);
/// Bound of a CHECKPOINT before a graceful stop or after promotion.
pub(super) const CHECKPOINT_LIMIT: Duration = Duration::from_secs(60);

/// Appends the server log's tail to a failed program's output.
fn with_log_tail(err: PgError, log: &Path) -> PgError {
    match err {
        PgError::Command {
            program,
            status,
            output,
        } => PgError::Command {
            program,
            status,
            output: format!(
                "{output}\n--- {}:\n{}",
                log.display(),
                ctl::log_tail(log, 20)
            ),
        },
        other => other,
    }
}

impl LocalPostgres {
    pub(super) async fn do_start(&self, role: &StartAs, fire: bool) -> Result<()> {
        if matches!(role, StartAs::Replica { .. }) {
            self.clear_sync_names();
        }
        let s = self.settings();
        if postmaster::running(&s.data_dir).is_some() {
            tracing::info!("postgresql already runs; not starting it again");
            return Ok(());
        }
        if !has_data(&s.data_dir) {
            return Err(PgError::Other(format!(
                "no cluster in {} to start",
                s.data_dir.display()
            )));
        }
        conf::write_for_start(&s, role)?;
        *lock(&self.upstream) = match role {
            StartAs::Primary => None,
            StartAs::Replica { upstream } => upstream.clone(),
        };
        self.drop_session().await;
        // Always `-l`: without it the postmaster would inherit pg_ctl's stdout (our pipe) and
        // capturing pg_ctl's output would never end. With `logging_collector` on, the file
        // only gets the lines written before the collector takes over.
        let log = conf::server_log(&s.data_dir);
        let started = Invocation::new(&s.bin_dir, "pg_ctl")
            .args(["start", "-w", "-t", &PG_CTL_WAIT_SECS.to_string(), "-D"])
            .arg(&s.data_dir)
            .arg("-l")
            .arg(&log)
            .run()
            .await;
        let pg_role = match role {
            StartAs::Primary => PgRole::Primary,
            StartAs::Replica { .. } => PgRole::Replica,
        };
        match (started, pg_role) {
            (Ok(_), _) => {}
            // A replica that cannot reach consistency yet is still "up" for our purposes.
            (Err(e), PgRole::Replica) if postmaster::running(&s.data_dir).is_some() => {
                tracing::info!(error = %e, "replica runs but does not accept connections yet");
            }
            (Err(e), _) => return Err(with_log_tail(e, &log)),
        }
        if pg_role == PgRole::Primary {
            self.wait_for_login(LOGIN_WAIT).await?;
        }
        tracing::info!(role = %pg_role, "postgresql started");
        if fire {
            self.fire_callback(CallbackAction::OnStart, pg_role);
        }
        Ok(())
    }

    /// Polls until we can log in and run a statement.
    async fn wait_for_login(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let err = match self.shared_query("SELECT 1", Duration::from_secs(2)).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(PgError::Other(format!(
                    "postgresql started but does not let us in: {err}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(super) async fn do_stop(&self, mode: StopMode, fire: bool) -> Result<()> {
        let s = self.settings();
        // What the data directory holds may change before the next start (rewind, clone).
        self.streamed_timeline
            .store(0, std::sync::atomic::Ordering::Relaxed);
        if postmaster::running(&s.data_dir).is_none() {
            return Ok(());
        }
        let role = match self.configured_role(&s) {
            StartAs::Primary => PgRole::Primary,
            StartAs::Replica { .. } => PgRole::Replica,
        };
        if mode == StopMode::Graceful
            && let Err(e) = self.own_query("CHECKPOINT", CHECKPOINT_LIMIT).await
        {
            tracing::warn!(error = %e, "checkpoint before stopping failed; stopping anyway");
        }
        self.drop_session().await;
        let m = if mode == StopMode::Immediate {
            "immediate"
        } else {
            "fast"
        };
        let wait = PG_CTL_WAIT_SECS.to_string();
        let stopped = Invocation::new(&s.bin_dir, "pg_ctl")
            .args(["stop", "-m", m, "-w", "-t", &wait, "-D"])
            .arg(&s.data_dir)
            .run()
            .await;
        // It may have gone away by itself meanwhile; that is a stop too.
        if let Err(e) = stopped
            && postmaster::running(&s.data_dir).is_some()
        {
            return Err(with_log_tail(e, &conf::server_log(&s.data_dir)));
        }
        tracing::info!(mode = m, "postgresql stopped");
        if fire {
            self.fire_callback(CallbackAction::OnStop, role);
        }
        Ok(())
    }

    pub(super) async fn do_restart(&self, role: &StartAs) -> Result<()> {
        self.do_stop(StopMode::Fast, false).await?;
        self.do_start(role, false).await?;
        let pg_role = match role {
            StartAs::Primary => PgRole::Primary,
            StartAs::Replica { .. } => PgRole::Replica,
        };
        self.fire_callback(CallbackAction::OnRestart, pg_role);
        Ok(())
    }
}
