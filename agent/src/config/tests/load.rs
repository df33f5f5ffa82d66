//! Loading whole files: the Patroni sample, YAML 1.1 scalars, unknown and accepted keys,
//! environment overrides, and the file read itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;
use crate::config::{ConfigError, DynamicConfig};
use crate::ha::ConnTarget;
use crate::pg::{Credentials, GucValue};

/// PATRONI-COMPAT.md §1, with the placeholders filled in and the data directory under `dir`.
fn sample(data_dir: &Path) -> String {
    format!(
        r#"
scope: demo                 # cluster name
namespace: /service/        # key prefix, default /service/
name: node1                 # member name, unique in the cluster
restapi:
  listen: 0.0.0.0:8008
  connect_address: 10.0.0.1:8008
  authentication: {{username: admin, password: secret}}   # guards POST/PUT/PATCH/DELETE
  certfile: /path/cert.pem  # optional TLS; keyfile, cafile, verify_client
etcd3:
  hosts: [10.0.0.1:2379, 10.0.0.2:2379]   # or host: / url:
  use_proxies: false        # true: use hosts as given, never discover other etcd members
  protocol: http            # https with cacert, cert, key
  username: patroni         # etcd auth, optional
  password: etcd-pass
bootstrap:
  dcs:                      # seeds the cluster's `config` key once, at initialization
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
    maximum_lag_on_failover: 1048576
    synchronous_mode: false # true | quorum
    synchronous_mode_strict: false
    failsafe_mode: false
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters: {{max_connections: 100, wal_level: replica, hot_standby: "on", wal_log_hints: "on"}}
  initdb: [{{encoding: UTF8}}, data-checksums]
  pg_hba: [host replication replicator 127.0.0.1/32 md5, host all all 0.0.0.0/0 md5]
postgresql:
  listen: 0.0.0.0:5432
  connect_address: 10.0.0.1:5432
  data_dir: {data_dir}
  bin_dir: /usr/lib/postgresql/15/bin
  pgpass: /tmp/pgpass0
  authentication:
    replication: {{username: replicator, password: rep-pass}}
    superuser: {{username: postgres, password: su-pass}}
    rewind: {{username: rewind_user, password: rewind-pass}}
  parameters: {{unix_socket_directories: /tmp}}
  pg_hba: [local all all trust, host all all 0.0.0.0/0 md5]             # local override
  callbacks: {{on_start: /bin/true, on_stop: /bin/true, on_role_change: /bin/true}}
  create_replica_methods: [basebackup]
  basebackup: [{{max-rate: 100M}}, {{checkpoint: fast}}]
tags: {{nofailover: false, failover_priority: 1, noloadbalance: false, clonefrom: false, nosync: false}}
watchdog: {{mode: off, device: /dev/watchdog, safety_margin: 5}}
"#,
        data_dir = data_dir.display()
    )
}

fn creds(user: &str, pass: &str) -> Credentials {
    Credentials {
        username: user.into(),
        password: Some(pass.into()),
        ..Default::default()
    }
}

#[test]
fn patroni_sample_loads_with_the_expected_values_and_no_warnings() {
    let fx = Fixture::new();
    let (c, warnings) = load(&sample(&fx.data_dir())).expect("sample loads");
    assert_eq!(lines(&warnings), Vec::<String>::new());

    assert_eq!(c.path, PathBuf::from(FILE));
    assert_eq!(
        (c.scope.as_str(), c.namespace.as_str(), c.name.as_str()),
        ("demo", "/service/", "node1")
    );

    assert_eq!(
        c.restapi.listen,
        "0.0.0.0:8008".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.restapi.connect_address, "10.0.0.1:8008");
    assert_eq!(c.restapi.authentication, Some(creds("admin", "secret")));
    assert_eq!(c.restapi.certfile, Some(PathBuf::from("/path/cert.pem")));
    assert_eq!(
        c.restapi.keyfile,
        Some(PathBuf::from("/path/cert.pem")),
        "keyfile defaults to certfile"
    );
    assert_eq!(c.api_url(), "https://10.0.0.1:8008/patroni");

    assert_eq!(
        c.etcd.endpoints,
        ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
    );
    assert_eq!(c.etcd.username.as_deref(), Some("patroni"));
    assert_eq!(c.etcd.password.as_deref(), Some("etcd-pass"));

    let b = c.bootstrap.as_ref().expect("bootstrap");
    assert_eq!(b.initdb_args, ["--encoding=UTF8", "--data-checksums"]);
    assert_eq!(
        b.pg_hba.as_deref(),
        Some(
            &[
                "host replication replicator 127.0.0.1/32 md5".to_owned(),
                "host all all 0.0.0.0/0 md5".to_owned()
            ][..]
        )
    );
    assert_eq!(
        b.dcs["postgresql"]["parameters"]["hot_standby"],
        json!("on")
    );

    let pg = &c.postgresql;
    assert_eq!((pg.listen_addresses.as_str(), pg.port), ("0.0.0.0", 5432));
    assert_eq!(
        pg.connect_address,
        ConnTarget {
            host: "10.0.0.1".into(),
            port: 5432
        }
    );
    assert_eq!(c.conn_url(), "postgres://10.0.0.1:5432/postgres");
    assert_eq!(pg.data_dir, fx.data_dir());
    assert_eq!(pg.bin_dir, PathBuf::from("/usr/lib/postgresql/15/bin"));
    assert_eq!(pg.pgpass, PathBuf::from("/tmp/pgpass0"));
    assert_eq!(pg.local_host, "127.0.0.1");
    assert_eq!(pg.replication, creds("replicator", "rep-pass"));
    assert_eq!(pg.superuser, creds("postgres", "su-pass"));
    assert_eq!(pg.rewind, Some(creds("rewind_user", "rewind-pass")));
    assert_eq!(
        pg.parameters,
        BTreeMap::from([(
            "unix_socket_directories".to_owned(),
            GucValue::Str("/tmp".into())
        )])
    );
    assert_eq!(pg.pg_hba.as_ref().map(Vec::len), Some(2));
    assert_eq!(
        pg.callbacks.keys().collect::<Vec<_>>(),
        ["on_role_change", "on_start", "on_stop"]
    );
    assert_eq!(pg.basebackup_args, ["--max-rate=100M", "--checkpoint=fast"]);

    assert!(!c.tags.nofailover && !c.tags.noloadbalance && !c.tags.clonefrom && !c.tags.nosync);
    assert_eq!(c.tags.failover_priority, 1);
    assert_eq!(
        c.tags.raw,
        BTreeMap::from([("failover_priority".to_owned(), json!(1))])
    );
    assert_eq!((c.log.level.clone(), c.log.json), (None, false));

    let d = c.initial_dynamic();
    assert_eq!((d.ttl, d.loop_wait, d.retry_timeout), (30, 10, 10));
    assert_eq!(d.maximum_lag_on_failover, 1_048_576);
    assert!(d.use_pg_rewind && d.use_slots && !d.pause);
    assert_eq!(d.parameters["max_connections"], GucValue::Int(100));
    assert_eq!(d.parameters["hot_standby"], GucValue::Str("on".into()));
}

#[test]
fn yaml_on_and_off_are_booleans_and_render_as_on_and_off() {
    let fx = Fixture::new();
    let text = format!(
        "{}\n  parameters: {{hot_standby: on, autovacuum: off, log_connections: yes, unix_socket_permissions: 0770, quoted: 'on'}}\n",
        minimal_yaml(&fx)
    );
    let (c, _) = load(&text).expect("loads");
    let p = &c.postgresql.parameters;
    assert_eq!(p["hot_standby"], GucValue::Bool(true));
    assert_eq!(p["hot_standby"].to_conf(), "on");
    assert_eq!(p["autovacuum"], GucValue::Bool(false));
    assert_eq!(p["autovacuum"].to_conf(), "off");
    assert_eq!(p["log_connections"], GucValue::Bool(true));
    // PyYAML reads a leading zero as octal; so must we, or the socket mode changes.
    assert_eq!(p["unix_socket_permissions"], GucValue::Int(0o770));
    assert_eq!(p["quoted"], GucValue::Str("on".into()));
}

#[test]
fn yaml_booleans_in_bootstrap_dcs_reach_the_dynamic_configuration() {
    let fx = Fixture::new();
    let text = format!(
        "{}\nbootstrap:\n  dcs:\n    pause: no\n    postgresql:\n      use_pg_rewind: yes\n      parameters: {{hot_standby: on}}\n",
        minimal_yaml(&fx)
    );
    let (c, _) = load(&text).expect("loads");
    let d = c.initial_dynamic();
    assert!(d.use_pg_rewind && !d.pause);
    assert_eq!(d.parameters["hot_standby"], GucValue::Bool(true));
}

/// The minimal config as block YAML whose last line is inside `postgresql:`.
fn minimal_yaml(fx: &Fixture) -> String {
    format!(
        "scope: demo\nname: node1\nrestapi:\n  listen: 127.0.0.1:8008\netcd3:\n  host: 127.0.0.1:2379\npostgresql:\n  listen: 127.0.0.1:5432\n  data_dir: {}\n  authentication:\n    replication: {{username: replicator, password: x}}",
        fx.data_dir().display()
    )
}

#[test]
fn unknown_keys_give_one_warning_each_with_the_dotted_path() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "foo", json!(1));
    set(&mut v, "postgresql.foo", json!({"deep": [1, 2]}));
    set(&mut v, "restapi.bar", json!("x"));
    set(&mut v, "etcd3.baz", json!(true));
    set(
        &mut v,
        "bootstrap",
        json!({"dcs": {"qux": 1}, "custom_method": {"command": "x"}}),
    );
    let (_, warnings) = ok(&v);
    let mut got = lines(&warnings);
    got.sort();
    assert_eq!(
        got,
        [
            "unknown key bootstrap.custom_method ignored",
            "unknown key bootstrap.dcs.qux ignored",
            "unknown key etcd3.baz ignored",
            "unknown key foo ignored",
            "unknown key postgresql.foo ignored",
            "unknown key restapi.bar ignored",
        ]
    );
}

#[test]
fn patroni_keys_we_do_not_act_on_are_accepted_without_warnings() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "watchdog",
        json!({"mode": false, "device": "/dev/watchdog", "safety_margin": 5}),
    );
    set(&mut v, "ctl", json!({"insecure": true, "certfile": "/x"}));
    set(
        &mut v,
        "restapi.http_extra_headers",
        json!({"X-Frame-Options": "SAMEORIGIN"}),
    );
    set(&mut v, "restapi.request_queue_size", json!(5));
    set(&mut v, "etcd3.use_proxies", json!(true));
    set(
        &mut v,
        "postgresql.create_replica_methods",
        json!(["basebackup"]),
    );
    set(
        &mut v,
        "postgresql.remove_data_directory_on_rewind_failure",
        json!(true),
    );
    set(
        &mut v,
        "postgresql.remove_data_directory_on_diverged_timelines",
        json!(false),
    );
    set(&mut v, "postgresql.use_unix_socket", json!(true));
    set(&mut v, "postgresql.use_unix_socket_repl", json!(false));
    set(&mut v, "postgresql.pg_ctl_timeout", json!(60));
    set(&mut v, "postgresql.proxy_address", json!("10.0.0.9:5433"));
    set(
        &mut v,
        "postgresql.parameters",
        json!({"unix_socket_directories": "/var/run/postgresql,/tmp"}),
    );
    set(
        &mut v,
        "log",
        json!({"level": "INFO", "format": "%(asctime)s %(message)s", "dateformat": "%Y", "file_num": 4}),
    );
    let (c, warnings) = ok(&v);
    assert_eq!(lines(&warnings), Vec::<String>::new());
    assert_eq!(c.postgresql.local_host, "/var/run/postgresql");
    assert_eq!(c.log.level.as_deref(), Some("info"));
}

#[test]
fn partially_supported_features_warn_that_they_are_not_supported_yet() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "bootstrap",
        json!({"dcs": {"synchronous_mode": true, "failsafe_mode": "on", "standby_cluster": {"host": "10.1.1.1"}}}),
    );
    set(&mut v, "watchdog", json!({"mode": "automatic"}));
    let (_, warnings) = ok(&v);
    let got = lines(&warnings);
    // synchronous_mode is supported now: no warning about it.
    let key = "bootstrap.dcs.standby_cluster";
    assert!(
        got.iter()
            .any(|l| l.starts_with(&format!("{key}: ")) && l.contains("not supported yet")),
        "{key} in {got:?}"
    );
    assert_eq!(got.len(), 1, "{got:?}");
}

#[test]
fn local_values_of_settings_patroni_takes_only_from_the_dcs_warn_at_load() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "postgresql.parameters",
        json!({"max_connections": 500, "port": 6000, "shared_buffers": "1GB"}),
    );
    let (_, warnings) = ok(&v);
    let got = lines(&warnings);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("postgresql.parameters.max_connections: ignored"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("postgresql.parameters.port: ignored"),
        "{got:?}"
    );
}

#[test]
fn yaml_syntax_errors_give_line_and_column() {
    let err = load("scope: demo\nname: [node1\n").unwrap_err();
    let line = err.to_string();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{line}");
    assert!(
        line.starts_with(&format!("{FILE}: invalid YAML: ")),
        "{line}"
    );
    assert!(line.contains("line 2"), "{line}");
    assert!(!line.contains('\n'), "{line}");
    let err = load("- a\n- b\n").unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
}

#[test]
fn load_reads_the_file_and_reports_a_missing_one() {
    let fx = Fixture::new();
    let file = fx.path().join("node1.yml");
    std::fs::write(&file, serde_json::to_string(&fx.minimal()).unwrap()).unwrap();
    let (c, _) = Config::load(&file).expect("loads");
    assert_eq!(c.path, file);
    let missing = fx.path().join("nope.yml");
    let err = Config::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read: ", missing.display()))
    );
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let fx = Fixture::new();
    let (c, _) = ok(&fx.minimal());
    assert_eq!(c.namespace, "/service/");
    assert_eq!(c.restapi.connect_address, "127.0.0.1:8008");
    assert_eq!(
        c.postgresql.connect_address,
        ConnTarget {
            host: "127.0.0.1".into(),
            port: 5432
        }
    );
    assert_eq!(
        c.postgresql.superuser,
        Credentials {
            username: "postgres".into(),
            password: None,
            ..Default::default()
        }
    );
    assert_eq!(c.postgresql.pgpass, fx.path().join("pgpass.node1"));
    let expect_bin = if Path::new("/usr/lib/postgresql/15/bin").is_dir() {
        PathBuf::from("/usr/lib/postgresql/15/bin")
    } else {
        PathBuf::new()
    };
    assert_eq!(c.postgresql.bin_dir, expect_bin);
    assert!(c.bootstrap.is_none());
    assert_eq!(c.tags.failover_priority, 1);
    assert_eq!(c.initial_dynamic(), DynamicConfig::default());
    assert_eq!(c.api_url(), "http://127.0.0.1:8008/patroni");
}

#[test]
fn wildcard_listen_addresses_default_the_connect_addresses_to_loopback() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "restapi.listen", json!(":8008"));
    set(&mut v, "postgresql.listen", json!("*"));
    let (c, _) = ok(&v);
    assert_eq!(
        c.restapi.listen,
        "0.0.0.0:8008".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.restapi.connect_address, "127.0.0.1:8008");
    assert_eq!(
        (c.postgresql.listen_addresses.as_str(), c.postgresql.port),
        ("*", 5432)
    );
    assert_eq!(c.postgresql.local_host, "127.0.0.1");

    set(&mut v, "restapi.listen", json!("[::1]:8008"));
    set(&mut v, "postgresql.listen", json!("127.0.0.1,::1:5433"));
    let (c, _) = ok(&v);
    assert_eq!(c.restapi.connect_address, "[::1]:8008");
    assert_eq!(c.postgresql.listen_addresses, "127.0.0.1,::1");
    assert_eq!(c.postgresql.port, 5433);
}
