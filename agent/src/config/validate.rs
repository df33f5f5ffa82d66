//! [`RawConfig`] into [`Config`]: every rule of the file, rejecting rather than adjusting.
//!
//! Each failure is `ConfigError::Invalid` naming the dotted key; keys we accept but cannot
//! honour fully are warnings; keys we cannot honour without surprising the user (another
//! DCS, custom bootstrap, a required watchdog, a REST API allowlist...) are errors.
//! The sections have their own files: `etcd3.rs`, `restapi.rs`, `pgconf.rs` (postgresql),
//! `tags.rs` (tags, log), `guards.rs` (watchdog, fence); `bootstrap` is here.

use serde_json::{Map, Value};

use super::addr;
use super::args::{INITDB_OWNED, tool_args};
use super::ctx::Ctx;
use super::dynamic;
use super::raw::{RawBootstrap, RawConfig, kind_of};
use super::{BootstrapConfig, Config, Result, backup, etcd3, guards, pgconf, restapi, tags};

/// Patroni's default namespace.
const DEFAULT_NAMESPACE: &str = "/service/";

/// Validates the whole file.
pub(super) fn config(raw: RawConfig, ctx: &mut Ctx<'_>) -> Result<Config> {
    let scope = non_empty(ctx, "scope", raw.scope)?;
    if scope.contains('/') {
        return Err(ctx.invalid(
            "scope",
            format!("{scope:?} must not contain '/' (it is an etcd key segment)"),
        ));
    }
    let name = non_empty(ctx, "name", raw.name)?;
    check_member_name(&name).map_err(|r| ctx.invalid("name", r))?;
    let namespace = raw
        .namespace
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());

    let etcd = match &raw.etcd3 {
        Some(e) => etcd3::settings(e, ctx)?,
        None => {
            return Err(ctx.invalid(
                "etcd3",
                "missing: the etcd3 section (hosts, host or url) is required",
            ));
        }
    };
    let restapi = restapi::restapi(raw.restapi.unwrap_or_default(), ctx)?;
    let ctl = restapi::ctl(raw.ctl.as_ref(), ctx)?;
    let (postgresql, pg_hosts) = pgconf::postgresql(raw.postgresql, &name, ctx)?;
    if let Some(h) = pg_hosts
        .iter()
        .find(|h| addr::may_overlap(&restapi.listen.ip().to_string(), h))
        && restapi.listen.port() == postgresql.port
    {
        return Err(ctx.invalid(
            "restapi.listen",
            format!(
                "port {} is also PostgreSQL's port on {:?} (postgresql.listen); they must differ",
                postgresql.port, h
            ),
        ));
    }
    let bootstrap = match raw.bootstrap {
        Some(b) => Some(bootstrap(b, ctx)?),
        None => None,
    };
    let tags = tags::tags(raw.tags.unwrap_or_default(), ctx)?;
    let log = tags::log(raw.log.unwrap_or_default(), ctx)?;
    let watchdog = guards::watchdog(raw.watchdog.unwrap_or_default(), ctx)?;
    let fence = guards::fence(raw.fence.unwrap_or_default(), &postgresql.data_dir, ctx)?;
    guards::check_together(&watchdog, &fence, bootstrap.as_ref(), ctx)?;
    let backup = match raw.backup {
        Some(b) => Some(backup::backup(b, &postgresql.data_dir, &scope, ctx)?),
        None => None,
    };
    if backup.is_none() && bootstrap.as_ref().is_some_and(|b| b.from_repo.is_some()) {
        return Err(ctx.invalid(
            "bootstrap.method",
            "pgbackrest needs a backup section (the repository to restore from)",
        ));
    }
    if backup.is_none()
        && postgresql
            .create_replica_methods
            .iter()
            .any(|m| m == "pgbackrest")
    {
        return Err(ctx.invalid(
            "postgresql.create_replica_methods",
            "pgbackrest needs a backup section (the repository to restore from)",
        ));
    }
    Ok(Config {
        path: ctx.path.to_owned(),
        scope,
        namespace,
        name,
        restapi,
        ctl,
        etcd,
        bootstrap,
        postgresql,
        tags,
        log,
        watchdog,
        fence,
        backup,
    })
}

/// A required, non-empty string.
pub(super) fn non_empty(ctx: &Ctx<'_>, key: &str, v: Option<String>) -> Result<String> {
    match v {
        None => Err(ctx.invalid(key, "missing")),
        Some(s) if s.trim().is_empty() => Err(ctx.invalid(key, "must not be empty")),
        Some(s) => Ok(s),
    }
}

/// The member name becomes an etcd key segment, a replication slot name and
/// `application_name`: a safe character set, at most 63 bytes (PostgreSQL's NAMEDATALEN).
pub(super) fn check_member_name(name: &str) -> std::result::Result<(), String> {
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a usable name"));
    }
    if name.len() > 63 {
        return Err(format!("{name:?} is longer than 63 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "{name:?} contains {c:?}; use only letters, digits, '_', '.' and '-'"
        ));
    }
    Ok(())
}

fn bootstrap(raw: RawBootstrap, ctx: &mut Ctx<'_>) -> Result<BootstrapConfig> {
    let from_repo = match raw.method.as_deref() {
        None | Some("initdb") => None,
        Some("pgbackrest") => Some(backup::repo_source(
            raw.pgbackrest.unwrap_or_default(),
            ctx,
        )?),
        Some(m) => {
            return Err(ctx.invalid(
                "bootstrap.method",
                format!(
                    "{m:?}: only initdb and pgbackrest are supported (other custom methods are not)"
                ),
            ));
        }
    };
    for (key, v) in [
        ("bootstrap.post_bootstrap", &raw.post_bootstrap),
        ("bootstrap.post_init", &raw.post_init),
    ] {
        if is_set(v) {
            return Err(ctx.invalid(
                key,
                "not supported yet: the script would not run after initdb",
            ));
        }
    }
    if is_set(&raw.users) {
        ctx.warn(
            "bootstrap.users",
            "not supported (Patroni 4 removed it); create users after bootstrap",
        );
    }
    let dcs = match raw.dcs {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v,
        Some(other) => {
            return Err(ctx.invalid(
                "bootstrap.dcs",
                format!("expected a mapping, got {}", kind_of(&other)),
            ));
        }
    };
    match dynamic::read(&dcs, true) {
        Ok((_, remarks)) => {
            for r in remarks {
                ctx.warn(&format!("bootstrap.dcs.{}", r.key), r.reason);
            }
        }
        Err(issue) => {
            return Err(ctx.invalid(&format!("bootstrap.dcs.{}", issue.key), issue.reason));
        }
    }
    let initdb_args = match &raw.initdb {
        None => Vec::new(),
        Some(v) => tool_args(v, INITDB_OWNED).map_err(|r| ctx.invalid("bootstrap.initdb", r))?,
    };
    Ok(BootstrapConfig {
        dcs,
        initdb_args,
        pg_hba: raw.pg_hba,
        from_repo,
    })
}

/// Present and not null, false, or empty.
pub(super) fn is_set(v: &Option<Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}
