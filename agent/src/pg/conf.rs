//! The files the agent manages in and beside the data directory: `postgresql.conf`,
//! `pg_hba.conf`, `standby.signal`, the pgpass file and where the server log goes.
//!
//! Layout (Patroni's): initdb's own `postgresql.conf` is renamed `postgresql.base.conf` once,
//! and our `postgresql.conf` includes it first, so every setting we write wins over it.
//!
//! Invariants: rendering is pure (`render_*` functions) and unit-tested; writing replaces a
//! file atomically (temporary file in the same directory, then rename) so PostgreSQL never
//! reads half a file. Secrets only ever go to the pgpass file (mode 0600), never into
//! `postgresql.conf` or a log line. This module does not run programs or talk SQL.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Credentials, GucValue, PgError, PgSettings, Result, slot_name};
use crate::ha::{StartAs, Upstream};

/// Parameters we always write ourselves; a value for them in `parameters` is ignored.
pub const MANAGED_PARAMETERS: &[&str] = &[
    "listen_addresses",
    "port",
    "cluster_name",
    "primary_conninfo",
    "primary_slot_name",
    "recovery_target_timeline",
    "config_file",
    "data_directory",
];

/// initdb's configuration, kept under this name and included by ours.
pub const BASE_CONF: &str = "postgresql.base.conf";

/// `<data_dir>/postgresql.conf`.
pub fn postgresql_conf(data_dir: &Path) -> PathBuf {
    data_dir.join("postgresql.conf")
}

/// `<data_dir>/standby.signal`: present iff PostgreSQL is to start as a replica.
pub fn standby_signal(data_dir: &Path) -> PathBuf {
    data_dir.join("standby.signal")
}

/// The server log: `<parent of data_dir>/<data_dir file name>.log`, outside the data
/// directory so that pg_basebackup and pg_rewind do not copy it. pg_ctl always gets it (`-l`),
/// also with `logging_collector` on, when it only receives the lines before the collector
/// starts: without `-l` the postmaster would keep pg_ctl's captured stdout open.
pub fn server_log(data_dir: &Path) -> PathBuf {
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "postgresql".into());
    let parent = data_dir.parent().unwrap_or_else(|| Path::new("/"));
    parent.join(format!("{name}.log"))
}

/// A value for a libpq connection string: bare when it is a plain word, else single-quoted
/// with `\` and `'` escaped by a backslash.
pub fn conninfo_value(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| !c.is_whitespace() && c != '\'' && c != '\\' && c != '=');
    if plain {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// `primary_conninfo` towards `upstream`: the replication user, the pgpass file for its
/// password, and our member name as `application_name` (what `pg_stat_replication` and
/// synchronous replication see).
///
/// The replication role's libpq settings (`sslmode`, `sslcert`, ..., `channel_binding`) follow,
/// as Patroni writes them; `sslmode` defaults to `prefer`.
pub fn primary_conninfo(s: &PgSettings, upstream: &Upstream) -> String {
    let mut pairs = vec![
        ("host", upstream.conn.host.clone()),
        ("port", upstream.conn.port.to_string()),
        ("user", s.replication.username.clone()),
        ("passfile", s.pgpass.to_string_lossy().into_owned()),
        ("application_name", s.member.clone()),
        ("sslmode", s.replication.conn.sslmode().to_string()),
    ];
    pairs.extend(
        s.replication
            .conn
            .pairs()
            .into_iter()
            .filter(|(k, _)| *k != "sslmode")
            .map(|(k, v)| (k, v.to_string())),
    );
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", conninfo_value(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Our `postgresql.conf` for `role`.
pub fn render_postgresql_conf(s: &PgSettings, role: &StartAs) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by hapg's ha-agent for member {:?} of cluster {:?}.\n\
         # Rewritten before every start and on every configuration change: do not edit.\n\
         # Cluster-wide settings: `hactl edit-config`; local ones: the agent's YAML file.",
        s.member, s.scope
    );
    let _ = writeln!(out, "include_if_exists '{BASE_CONF}'\n");
    let str_guc = |v: &str| GucValue::Str(v.to_string()).to_conf();
    let _ = writeln!(out, "listen_addresses = {}", str_guc(&s.listen_addresses));
    let _ = writeln!(out, "port = {}", s.port);
    let _ = writeln!(out, "cluster_name = {}", str_guc(&s.scope));
    for (name, value) in &s.parameters {
        if MANAGED_PARAMETERS.contains(&name.to_ascii_lowercase().as_str()) || !is_guc_name(name) {
            continue;
        }
        let _ = writeln!(out, "{name} = {}", value.to_conf());
    }
    if let StartAs::Replica { upstream } = role {
        out.push('\n');
        if let Some(up) = upstream {
            let _ = writeln!(
                out,
                "primary_conninfo = {}",
                str_guc(&primary_conninfo(s, up))
            );
            if s.use_slots {
                let _ = writeln!(
                    out,
                    "primary_slot_name = {}",
                    str_guc(&slot_name(&s.member))
                );
            }
        }
        let _ = writeln!(out, "recovery_target_timeline = 'latest'");
    }
    out
}

/// The value of `name` in the `postgresql.conf` we wrote (a quoted string), if any.
pub fn written_value(data_dir: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(postgresql_conf(data_dir)).ok()?;
    parse_written(&text, name)
}

fn parse_written(text: &str, name: &str) -> Option<String> {
    let prefix = format!("{name} = '");
    let line = text.lines().rev().find(|l| l.starts_with(&prefix))?;
    let quoted = line.strip_prefix(&prefix)?.strip_suffix('\'')?;
    Some(quoted.replace("''", "'"))
}

/// A parameter name PostgreSQL could accept (letters, digits, `_` and `.` for extensions);
/// anything else would make the whole file unreadable, so it is left out.
fn is_guc_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// `pg_hba.conf` from configured lines.
pub fn render_hba(lines: &[String]) -> String {
    let mut out = String::from("# Written by hapg's ha-agent from its configuration.\n");
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// One pgpass field: `\` and `:` escaped with a backslash.
fn pgpass_field(v: &str) -> String {
    v.replace('\\', "\\\\").replace(':', "\\:")
}

/// The pgpass file: a line for the replication user and one for the rewind user (the
/// superuser when no rewind user is configured), for any host.
pub fn render_pgpass(s: &PgSettings) -> String {
    let rewind = s.rewind.as_ref().unwrap_or(&s.superuser);
    let mut out = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for c in [&s.replication, rewind] {
        push_pgpass_line(&mut out, &mut seen, c);
    }
    out
}

fn push_pgpass_line<'a>(out: &mut String, seen: &mut Vec<&'a str>, c: &'a Credentials) {
    if let Some(pw) = &c.password
        && !seen.contains(&c.username.as_str())
    {
        seen.push(&c.username);
        let _ = writeln!(
            out,
            "*:*:*:{}:{}",
            pgpass_field(&c.username),
            pgpass_field(pw)
        );
    }
}

/// Writes `contents` to `path` atomically with file mode `mode`.
pub fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let io = |what, source| PgError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{}.hapg-tmp",
        file_name.unwrap_or_else(|| "file".into())
    ));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io("create", e))?;
    f.write_all(contents.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io("write", e))?;
    // The mode given to open() is filtered by the umask; set it exactly.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(|e| io("chmod", e))?;
    fs::rename(&tmp, path).map_err(|e| io("rename to", e))
}

/// Writes everything PostgreSQL reads at start for `role`: `postgresql.conf`, `pg_hba.conf`
/// (when configured), the pgpass file and `standby.signal` (present iff replica).
pub fn write_for_start(s: &PgSettings, role: &StartAs) -> Result<()> {
    write_postgresql_conf(s, role)?;
    if let Some(lines) = &s.pg_hba {
        write_atomic(&s.data_dir.join("pg_hba.conf"), &render_hba(lines), 0o600)?;
    }
    write_pgpass(s)?;
    set_standby_signal(&s.data_dir, matches!(role, StartAs::Replica { .. }))
}

/// Writes `postgresql.conf` only (follow, reload).
pub fn write_postgresql_conf(s: &PgSettings, role: &StartAs) -> Result<()> {
    write_atomic(
        &postgresql_conf(&s.data_dir),
        &render_postgresql_conf(s, role),
        0o600,
    )
}

/// Writes the pgpass file (mode 0600).
pub fn write_pgpass(s: &PgSettings) -> Result<()> {
    write_atomic(&s.pgpass, &render_pgpass(s), 0o600)
}

/// Creates or removes `standby.signal`.
pub fn set_standby_signal(data_dir: &Path, present: bool) -> Result<()> {
    let path = standby_signal(data_dir);
    let res = if present {
        fs::write(&path, b"")
    } else {
        match fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    };
    res.map_err(|source| PgError::Io {
        what: if present { "create" } else { "remove" },
        path,
        source,
    })
}

#[cfg(test)]
pub(crate) mod tests;
