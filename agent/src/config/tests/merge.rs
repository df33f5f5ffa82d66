//! What the HA core and PostgreSQL get: parameter merging as Patroni does it, and the
//! conversion into `HaConfig` and `PgSettings`.

use serde_json::json;

use super::*;
use crate::config::DynamicConfig;
use crate::ha::Millis;
use crate::pg::GucValue::{self, Bool, Int, Str};

fn dynamic(v: serde_json::Value) -> DynamicConfig {
    DynamicConfig::validate(&v).expect("valid dynamic config")
}

fn config_with_local(params: serde_json::Value) -> (Fixture, Config) {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "postgresql.parameters", params);
    let (c, _) = ok(&v);
    (fx, c)
}

#[test]
fn patronis_defaults_apply_when_nothing_is_set() {
    let (_fx, c) = config_with_local(json!({}));
    let p = c.pg_settings(&DynamicConfig::default()).parameters;
    let want: BTreeMap<String, GucValue> = [
        ("max_connections", Int(100)),
        ("max_locks_per_transaction", Int(64)),
        ("max_worker_processes", Int(8)),
        ("max_prepared_transactions", Int(0)),
        ("wal_level", Str("replica".into())),
        ("track_commit_timestamp", Bool(false)),
        ("max_wal_senders", Int(10)),
        ("max_replication_slots", Int(10)),
        ("wal_keep_size", Str("128MB".into())),
        ("hot_standby", Bool(true)),
        ("wal_log_hints", Bool(true)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(p, want);
}

#[test]
fn dynamic_values_override_defaults_and_local_values_override_dynamic_ones() {
    let (_fx, c) = config_with_local(json!({"shared_buffers": "1GB", "work_mem": "8MB"}));
    let d = dynamic(
        json!({"postgresql": {"parameters": {"max_connections": 200, "shared_buffers": "128MB", "wal_keep_size": "1GB"}}}),
    );
    let p = c.pg_settings(&d).parameters;
    assert_eq!(p["max_connections"], Int(200));
    assert_eq!(p["wal_keep_size"], Str("1GB".into()));
    assert_eq!(
        p["shared_buffers"],
        Str("1GB".into()),
        "local wins for ordinary settings"
    );
    assert_eq!(p["work_mem"], Str("8MB".into()));
}

#[test]
fn local_values_of_dcs_only_settings_are_ignored() {
    let (_fx, c) = config_with_local(
        json!({"max_connections": 500, "wal_level": "logical", "Max_Wal_Senders": 20}),
    );
    let d = dynamic(json!({"postgresql": {"parameters": {"max_connections": 300}}}));
    let p = c.pg_settings(&d).parameters;
    assert_eq!(p["max_connections"], Int(300));
    assert_eq!(p["wal_level"], Str("replica".into()));
    assert_eq!(p["max_wal_senders"], Int(10));
}

#[test]
fn wal_log_hints_is_forced_on_under_use_pg_rewind_and_hot_standby_always() {
    let (_fx, c) = config_with_local(json!({"hot_standby": false}));
    let off = json!({"postgresql": {"parameters": {"wal_log_hints": "off"}}});
    let mut with_rewind = off.clone();
    with_rewind["postgresql"]["use_pg_rewind"] = json!(true);
    let p = c.pg_settings(&dynamic(with_rewind)).parameters;
    assert_eq!(
        (&p["wal_log_hints"], &p["hot_standby"]),
        (&Bool(true), &Bool(true))
    );
    let p = c.pg_settings(&dynamic(off)).parameters;
    assert_eq!(
        (&p["wal_log_hints"], &p["hot_standby"]),
        (&Str("off".into()), &Bool(true))
    );
}

#[test]
fn settings_the_agent_writes_itself_are_removed() {
    let (_fx, c) = config_with_local(
        json!({"listen_addresses": "*", "port": 6000, "primary_conninfo": "host=x",
        "restore_command": "cp x y", "hba_file": "/x", "cluster_name": "other"}),
    );
    let d = dynamic(
        json!({"postgresql": {"parameters": {"primary_slot_name": "s", "synchronous_standby_names": "*"}}}),
    );
    let p = c.pg_settings(&d).parameters;
    for k in [
        "listen_addresses",
        "port",
        "primary_conninfo",
        "restore_command",
        "hba_file",
        "cluster_name",
        "primary_slot_name",
        "synchronous_standby_names",
    ] {
        assert!(!p.contains_key(k), "{k} must not be in {p:?}");
    }
}

#[test]
fn wal_keep_segments_becomes_wal_keep_size_and_hot_standby_level_becomes_replica() {
    let (_fx, c) = config_with_local(json!({}));
    let d = dynamic(
        json!({"postgresql": {"parameters": {"wal_keep_segments": 32, "wal_level": "hot_standby"}}}),
    );
    let p = c.pg_settings(&d).parameters;
    assert!(
        !p.contains_key("wal_keep_segments"),
        "PostgreSQL 13+ refuses the old name"
    );
    assert_eq!(p["wal_keep_size"], Str("512MB".into()));
    assert_eq!(p["wal_level"], Str("replica".into()));
    let d = dynamic(
        json!({"postgresql": {"parameters": {"wal_keep_segments": 32, "wal_keep_size": "2GB"}}}),
    );
    assert_eq!(
        c.pg_settings(&d).parameters["wal_keep_size"],
        Str("2GB".into())
    );
}

#[test]
fn pg_settings_carry_the_local_settings_and_dynamic_flags() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "bootstrap",
        json!({"initdb": ["data-checksums"], "pg_hba": ["local all all trust"]}),
    );
    set(
        &mut v,
        "postgresql.basebackup",
        json!({"checkpoint": "fast"}),
    );
    let (c, _) = ok(&v);
    let d = dynamic(
        json!({"postgresql": {"use_slots": false, "pg_hba": ["host all all 0.0.0.0/0 md5"]}}),
    );
    let s = c.pg_settings(&d);
    assert_eq!((s.scope.as_str(), s.member.as_str()), ("demo", "node1"));
    assert_eq!(s.data_dir, fx.data_dir());
    assert_eq!((s.listen_addresses.as_str(), s.port), ("127.0.0.1", 5432));
    assert_eq!(s.local_host, "127.0.0.1");
    assert!(!s.use_slots);
    assert_eq!(s.initdb_args, ["--data-checksums"]);
    assert_eq!(s.basebackup_args, ["--checkpoint=fast"]);
    assert_eq!(
        s.bootstrap_pg_hba,
        Some(vec!["local all all trust".to_owned()])
    );
    assert_eq!(
        s.pg_hba,
        Some(vec!["host all all 0.0.0.0/0 md5".to_owned()]),
        "the cluster's pg_hba when there is no local one"
    );
    assert_eq!(s.pgpass, fx.path().join("pgpass.node1"));
}

#[test]
fn ha_config_takes_timing_from_the_dynamic_config_and_nofailover_from_tags() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "tags", json!({"failover_priority": 0}));
    set(&mut v, "bootstrap", json!({"dcs": {"ttl": 40}}));
    let (c, _) = ok(&v);
    let d = dynamic(
        json!({"ttl": 40, "loop_wait": 5, "retry_timeout": 7, "maximum_lag_on_failover": 99,
        "master_start_timeout": 0, "pause": true, "postgresql": {"use_pg_rewind": true, "use_slots": false}}),
    );
    let h = c.ha_config(&d);
    assert_eq!(
        (h.ttl, h.loop_wait, h.retry_timeout, h.primary_start_timeout),
        (Millis(40_000), Millis(5_000), Millis(7_000), Millis(0))
    );
    assert_eq!(h.maximum_lag_on_failover, 99);
    assert!(h.use_pg_rewind && !h.use_slots && h.pause);
    assert!(h.nofailover && h.can_bootstrap);
    assert_eq!(h.failover_priority, 0);
    assert_eq!(c.initial_dynamic().ttl, 40);

    let (c, _) = ok(&fx.minimal());
    let h = c.ha_config(&DynamicConfig::default());
    assert!(!h.nofailover && !h.can_bootstrap);
    assert_eq!(h.failover_priority, 1);
}
