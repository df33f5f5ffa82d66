//! The `backup` section (hapg's own): pgBackRest's repository, retention, schedules and
//! compression, validated into [`BackupConfig`].
//!
//! Rules: every value is checked here, before the agent touches etcd or the data directory,
//! and an error names the dotted key (`backup.schedule.full: "0 3 * *": ...`). The repository
//! directory (`repo_path`) must exist and be readable and writable by the agent's user, since
//! a repository the archiver cannot write to would fill `pg_wal` silently. Options passed
//! through to pgBackRest (`options`) may not set what the agent manages itself (`pg1-*`,
//! `stanza`). Nothing is adjusted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::ctx::Ctx;
use super::raw::{bool_of, int_of, kind_of};
use super::{Config, Result};
use crate::backup::schedule::Schedule;
use crate::pg::GucValue;

/// `backup` as written.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawBackup {
    pub stanza: Option<String>,
    pub repo_path: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub retention_full: Option<Value>,
    pub retention_diff: Option<Value>,
    pub compress_type: Option<String>,
    pub compress_level: Option<Value>,
    pub from_replica: Option<Value>,
    pub schedule: Option<RawSchedule>,
    pub options: Option<BTreeMap<String, Value>>,
}

/// `backup.schedule` as written.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawSchedule {
    pub full: Option<String>,
    pub diff: Option<String>,
    pub incr: Option<String>,
}

/// `backup`: backups with pgBackRest, run by the leader (see `crate::backup`).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupConfig {
    /// `stanza` (default: the scope).
    pub stanza: String,
    /// `repo_path`: pgBackRest's `repo1-path` (a directory shared by the members).
    pub repo_path: Option<PathBuf>,
    /// `config_file`: the pgBackRest configuration the agent writes (default
    /// `<data_dir>.pgbackrest.conf`, beside the data directory).
    pub config_file: PathBuf,
    /// `retention_full` (default 2): full backups kept.
    pub retention_full: u32,
    /// `retention_diff`: differential backups kept (pgBackRest's default when unset).
    pub retention_diff: Option<u32>,
    /// `compress_type` (default `lz4`).
    pub compress_type: String,
    /// `compress_level`.
    pub compress_level: Option<u32>,
    /// `from_replica` (default true): back up from a healthy streaming replica when there
    /// is one (pgBackRest's `backup-standby`).
    pub from_replica: bool,
    /// `schedule.full`.
    pub full: Option<Schedule>,
    /// `schedule.diff`.
    pub diff: Option<Schedule>,
    /// `schedule.incr`.
    pub incr: Option<Schedule>,
    /// `options`: more pgBackRest settings for its `[global]` section, as written.
    pub options: BTreeMap<String, String>,
}

const COMPRESS_TYPES: &[&str] = &["none", "gz", "lz4", "zst", "bz2"];

/// Options the agent writes itself (in the stanza section or on the command line).
fn managed_option(key: &str) -> bool {
    key == "stanza" || key.starts_with("pg1-") || key.starts_with("pg2-") || key == "config"
}

/// Validates `backup`; `data_dir` and `scope` give the defaults.
pub(super) fn backup(
    raw: RawBackup,
    data_dir: &Path,
    scope: &str,
    ctx: &mut Ctx<'_>,
) -> Result<BackupConfig> {
    let stanza = raw.stanza.unwrap_or_else(|| scope.to_owned());
    if stanza.is_empty()
        || !stanza
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(ctx.invalid(
            "backup.stanza",
            format!("{stanza:?}: use only letters, digits, '_', '-' and '.'"),
        ));
    }
    let options = options(raw.options.unwrap_or_default(), ctx)?;
    let repo_path = match raw.repo_path {
        Some(p) => Some(repo_dir(&p, ctx)?),
        None if options.contains_key("repo1-path") || options.contains_key("repo1-type") => None,
        None => {
            return Err(ctx.invalid(
                "backup.repo_path",
                "missing: give the repository directory (or repo1-* settings under backup.options)",
            ));
        }
    };
    let config_file = match raw.config_file {
        Some(p) => p,
        None => {
            let mut s = data_dir.as_os_str().to_owned();
            s.push(".pgbackrest.conf");
            PathBuf::from(s)
        }
    };
    // It goes into archive_command, a single-quoted setting run by the shell.
    let text = config_file.to_string_lossy();
    if !config_file.is_absolute()
        || text
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\' | '%' | '$' | '`'))
    {
        return Err(ctx.invalid(
            "backup.config_file",
            format!("{text:?}: must be an absolute path without spaces, quotes, '%', '$' or '\\'"),
        ));
    }
    let compress_type = raw.compress_type.unwrap_or_else(|| "lz4".into());
    if !COMPRESS_TYPES.contains(&compress_type.as_str()) {
        return Err(ctx.invalid(
            "backup.compress_type",
            format!(
                "{compress_type:?}: expected one of {}",
                COMPRESS_TYPES.join(", ")
            ),
        ));
    }
    let schedule = raw.schedule.unwrap_or_default();
    Ok(BackupConfig {
        stanza,
        repo_path,
        config_file,
        retention_full: count(ctx, "backup.retention_full", raw.retention_full.as_ref(), 1)?
            .unwrap_or(2),
        retention_diff: count(ctx, "backup.retention_diff", raw.retention_diff.as_ref(), 1)?,
        compress_type,
        compress_level: count(ctx, "backup.compress_level", raw.compress_level.as_ref(), 0)?,
        from_replica: match &raw.from_replica {
            None | Some(Value::Null) => true,
            Some(v) => bool_of(v).ok_or_else(|| {
                ctx.invalid(
                    "backup.from_replica",
                    format!("expected a boolean, got {}", kind_of(v)),
                )
            })?,
        },
        full: cron(ctx, "backup.schedule.full", schedule.full)?,
        diff: cron(ctx, "backup.schedule.diff", schedule.diff)?,
        incr: cron(ctx, "backup.schedule.incr", schedule.incr)?,
        options,
    })
}

fn cron(ctx: &Ctx<'_>, key: &str, v: Option<String>) -> Result<Option<Schedule>> {
    v.map(|s| Schedule::parse(&s).map_err(|why| ctx.invalid(key, why)))
        .transpose()
}

fn count(ctx: &Ctx<'_>, key: &str, v: Option<&Value>, min: i64) -> Result<Option<u32>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match int_of(v).filter(|n| *n >= min) {
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| ctx.invalid(key, format!("{n} is too large"))),
            None => Err(ctx.invalid(
                key,
                format!(
                    "expected a whole number of at least {min}, got {}",
                    kind_of(v)
                ),
            )),
        },
    }
}

fn options(raw: BTreeMap<String, Value>, ctx: &Ctx<'_>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let key = format!("backup.options.{k}");
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(ctx.invalid(
                &key,
                "not a pgBackRest option name (lowercase, digits, '-')",
            ));
        }
        if managed_option(&k) {
            return Err(ctx.invalid(&key, "set by the agent itself; remove it"));
        }
        let text = match &v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => if *b { "y" } else { "n" }.to_string(),
            other => {
                return Err(ctx.invalid(&key, format!("expected a scalar, got {}", kind_of(other))));
            }
        };
        if text.contains(['\n', '\r']) {
            return Err(ctx.invalid(&key, "must be one line"));
        }
        out.insert(k, text);
    }
    Ok(out)
}

/// The repository directory: absolute, existing, readable and writable by this process.
fn repo_dir(p: &Path, ctx: &Ctx<'_>) -> Result<PathBuf> {
    let key = "backup.repo_path";
    if !p.is_absolute() {
        return Err(ctx.invalid(key, format!("{}: must be an absolute path", p.display())));
    }
    if !p.is_dir() {
        return Err(ctx.invalid(
            key,
            format!(
                "{}: no such directory (create it, shared by the members)",
                p.display()
            ),
        ));
    }
    use nix::unistd::{AccessFlags, access};
    if let Err(e) = access(p, AccessFlags::R_OK | AccessFlags::W_OK | AccessFlags::X_OK) {
        return Err(ctx.invalid(
            key,
            format!(
                "{}: not readable and writable by this user: {e}",
                p.display()
            ),
        ));
    }
    // pgBackRest wants a plain absolute path: `..` and symbolic links resolved.
    p.canonicalize()
        .map_err(|e| ctx.invalid(key, format!("{}: {e}", p.display())))
}

impl Config {
    /// `create_replica_methods` with `pgbackrest` before `basebackup` (and a `backup` section,
    /// checked at load): replicas are restored from the repository first.
    pub(super) fn repo_clone(&self) -> Option<crate::pg::RepoClone> {
        let m = &self.postgresql.create_replica_methods;
        let pos = |name: &str| m.iter().position(|x| x == name);
        let first = pos("pgbackrest")? < pos("basebackup").unwrap_or(usize::MAX);
        let b = self.backup.as_ref().filter(|_| first)?;
        Some(crate::pg::RepoClone {
            config_file: b.config_file.clone(),
            stanza: b.stanza.clone(),
            then_basebackup: pos("basebackup").is_some(),
        })
    }

    /// `bootstrap.method: pgbackrest` (with a `backup` section, checked at load).
    pub(super) fn repo_bootstrap(&self) -> Option<crate::pg::RepoBootstrap> {
        let src = self.bootstrap.as_ref()?.from_repo.as_ref()?;
        let b = self.backup.as_ref()?;
        Some(crate::pg::RepoBootstrap {
            config_file: b.config_file.clone(),
            stanza: src.stanza.clone().unwrap_or_else(|| b.stanza.clone()),
            kind: src.kind.clone(),
            target: src.target.clone(),
            set: src.set.clone(),
        })
    }

    /// With a `backup` section, every member archives through pgBackRest: `archive_mode = on`
    /// (only a primary archives, so archiving follows the leader) and pgBackRest's
    /// `archive-push` as `archive_command`; these win over any value in `parameters`.
    pub(super) fn with_archiving(
        &self,
        mut params: BTreeMap<String, GucValue>,
    ) -> BTreeMap<String, GucValue> {
        if let Some(b) = &self.backup {
            params.insert("archive_mode".into(), GucValue::Str("on".into()));
            params.insert(
                "archive_command".into(),
                GucValue::Str(crate::backup::pgbackrest::archive_command(b)),
            );
        }
        params
    }
}

/// `bootstrap.pgbackrest` as written.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawRepoSource {
    pub stanza: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub target: Option<String>,
    pub set: Option<String>,
    /// Patroni's custom-bootstrap keys: accepted, not used (a warning says so).
    pub command: Option<Value>,
    #[allow(dead_code)]
    pub keep_existing_recovery_conf: Option<Value>,
    #[allow(dead_code)]
    pub no_params: Option<Value>,
    pub recovery_conf: Option<Value>,
}

/// Validates `bootstrap.pgbackrest`.
pub(super) fn repo_source(raw: RawRepoSource, ctx: &mut Ctx<'_>) -> Result<super::RepoSource> {
    let kind = raw.kind.unwrap_or_else(|| "default".into());
    let needs_target = matches!(kind.as_str(), "time" | "lsn" | "name");
    if !needs_target && !matches!(kind.as_str(), "default" | "immediate") {
        return Err(ctx.invalid(
            "bootstrap.pgbackrest.type",
            format!("{kind:?}: expected default, immediate, time, lsn or name"),
        ));
    }
    if needs_target != raw.target.is_some() {
        return Err(ctx.invalid(
            "bootstrap.pgbackrest.target",
            format!(
                "type {kind} {} a target",
                if needs_target { "needs" } else { "takes no" }
            ),
        ));
    }
    if raw.command.is_some() || raw.recovery_conf.is_some() {
        ctx.warn(
            "bootstrap.pgbackrest",
            "command and recovery_conf are not used: the agent runs pgbackrest restore itself",
        );
    }
    Ok(super::RepoSource {
        stanza: raw.stanza,
        kind,
        target: raw.target,
        set: raw.set,
    })
}
