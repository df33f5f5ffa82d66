//! The `postgresql` section into [`PostgresqlConfig`].
//!
//! Touches the file system only to check that the data directory's parent exists and
//! whether the default `bin_dir` is installed; creates nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::addr::{self, HostPort};
use super::args::{BASEBACKUP_OWNED, tool_args};
use super::ctx::Ctx;
use super::params::{local_ignored, read_map};
use super::raw::{RawPostgresql, RawRole, kind_of};
use super::validate::is_set;
use super::{PostgresqlConfig, Result};
use crate::ha::ConnTarget;
use serde_json::Value;

use crate::pg::connparams::{CHANNEL_BINDINGS, ConnParams, GSSENCMODES, SSLMODES};
use crate::pg::{Credentials, GucValue};

/// The Debian/Ubuntu location of PostgreSQL 15's programs.
const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// PostgreSQL's port when `postgresql.listen` has none (Patroni's default too).
const DEFAULT_PORT: u16 = 5432;

/// The callbacks Patroni runs.
const CALLBACKS: &[&str] = &[
    "on_start",
    "on_stop",
    "on_restart",
    "on_reload",
    "on_role_change",
];

/// Validates `postgresql`; also returns the listen hosts (for the port clash check).
pub(super) fn postgresql(
    raw: Option<RawPostgresql>,
    name: &str,
    ctx: &mut Ctx<'_>,
) -> Result<(PostgresqlConfig, Vec<String>)> {
    let raw = raw.ok_or_else(|| {
        ctx.invalid(
            "postgresql",
            "missing (needs at least listen, data_dir and authentication.replication)",
        )
    })?;
    let listen = raw
        .listen
        .as_deref()
        .ok_or_else(|| ctx.invalid("postgresql.listen", "missing (e.g. 0.0.0.0:5432)"))?;
    let (hosts, port) = addr::split_hosts_port(listen, Some(DEFAULT_PORT))
        .map_err(|r| ctx.invalid("postgresql.listen", r))?;
    if hosts.iter().any(String::is_empty) {
        return Err(ctx.invalid(
            "postgresql.listen",
            format!("{listen:?} has an empty host (use * for all interfaces)"),
        ));
    }
    let connect_address = match &raw.connect_address {
        Some(c) => {
            let HostPort { host, port } = addr::connect_address(c)
                .map_err(|r| ctx.invalid("postgresql.connect_address", r))?;
            ConnTarget { host, port }
        }
        None => ConnTarget {
            host: addr::default_connect_host(&hosts[0]),
            port,
        },
    };

    let data_dir = match &raw.data_dir {
        None => return Err(ctx.invalid("postgresql.data_dir", "missing")),
        Some(d) if d.as_os_str().is_empty() => {
            return Err(ctx.invalid("postgresql.data_dir", "must not be empty"));
        }
        Some(d) => d.clone(),
    };
    let parent = match data_dir.parent() {
        None => {
            return Err(ctx.invalid(
                "postgresql.data_dir",
                format!("{} has no parent directory", data_dir.display()),
            ));
        }
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
    };
    if !parent.is_dir() {
        return Err(ctx.invalid(
            "postgresql.data_dir",
            format!("the parent directory {} does not exist (the agent creates only the data directory itself)", parent.display()),
        ));
    }
    let bin_dir = match &raw.bin_dir {
        Some(b) => b.clone(),
        None if Path::new(DEFAULT_BIN_DIR).is_dir() => PathBuf::from(DEFAULT_BIN_DIR),
        None => PathBuf::new(),
    };
    let pgpass = raw
        .pgpass
        .clone()
        .unwrap_or_else(|| parent.join(format!("pgpass.{name}")));

    side_keys(&raw, &data_dir, ctx)?;
    let auth = raw.authentication.unwrap_or_default();
    let replication = match auth.replication {
        Some(r) => role(ctx, "replication", r, None)?,
        None => {
            return Err(ctx.invalid(
                "postgresql.authentication.replication",
                "missing (username and password of the replication role)",
            ));
        }
    };
    let superuser = role(
        ctx,
        "superuser",
        auth.superuser.unwrap_or_default(),
        Some("postgres"),
    )?;
    let rewind = match auth.rewind {
        Some(r) => Some(role(ctx, "rewind", r, None)?),
        None => None,
    };

    let parameters = match &raw.parameters {
        None => BTreeMap::new(),
        Some(p) => {
            let map = p.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            read_map(&map)
                .map_err(|(k, r)| ctx.invalid(&format!("postgresql.parameters.{k}"), r))?
        }
    };
    for (k, v) in &parameters {
        if let Some(why) = local_ignored(k, v) {
            ctx.warn(&format!("postgresql.parameters.{k}"), why);
        }
    }
    let local_host = if raw.use_unix_socket == Some(true) {
        socket_dir(&parameters, &data_dir).ok_or_else(|| {
            ctx.invalid(
                "postgresql.use_unix_socket",
                "needs postgresql.parameters.unix_socket_directories (the agent does not guess the compiled-in default)",
            )
        })?
    } else {
        addr::default_connect_host(&hosts[0])
    };

    let basebackup_args = match &raw.basebackup {
        None => Vec::new(),
        Some(v) => {
            tool_args(v, BASEBACKUP_OWNED).map_err(|r| ctx.invalid("postgresql.basebackup", r))?
        }
    };
    let create_replica_methods = match &raw.create_replica_methods {
        None => vec!["basebackup".to_string()],
        Some(methods) => {
            let known: Vec<String> = methods
                .iter()
                .filter(|m| matches!(m.as_str(), "basebackup" | "pgbackrest"))
                .cloned()
                .collect();
            if known.is_empty() {
                return Err(ctx.invalid(
                    "postgresql.create_replica_methods",
                    format!("{methods:?}: only basebackup and pgbackrest are supported, and neither is listed"),
                ));
            }
            if known.len() < methods.len() {
                ctx.warn(
                    "postgresql.create_replica_methods",
                    "only basebackup and pgbackrest are used; the other methods are not supported",
                );
            }
            known
        }
    };
    if super::validate::is_set(&raw.pgbackrest) {
        ctx.warn(
            "postgresql.pgbackrest",
            "not used: the pgbackrest method restores with the backup section's repository",
        );
    }
    let callbacks = raw.callbacks.clone().unwrap_or_default();
    for k in callbacks
        .keys()
        .filter(|k| !CALLBACKS.contains(&k.as_str()))
    {
        ctx.warn(
            &format!("postgresql.callbacks.{k}"),
            "unknown callback ignored",
        );
    }

    let config = PostgresqlConfig {
        listen_addresses: hosts.join(","),
        port,
        connect_address,
        data_dir,
        bin_dir,
        pgpass,
        local_host,
        superuser,
        replication,
        rewind,
        parameters,
        pg_hba: raw.pg_hba,
        basebackup_args,
        callbacks,
        create_replica_methods,
    };
    Ok((config, hosts))
}

/// One role of `postgresql.authentication`.
fn role(
    ctx: &mut Ctx<'_>,
    which: &str,
    r: RawRole,
    default_user: Option<&str>,
) -> Result<Credentials> {
    let key = format!("postgresql.authentication.{which}");
    let conn = conn_params(ctx, &key, &r)?;
    // The superuser and rewind roles also connect from the agent itself (tokio-postgres),
    // which must honour their settings or refuse them.
    if which != "replication"
        && let Some((k, why)) = crate::pg::tls::unsupported(&conn)
    {
        return Err(ctx.invalid(&format!("{key}.{k}"), why));
    }
    if which != "replication" && conn.sslcert.is_some() && conn.sslkey.is_none() {
        return Err(ctx.invalid(
            &format!("{key}.sslkey"),
            "missing: the agent's own connections need sslkey with sslcert",
        ));
    }
    let username = match (r.username, default_user) {
        (Some(u), _) if !u.is_empty() => u,
        (Some(_), _) => return Err(ctx.invalid(&format!("{key}.username"), "must not be empty")),
        (None, Some(d)) => d.to_owned(),
        (None, None) => return Err(ctx.invalid(&format!("{key}.username"), "missing")),
    };
    Ok(Credentials {
        username,
        password: r.password,
        conn,
    })
}

/// The libpq settings of one role (`sslmode`, `sslcert`, ...): strings, keywords checked.
fn conn_params(ctx: &mut Ctx<'_>, key: &str, r: &RawRole) -> Result<ConnParams> {
    let mut out = ConnParams::default();
    for (k, v) in r.libpq_settings() {
        let text = match v {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(ctx.invalid(
                    &format!("{key}.{k}"),
                    format!("expected a non-empty string, got {}", kind_of(other)),
                ));
            }
        };
        let allowed: &[&str] = match k {
            "sslmode" => &SSLMODES,
            "gssencmode" => &GSSENCMODES,
            "channel_binding" => &CHANNEL_BINDINGS,
            _ => &[],
        };
        if !allowed.is_empty() && !allowed.contains(&text.as_str()) {
            return Err(ctx.invalid(
                &format!("{key}.{k}"),
                format!("{text:?} is not one of {}", allowed.join(", ")),
            ));
        }
        if text.contains(['\n', '\r']) {
            return Err(ctx.invalid(&format!("{key}.{k}"), "must be one line"));
        }
        out.set(k, text);
    }
    Ok(out)
}

/// The first `unix_socket_directories` entry (relative entries are relative to the data
/// directory, as in PostgreSQL).
fn socket_dir(parameters: &BTreeMap<String, GucValue>, data_dir: &Path) -> Option<String> {
    let dirs = parameters.get("unix_socket_directories")?.to_plain();
    let first = dirs.split(',').map(str::trim).find(|d| !d.is_empty())?;
    let p = Path::new(first);
    Some(if p.is_absolute() {
        first.to_owned()
    } else {
        data_dir.join(p).display().to_string()
    })
}

/// Keys of `postgresql` we read but do not (fully) honour.
fn side_keys(raw: &RawPostgresql, data_dir: &Path, ctx: &mut Ctx<'_>) -> Result<()> {
    if is_set(&raw.pre_promote) {
        return Err(ctx.invalid(
            "postgresql.pre_promote",
            "not supported yet: the fencing script would not run before a promotion",
        ));
    }
    for (key, set) in [
        ("use_pg_rewind", raw.use_pg_rewind.is_some()),
        ("use_slots", raw.use_slots.is_some()),
    ] {
        if set {
            ctx.warn(
                &format!("postgresql.{key}"),
                format!("ignored here: {key} is read from the dynamic configuration (bootstrap.dcs.postgresql.{key})"),
            );
        }
    }
    if let Some(dir) = &raw.config_dir
        && dir != data_dir
    {
        ctx.warn(
            "postgresql.config_dir",
            "not supported yet; configuration files are written in data_dir",
        );
    }
    for (key, v) in [
        ("custom_conf", &raw.custom_conf),
        ("recovery_conf", &raw.recovery_conf),
        ("pg_ident", &raw.pg_ident),
        ("bin_name", &raw.bin_name),
        ("before_stop", &raw.before_stop),
    ] {
        if is_set(v) {
            ctx.warn(&format!("postgresql.{key}"), "not supported yet; ignored");
        }
    }
    Ok(())
}
