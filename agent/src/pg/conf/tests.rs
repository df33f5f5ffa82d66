//! Tests of the rendered files, and the `PgSettings` other tests start from.

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
