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
pub(crate) mod tests {
    use super::*;
    use crate::ha::{ConnTarget, MemberName};
    use std::collections::BTreeMap;

    pub(crate) fn settings() -> PgSettings {
        PgSettings {
            scope: "demo".into(),
            member: "node-1".into(),
            data_dir: "/var/lib/postgresql/15/main".into(),
            bin_dir: "/usr/lib/postgresql/15/bin".into(),
            listen_addresses: "0.0.0.0".into(),
            port: 5432,
            connect_address: ConnTarget {
                host: "10.0.0.1".into(),
                port: 5432,
            },
            local_host: "/tmp".into(),
            superuser: Credentials {
                username: "postgres".into(),
                password: Some("su".into()),
                ..Default::default()
            },
            replication: Credentials {
                username: "replicator".into(),
                password: Some("re:p\\w".into()),
                ..Default::default()
            },
            rewind: None,
            parameters: BTreeMap::from([
                ("max_connections".into(), GucValue::Int(100)),
                ("hot_standby".into(), GucValue::Bool(true)),
                ("port".into(), GucValue::Int(1)),
                ("bad name".into(), GucValue::Int(1)),
            ]),
            pg_hba: None,
            bootstrap_pg_hba: None,
            initdb_args: vec![],
            basebackup_args: vec![],
            pgpass: "/tmp/pg pass".into(),
            use_slots: true,
            callbacks: BTreeMap::new(),
            repo_clone: None,
            repo_bootstrap: None,
        }
    }

    #[test]
    fn a_written_string_value_is_read_back() {
        let mut s = settings();
        s.parameters.insert(
            "synchronous_standby_names".into(),
            GucValue::Str("FIRST 1 (\"pg2\")".into()),
        );
        let text = render_postgresql_conf(&s, &StartAs::Primary);
        assert_eq!(
            parse_written(&text, "synchronous_standby_names").as_deref(),
            Some("FIRST 1 (\"pg2\")")
        );
        assert_eq!(parse_written(&text, "nothing"), None);
    }

    #[test]
    fn server_log_sits_beside_the_data_directory() {
        assert_eq!(
            server_log(Path::new("/var/lib/postgresql/15/main")),
            PathBuf::from("/var/lib/postgresql/15/main.log")
        );
    }

    #[test]
    fn conninfo_values_are_quoted_only_when_needed() {
        assert_eq!(conninfo_value("10.0.0.1"), "10.0.0.1");
        assert_eq!(conninfo_value(""), "''");
        assert_eq!(conninfo_value("a b"), "'a b'");
        assert_eq!(conninfo_value("it's\\"), "'it\\'s\\\\'");
    }

    #[test]
    fn primary_postgresql_conf_has_managed_settings_and_no_conninfo() {
        let text = render_postgresql_conf(&settings(), &StartAs::Primary);
        assert!(text.contains("include_if_exists 'postgresql.base.conf'\n"));
        assert!(text.contains("listen_addresses = '0.0.0.0'\n"));
        assert!(text.contains("port = 5432\n"));
        assert!(!text.contains("port = 1\n"), "managed parameter overridden");
        assert!(!text.contains("bad name"));
        assert!(text.contains("cluster_name = 'demo'\n"));
        assert!(text.contains("hot_standby = on\n"));
        assert!(text.contains("max_connections = 100\n"));
        assert!(!text.contains("primary_conninfo"));
        assert!(!text.contains("recovery_target_timeline"));
    }

    #[test]
    fn replica_postgresql_conf_streams_from_upstream_with_slot() {
        let up = Upstream {
            name: MemberName::new("node2"),
            conn: ConnTarget {
                host: "10.0.0.2".into(),
                port: 5433,
            },
        };
        let text = render_postgresql_conf(&settings(), &StartAs::Replica { upstream: Some(up) });
        assert!(text.contains(
            "primary_conninfo = 'host=10.0.0.2 port=5433 user=replicator \
             passfile=''/tmp/pg pass'' application_name=node-1 sslmode=prefer'\n"
        ));
        assert!(text.contains("primary_slot_name = 'node_1'\n"));
        assert!(text.contains("recovery_target_timeline = 'latest'\n"));
        let none = render_postgresql_conf(&settings(), &StartAs::Replica { upstream: None });
        assert!(!none.contains("primary_conninfo"));
        assert!(none.contains("recovery_target_timeline = 'latest'\n"));
    }

    #[test]
    fn replication_tls_settings_go_into_primary_conninfo() {
        let up = Upstream {
            name: MemberName::new("node2"),
            conn: ConnTarget {
                host: "10.0.0.2".into(),
                port: 5433,
            },
        };
        let mut s = settings();
        s.replication.conn.sslmode = Some("verify-full".into());
        s.replication.conn.sslrootcert = Some("/etc/ssl/ca dir/ca.pem".into());
        s.replication.conn.channel_binding = Some("require".into());
        let info = primary_conninfo(&s, &up);
        assert!(
            info.ends_with(
                "sslmode=verify-full sslrootcert='/etc/ssl/ca dir/ca.pem' channel_binding=require"
            ),
            "{info}"
        );
        assert_eq!(info.matches("sslmode=").count(), 1, "{info}");
    }

    #[test]
    fn pgpass_escapes_and_deduplicates_users() {
        let mut s = settings();
        assert_eq!(
            render_pgpass(&s),
            "*:*:*:replicator:re\\:p\\\\w\n*:*:*:postgres:su\n"
        );
        s.rewind = Some(s.replication.clone());
        assert_eq!(render_pgpass(&s), "*:*:*:replicator:re\\:p\\\\w\n");
    }

    #[test]
    fn files_are_written_atomically_with_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pgpass");
        write_atomic(&p, "a\n", 0o600).unwrap();
        write_atomic(&p, "b\n", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "b\n");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
