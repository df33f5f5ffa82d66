//! `LocalPostgres`'s bootstrap: a new cluster from initdb (or from the pgBackRest
//! repository), then the replication and rewind roles.
//!
//! Invariants: a failed bootstrap leaves no server running and an empty data directory
//! behind; the statements that carry the roles' passwords stay out of the server log.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use super::conf;
use super::ctl::Invocation;
use super::local::{LocalPostgres, has_data};
use super::postmaster;
use super::query::{self, Session, quote_ident, quote_literal};
use super::{PgError, PgSettings, Result};
use crate::ha::{StartAs, StopMode};

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
}

/// `CREATE ROLE` or `ALTER ROLE` with options and password, quoted.
fn role_statement(verb: &str, name: &str, options: &str, password: Option<&str>) -> String {
    let pw = password
        .map(|p| format!(" PASSWORD {}", quote_literal(p)))
        .unwrap_or_default();
    format!("{verb} ROLE {} WITH {options}{pw}", quote_ident(name))
}

#[cfg(test)]
mod tests {
    use super::*;

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
