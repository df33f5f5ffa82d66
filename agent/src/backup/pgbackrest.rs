//! pgBackRest: the configuration file the agent writes, the `archive_command` it sets, and
//! the commands it runs (`stanza-create`, `check`, `backup`, `info`, `restore`).
//!
//! Layout: one configuration file per member (`backup.config_file`), with the repository
//! and retention in `[global]` and this member as `pg1` in the stanza section; a backup from a
//! standby adds the standby as `pg2` on the command line, so the file never names another
//! member. Logs and locks go to `<config_file>.d/` so that several members (or clusters) on
//! one host do not share them.
//!
//! Invariants: rendering is pure and unit-tested; the file is replaced atomically; the
//! superuser password only reaches pgBackRest through the environment (`PGPASSWORD`), never
//! the file or a log line. Every command is bounded by a timeout and killed when dropped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::config::BackupConfig;
use crate::pg::PgSettings;

/// A pgBackRest command failed.
#[derive(Debug, thiserror::Error)]
pub enum PgbrError {
    /// The program could not be started.
    #[error("cannot run pgbackrest {command}: {source}")]
    Spawn {
        /// The subcommand.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran too long and was killed.
    #[error("pgbackrest {command} did not finish within {secs} s")]
    Timeout {
        /// The subcommand.
        command: String,
        /// The limit.
        secs: u64,
    },
    /// It exited with an error.
    #[error("pgbackrest {command} failed (exit {code}): {detail}")]
    Failed {
        /// The subcommand.
        command: String,
        /// Exit code (-1: killed by a signal).
        code: i32,
        /// Its last error lines.
        detail: String,
    },
    /// The configuration file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, PgbrError>;

/// Where a PostgreSQL is, as pgBackRest's `pgN-*` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgLocation {
    /// `pgN-path`.
    pub path: PathBuf,
    /// `pgN-port`.
    pub port: u16,
    /// `pgN-socket-path` (a Unix socket directory), if the agent connects over one.
    pub socket: Option<String>,
}

impl PgLocation {
    /// This member's PostgreSQL. pgBackRest reaches a local PostgreSQL only over its Unix
    /// socket: the directory the agent uses, else `unix_socket_directories`' first entry,
    /// else libpq's default.
    pub fn local(s: &PgSettings) -> PgLocation {
        let configured = s
            .parameters
            .get("unix_socket_directories")
            .and_then(|v| v.to_plain().split(',').next().map(|d| d.trim().to_owned()))
            .filter(|d| d.starts_with('/'));
        PgLocation {
            path: s.data_dir.clone(),
            port: s.port,
            socket: if s.local_host.starts_with('/') {
                Some(s.local_host.clone())
            } else {
                configured
            },
        }
    }

    fn options(&self, n: u8) -> Vec<String> {
        let mut out = vec![
            format!("pg{n}-path={}", self.path.display()),
            format!("pg{n}-port={}", self.port),
        ];
        if let Some(s) = &self.socket {
            out.push(format!("pg{n}-socket-path={s}"));
        }
        out
    }
}

/// Directory for pgBackRest's logs, locks and spool: `<config_file>.d`.
pub fn state_dir(cfg: &BackupConfig) -> PathBuf {
    let mut s = cfg.config_file.as_os_str().to_owned();
    s.push(".d");
    PathBuf::from(s)
}

/// The configuration file for this member.
pub fn render_config(cfg: &BackupConfig, pg: &PgSettings) -> String {
    let state = state_dir(cfg);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by hapg's ha-agent for member {:?} from its `backup` section: do not edit.",
        pg.member
    );
    out.push_str("[global]\n");
    if let Some(p) = &cfg.repo_path {
        let _ = writeln!(out, "repo1-path={}", p.display());
    }
    let _ = writeln!(out, "repo1-retention-full={}", cfg.retention_full);
    if let Some(d) = cfg.retention_diff {
        let _ = writeln!(out, "repo1-retention-diff={d}");
    }
    let _ = writeln!(out, "compress-type={}", cfg.compress_type);
    if let Some(l) = cfg.compress_level {
        let _ = writeln!(out, "compress-level={l}");
    }
    let _ = writeln!(out, "log-path={}", state.join("log").display());
    let _ = writeln!(out, "lock-path={}", state.join("lock").display());
    let _ = writeln!(out, "spool-path={}", state.join("spool").display());
    out.push_str("log-level-console=warn\nlog-level-stderr=error\nlog-level-file=info\n");
    out.push_str("start-fast=y\n");
    for (k, v) in &cfg.options {
        let _ = writeln!(out, "{k}={v}");
    }
    let _ = writeln!(out, "\n[{}]", cfg.stanza);
    for o in PgLocation::local(pg).options(1) {
        out.push_str(&o);
        out.push('\n');
    }
    let _ = writeln!(out, "pg1-user={}", pg.superuser.username);
    out
}

/// `archive_command`: push each finished WAL segment to the repository. Set on every member;
/// with `archive_mode = on` only the primary runs it.
pub fn archive_command(cfg: &BackupConfig) -> String {
    format!(
        "pgbackrest --config={} --stanza={} archive-push %p",
        cfg.config_file.display(),
        cfg.stanza
    )
}

/// `restore_command` for a member that recovers from the repository.
pub fn restore_command(cfg: &BackupConfig) -> String {
    format!(
        "pgbackrest --config={} --stanza={} archive-get %f \"%p\"",
        cfg.config_file.display(),
        cfg.stanza
    )
}

/// Writes the configuration file (atomically) and creates the state directories.
pub fn write_config(cfg: &BackupConfig, pg: &PgSettings) -> Result<()> {
    let state = state_dir(cfg);
    for sub in ["log", "lock", "spool"] {
        let d = state.join(sub);
        std::fs::create_dir_all(&d).map_err(|source| PgbrError::Write { path: d, source })?;
    }
    crate::pg::conf::write_atomic(&cfg.config_file, &render_config(cfg, pg), 0o640).map_err(|e| {
        PgbrError::Write {
            path: cfg.config_file.clone(),
            source: std::io::Error::other(e.to_string()),
        }
    })
}

/// One pgBackRest invocation with this member's configuration.
#[derive(Debug, Clone)]
pub struct Pgbackrest {
    config_file: PathBuf,
    stanza: String,
    password: Option<String>,
    user: Option<(u32, u32)>,
}

impl Pgbackrest {
    /// For `cfg`; `password` is the superuser's (given to libpq as `PGPASSWORD`).
    pub fn new(cfg: &BackupConfig, password: Option<String>) -> Pgbackrest {
        Pgbackrest {
            config_file: cfg.config_file.clone(),
            stanza: cfg.stanza.clone(),
            password,
            user: None,
        }
    }

    /// For an explicit configuration file and stanza.
    pub fn with(config_file: &Path, stanza: &str, password: Option<String>) -> Pgbackrest {
        Pgbackrest {
            config_file: config_file.to_path_buf(),
            stanza: stanza.to_owned(),
            password,
            user: None,
        }
    }

    /// Runs the commands as this user and group (hactl as root restoring for `postgres`).
    pub fn run_as(mut self, uid: u32, gid: u32) -> Pgbackrest {
        self.user = Some((uid, gid));
        self
    }

    /// The configuration file.
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// Runs `command` with `args` (options `--x=y`, and operands such as a WAL file); stdout
    /// on success.
    pub async fn run(&self, command: &str, args: &[String], timeout: Duration) -> Result<String> {
        // Options (`--x`) go before the command, operands (a WAL file) after it.
        let (options, operands): (Vec<&String>, Vec<&String>) =
            args.iter().partition(|a| a.starts_with("--"));
        let mut cmd = Command::new("pgbackrest");
        cmd.arg(format!("--config={}", self.config_file.display()))
            .arg(format!("--stanza={}", self.stanza))
            .args(options)
            .arg(command)
            .args(operands)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(pw) = &self.password {
            cmd.env("PGPASSWORD", pw);
        }
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().map_err(|source| PgbrError::Spawn {
            command: command.into(),
            source,
        })?;
        let out = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| PgbrError::Timeout {
                command: command.into(),
                secs: timeout.as_secs(),
            })?
            .map_err(|source| PgbrError::Spawn {
                command: command.into(),
                source,
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        // Warnings (the real cause, e.g. why a connection failed) go to stdout, the final
        // error to stderr.
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.contains("WARN:") || l.contains("ERROR:") || l.starts_with("HINT"))
            .collect();
        Err(PgbrError::Failed {
            command: command.into(),
            code: out.status.code().unwrap_or(-1),
            detail: lines[lines.len().saturating_sub(3)..].join(" / "),
        })
    }

    /// `backup --type=<kind>`, from `standby` when given (as `pg2` with `backup-standby`),
    /// with annotations naming the member and source; expiry follows automatically
    /// (`expire-auto`), applying the retention.
    pub async fn backup(
        &self,
        kind: &str,
        standby: Option<&PgLocation>,
        annotations: &[(&str, String)],
        timeout: Duration,
    ) -> Result<String> {
        let mut args = vec![format!("--type={kind}")];
        if let Some(s) = standby {
            args.extend(s.options(2).into_iter().map(|o| format!("--{o}")));
            args.push("--backup-standby".into());
        }
        for (k, v) in annotations {
            args.push(format!("--annotation={k}={v}"));
        }
        self.run("backup", &args, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    pub(crate) fn cfg() -> BackupConfig {
        BackupConfig {
            stanza: "demo".into(),
            repo_path: Some("/srv/repo".into()),
            config_file: "/var/lib/pg/main.pgbackrest.conf".into(),
            retention_full: 2,
            retention_diff: Some(3),
            compress_type: "lz4".into(),
            compress_level: None,
            from_replica: true,
            full: None,
            diff: None,
            incr: None,
            options: BTreeMap::from([("process-max".into(), "2".into())]),
        }
    }

    #[test]
    fn config_names_repository_retention_and_this_member_as_pg1() {
        let mut pg = crate::pg::conf::tests::settings();
        pg.local_host = "/run/pg".into();
        let text = render_config(&cfg(), &pg);
        for line in [
            "[global]\n",
            "repo1-path=/srv/repo\n",
            "repo1-retention-full=2\n",
            "repo1-retention-diff=3\n",
            "compress-type=lz4\n",
            "lock-path=/var/lib/pg/main.pgbackrest.conf.d/lock\n",
            "process-max=2\n",
            "[demo]\n",
            "pg1-path=/var/lib/postgresql/15/main\n",
            "pg1-port=5432\n",
            "pg1-socket-path=/run/pg\n",
            "pg1-user=postgres\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert!(!text.contains("password"), "no password in the file");
    }

    #[test]
    fn archive_command_names_config_and_stanza() {
        assert_eq!(
            archive_command(&cfg()),
            "pgbackrest --config=/var/lib/pg/main.pgbackrest.conf --stanza=demo archive-push %p"
        );
    }
}
