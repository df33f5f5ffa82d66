//! Validation rules of the `postgresql` and `bootstrap` sections.

use serde_json::json;

use super::*;

#[test]
fn postgresql_listen_and_connect_address_are_checked() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    remove(&mut v, "postgresql.listen");
    rejected(&v, "postgresql.listen");
    for bad in ["127.0.0.1:port", ":5432", "a,,b:5432"] {
        set(&mut v, "postgresql.listen", json!(bad));
        rejected(&v, "postgresql.listen");
    }
    let mut v = fx.minimal();
    set(&mut v, "postgresql.connect_address", json!("*:5432"));
    rejected(&v, "postgresql.connect_address");
}

#[test]
fn restapi_and_postgresql_may_not_share_a_port_on_one_host() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "restapi.listen", json!("0.0.0.0:5432"));
    assert!(rejected(&v, "restapi.listen").contains("5432"));
    set(&mut v, "restapi.listen", json!("127.0.0.1:5432"));
    set(&mut v, "postgresql.listen", json!("localhost:5432"));
    rejected(&v, "restapi.listen");
    // Different addresses on one port do not clash.
    set(&mut v, "restapi.listen", json!("10.0.0.1:5432"));
    set(&mut v, "postgresql.listen", json!("127.0.0.1:5432"));
    ok(&v);
}

#[test]
fn data_dir_is_required_and_its_parent_must_exist() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    remove(&mut v, "postgresql.data_dir");
    rejected(&v, "postgresql.data_dir");
    set(
        &mut v,
        "postgresql.data_dir",
        json!(fx.path().join("no/such/main")),
    );
    let line = rejected(&v, "postgresql.data_dir");
    assert!(line.contains("does not exist"), "{line}");
    assert!(
        !fx.path().join("no").exists(),
        "loading must not create anything"
    );
    set(&mut v, "postgresql.data_dir", json!(""));
    rejected(&v, "postgresql.data_dir");
}

#[test]
fn the_replication_user_is_required() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    remove(&mut v, "postgresql.authentication.replication");
    rejected(&v, "postgresql.authentication.replication");
    set(
        &mut v,
        "postgresql.authentication.replication",
        json!({"password": "x"}),
    );
    rejected(&v, "postgresql.authentication.replication.username");
    set(
        &mut v,
        "postgresql.authentication.rewind",
        json!({"password": "x"}),
    );
    set(
        &mut v,
        "postgresql.authentication.replication",
        json!({"username": "r"}),
    );
    rejected(&v, "postgresql.authentication.rewind.username");
}

#[test]
fn parameters_must_be_scalars() {
    let fx = Fixture::new();
    for bad in [json!(null), json!([1, 2]), json!({"a": 1})] {
        let mut v = fx.minimal();
        set(
            &mut v,
            "postgresql.parameters",
            json!({"shared_buffers": "1GB", "work_mem": bad}),
        );
        rejected(&v, "postgresql.parameters.work_mem");
    }
    let mut v = fx.minimal();
    set(
        &mut v,
        "postgresql.parameters",
        json!({"Work_Mem": "1MB", "work_mem": "2MB"}),
    );
    rejected(&v, "postgresql.parameters.work_mem");
}

#[test]
fn use_unix_socket_needs_a_socket_directory() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "postgresql.use_unix_socket", json!(true));
    rejected(&v, "postgresql.use_unix_socket");
    set(
        &mut v,
        "postgresql.parameters",
        json!({"unix_socket_directories": "."}),
    );
    let (c, _) = ok(&v);
    assert_eq!(
        c.postgresql.local_host,
        fx.data_dir().join(".").display().to_string()
    );
}

#[test]
fn only_the_initdb_bootstrap_method_is_supported() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "bootstrap",
        json!({"method": "wal_e", "wal_e": {"command": "x"}}),
    );
    rejected(&v, "bootstrap.method");
    set(
        &mut v,
        "bootstrap",
        json!({"method": "initdb", "post_bootstrap": "/bin/true"}),
    );
    rejected(&v, "bootstrap.post_bootstrap");
}

#[test]
fn initdb_and_basebackup_options_have_patroni_shapes() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "bootstrap",
        json!({"initdb": [{"encoding": "UTF8", "locale": "C"}]}),
    );
    rejected(&v, "bootstrap.initdb");
    set(
        &mut v,
        "bootstrap",
        json!({"initdb": [{"encoding": ["UTF8"]}]}),
    );
    rejected(&v, "bootstrap.initdb");
    set(&mut v, "bootstrap", json!({"initdb": ["pgdata"]}));
    rejected(&v, "bootstrap.initdb");
    set(&mut v, "bootstrap", json!({"initdb": "data-checksums"}));
    rejected(&v, "bootstrap.initdb");
    set(
        &mut v,
        "bootstrap",
        json!({"initdb": {"encoding": "UTF8", "wal-segsize": 32}}),
    );
    let (c, _) = ok(&v);
    assert_eq!(
        c.bootstrap.unwrap().initdb_args,
        ["--encoding=UTF8", "--wal-segsize=32"]
    );
    set(
        &mut v,
        "postgresql.basebackup",
        json!([{"wal-method": "fetch"}]),
    );
    rejected(&v, "postgresql.basebackup");
}

#[test]
fn watchdog_settings_are_read_like_patroni_and_checked() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "watchdog",
        json!({"mode": "required", "device": "/dev/watchdog1", "safety_margin": -1}),
    );
    let (c, _) = ok(&v);
    assert_eq!(c.watchdog.mode, crate::ha::WatchdogMode::Required);
    assert_eq!(
        c.watchdog.device,
        std::path::PathBuf::from("/dev/watchdog1")
    );
    assert_eq!(c.watchdog.safety_margin, None);
    set(&mut v, "watchdog", json!({"mode": "sometimes"}));
    rejected(&v, "watchdog.mode");
    set(
        &mut v,
        "watchdog",
        json!({"mode": "automatic", "safety_margin": "x"}),
    );
    rejected(&v, "watchdog.safety_margin");
    // The fence holds the watchdog: one without the other is refused.
    set(&mut v, "watchdog", json!({"mode": "automatic"}));
    set(&mut v, "fence", json!({"enabled": false}));
    rejected(&v, "watchdog.mode");
    // A safety margin that leaves no time between renewals is refused.
    set(&mut v, "fence", json!({"enabled": true}));
    set(
        &mut v,
        "watchdog",
        json!({"mode": "automatic", "safety_margin": 25}),
    );
    rejected(&v, "watchdog.safety_margin");
}

#[test]
fn the_fence_is_on_by_default_and_turning_it_off_is_warned_about() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    let (c, _) = ok(&v);
    assert!(c.fence.enabled);
    assert!(c.fence.socket.to_string_lossy().ends_with(".fence.sock"));
    set(&mut v, "fence", json!({"enabled": false}));
    let (c, warnings) = ok(&v);
    assert!(!c.fence.enabled);
    assert!(
        warnings
            .iter()
            .any(|w| w.0.starts_with("fence.enabled: false")),
        "{warnings:?}"
    );
    set(
        &mut v,
        "fence",
        json!({"socket": format!("/tmp/{}", "x".repeat(120))}),
    );
    rejected(&v, "fence.socket");
}

#[test]
fn create_replica_methods_must_include_basebackup() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "postgresql.create_replica_methods",
        json!(["wal_g"]),
    );
    rejected(&v, "postgresql.create_replica_methods");
    set(
        &mut v,
        "postgresql.create_replica_methods",
        json!(["wal_g", "basebackup"]),
    );
    let (_, w) = ok(&v);
    assert_eq!(w.len(), 1, "{w:?}");
}

#[test]
fn bootstrap_dcs_timing_must_leave_room_for_two_retries_in_one_ttl() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "bootstrap", json!({"dcs": {"ttl": 25}}));
    let line = rejected(&v, "bootstrap.dcs.ttl");
    assert!(
        line.ends_with(
            "25 is too small: loop_wait (10) + 2 * retry_timeout (10) must not exceed ttl"
        ),
        "{line}"
    );
    set(
        &mut v,
        "bootstrap",
        json!({"dcs": {"ttl": 20, "loop_wait": 5, "retry_timeout": 5}}),
    );
    ok(&v);
    set(
        &mut v,
        "bootstrap",
        json!({"dcs": {"ttl": 1, "loop_wait": 0, "retry_timeout": 0}}),
    );
    rejected(&v, "bootstrap.dcs.ttl");
    set(&mut v, "bootstrap", json!({"dcs": {"loop_wait": 0}}));
    rejected(&v, "bootstrap.dcs.loop_wait");
    set(
        &mut v,
        "bootstrap",
        json!({"dcs": {"retry_timeout": "soon"}}),
    );
    rejected(&v, "bootstrap.dcs.retry_timeout");
    set(
        &mut v,
        "bootstrap",
        json!({"dcs": {"postgresql": {"parameters": {"max_connections": 10}}}}),
    );
    rejected(&v, "bootstrap.dcs.postgresql.parameters.max_connections");
    set(&mut v, "bootstrap", json!({"dcs": [1]}));
    rejected(&v, "bootstrap.dcs");
}
