//! `LocalPostgres`'s lifecycle: bootstrap (initdb and roles), start, stop, restart, promote.
//!
//! Invariants: configuration files are rewritten before every start; `start` of a running
//! server and `stop` of a stopped one are no-ops; a failed bootstrap leaves no server
//! running and an empty data directory behind; promotion is followed by a CHECKPOINT so that
//! `pg_control` (which pg_rewind reads on this node as a source) shows the new timeline.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use super::callbacks::CallbackAction;
use super::conf;
use super::ctl::{self, Invocation};
use super::local::{LocalPostgres, has_data, lock};
use super::postmaster;
use super::query::{self, Session, quote_ident, quote_literal};
use super::{PgError, PgSettings, Promoted, Result};
use crate::ha::{PgRole, StartAs, StopMode};

/// pg_ctl's wait for start and stop, seconds.
const PG_CTL_WAIT_SECS: u64 = 60;
/// How long a started primary may take to let us log in after pg_ctl says it is up.
const LOGIN_WAIT: Duration = Duration::from_secs(30);
/// Bound of a CHECKPOINT before a graceful stop or after promotion.
const CHECKPOINT_LIMIT: Duration = Duration::from_secs(60);
/// `pg_promote(wait => true, wait_seconds => 60)`.
const PROMOTE_WAIT_SECS: u64 = 60;

/// The timeline of a primary's current WAL position.
pub(super) const TIMELINE_SQL: &str = "SELECT ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name(\
    pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int";

/// Creates `dir` (mode 0700) if needed and removes everything in it.
pub(super) fn empty_data_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let io = |what, source| PgError::Io {
        what,
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(|e| io("create", e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| io("chmod", e))?;
    for entry in fs::read_dir(dir).map_err(|e| io("list", e))? {
        let path = entry.map_err(|e| io("list", e))?.path();
        let res = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        res.map_err(|source| PgError::Io {
            what: "remove",
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

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
    pub(super) async fn do_bootstrap(&self) -> Result<()> {
        let s = self.settings();
        if has_data(&s.data_dir) {
            return Err(PgError::Other(format!(
                "{} already holds a cluster; not running initdb",
                s.data_dir.display()
            )));
        }
        empty_data_dir(&s.data_dir)?;
        match self.bootstrap_steps(&s).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "bootstrap failed; removing the new cluster");
                if postmaster::running(&s.data_dir).is_some()
                    && let Err(stop) = self.do_stop(StopMode::Immediate, false).await
                {
                    tracing::error!(error = %stop, "could not stop the half-bootstrapped server");
                }
                if let Err(rm) = empty_data_dir(&s.data_dir) {
                    tracing::error!(error = %rm, "could not empty the data directory");
                }
                Err(e)
            }
        }
    }

    async fn bootstrap_steps(&self, s: &PgSettings) -> Result<()> {
        if let Some(rb) = &s.repo_bootstrap {
            super::repo_clone::restore_for_bootstrap(s, rb).await?;
            // recovery.signal (pgBackRest's) stays: PostgreSQL recovers to the target, then
            // promotes; the roles are made once it accepts writes.
            self.do_start(&StartAs::Primary, true).await?;
            super::repo_clone::wait_promoted(s).await?;
            self.create_roles(s).await?;
            tracing::info!("bootstrap from the pgBackRest repository done");
            return Ok(());
        }
        let mut initdb = Invocation::new(&s.bin_dir, "initdb")
            .arg("-D")
            .arg(&s.data_dir)
            .arg("-U")
            .arg(&s.superuser.username);
        // The password goes through a 0600 file that lives only as long as initdb runs.
        let _pwfile = match &s.superuser.password {
            Some(pw) => {
                let mut f = tempfile::NamedTempFile::new().map_err(|source| PgError::Io {
                    what: "create",
                    path: std::env::temp_dir(),
                    source,
                })?;
                f.write_all(pw.as_bytes())
                    .and_then(|()| f.flush())
                    .map_err(|source| PgError::Io {
                        what: "write",
                        path: f.path().to_path_buf(),
                        source,
                    })?;
                let mut flag = std::ffi::OsString::from("--pwfile=");
                flag.push(f.path());
                initdb = initdb.arg(flag);
                Some(f)
            }
            None => None,
        };
        initdb.args(&s.initdb_args).run().await?;
        tracing::info!("initdb done");

        let conf_path = conf::postgresql_conf(&s.data_dir);
        let base = s.data_dir.join(conf::BASE_CONF);
        fs::rename(&conf_path, &base).map_err(|source| PgError::Io {
            what: "rename",
            path: conf_path.clone(),
            source,
        })?;
        if let Some(lines) = s.bootstrap_pg_hba.as_ref().or(s.pg_hba.as_ref()) {
            conf::write_atomic(
                &s.data_dir.join("pg_hba.conf"),
                &conf::render_hba(lines),
                0o600,
            )?;
        }
        self.do_start(&StartAs::Primary, true).await?;
        self.create_roles(s).await?;
        tracing::info!("bootstrap done");
        Ok(())
    }

    /// The replication role, and the rewind role with the grants pg_rewind needs.
    async fn create_roles(&self, s: &PgSettings) -> Result<()> {
        fn sql_err<E: std::error::Error + 'static>(e: E) -> PgError {
            PgError::Sql {
                what: "creating roles",
                detail: query::error_chain(&e),
            }
        }
        let session = Session::connect(&query::local_config(s, Duration::from_secs(5)))
            .await
            .map_err(sql_err)?;
        // The statements below carry passwords: keep them out of the server log.
        session
            .rows(
                "SET log_statement TO 'none'; SET log_min_duration_statement TO -1; \
                 SET log_min_error_statement TO 'panic'",
            )
            .await
            .map_err(sql_err)?;
        let mut roles = Vec::new();
        if s.replication.username != s.superuser.username {
            roles.push((&s.replication, "LOGIN REPLICATION"));
        }
        let rewind = s
            .rewind
            .as_ref()
            .filter(|rw| rw.username != s.superuser.username);
        if let Some(rw) = rewind {
            roles.push((rw, "LOGIN"));
        }
        for (who, options) in roles {
            let exists = session
                .rows(&format!(
                    "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {}",
                    quote_literal(&who.username)
                ))
                .await
                .map_err(sql_err)?;
            let verb = if exists.is_empty() { "CREATE" } else { "ALTER" };
            session
                .rows(&role_statement(
                    verb,
                    &who.username,
                    options,
                    who.password.as_deref(),
                ))
                .await
                .map_err(sql_err)?;
        }
        if let Some(rw) = rewind {
            let who = quote_ident(&rw.username);
            for f in [
                "pg_ls_dir(text, boolean, boolean)",
                "pg_stat_file(text, boolean)",
                "pg_read_binary_file(text)",
                "pg_read_binary_file(text, bigint, bigint, boolean)",
            ] {
                session
                    .rows(&format!(
                        "GRANT EXECUTE ON FUNCTION pg_catalog.{f} TO {who}"
                    ))
                    .await
                    .map_err(sql_err)?;
            }
        }
        Ok(())
    }

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

/// `CREATE ROLE` or `ALTER ROLE` with options and password, quoted.
fn role_statement(verb: &str, name: &str, options: &str, password: Option<&str>) -> String {
    let pw = password
        .map(|p| format!(" PASSWORD {}", quote_literal(p)))
        .unwrap_or_default();
    format!("{verb} ROLE {} WITH {options}{pw}", quote_ident(name))
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

    #[test]
    fn role_statements_quote_names_and_passwords() {
        assert_eq!(
            role_statement("CREATE", "rep\"l", "LOGIN REPLICATION", Some("pa'ss\\")),
            "CREATE ROLE \"rep\"\"l\" WITH LOGIN REPLICATION PASSWORD E'pa''ss\\\\'"
        );
        assert_eq!(
            role_statement("ALTER", "r", "LOGIN", None),
            "ALTER ROLE \"r\" WITH LOGIN"
        );
    }

    #[test]
    fn emptying_a_data_dir_keeps_it_with_mode_0700() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir_all(data.join("sub/deeper")).unwrap();
        fs::write(data.join("PG_VERSION"), "15\n").unwrap();
        std::os::unix::fs::symlink("/nonexistent", data.join("link")).unwrap();
        empty_data_dir(&data).unwrap();
        assert_eq!(fs::read_dir(&data).unwrap().count(), 0);
        let mode = fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
