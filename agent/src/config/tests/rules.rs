//! Each validation rule rejects with a one-line message that names the file and the key.

use serde_json::json;

use super::*;

#[test]
fn scope_and_name_are_required_and_not_empty() {
    let fx = Fixture::new();
    for key in ["scope", "name"] {
        let mut v = fx.minimal();
        remove(&mut v, key);
        assert!(rejected(&v, key).ends_with("missing"));
        set(&mut v, key, json!("  "));
        rejected(&v, key);
    }
    let mut v = fx.minimal();
    set(&mut v, "scope", json!("a/b"));
    rejected(&v, "scope");
}

#[test]
fn member_names_must_be_safe_etcd_key_segments_and_slot_names() {
    let fx = Fixture::new();
    for bad in ["node/1", "node 1", "..", ".", "nöde", &"n".repeat(64)] {
        let mut v = fx.minimal();
        set(&mut v, "name", json!(bad));
        rejected(&v, "name");
    }
    for good in ["node-1", "Node_1.a", &"n".repeat(63)] {
        let mut v = fx.minimal();
        set(&mut v, "name", json!(good));
        ok(&v);
    }
}

#[test]
fn only_etcd3_is_supported_as_dcs() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    remove(&mut v, "etcd3");
    assert!(rejected(&v, "etcd3").contains("missing"));
    for dcs in ["etcd", "consul", "zookeeper", "kubernetes", "raft"] {
        let mut v = fx.minimal();
        remove(&mut v, "etcd3");
        set(&mut v, dcs, json!({"hosts": "127.0.0.1:2379"}));
        assert!(rejected(&v, dcs).contains("only etcd3 is supported"));
    }
    let mut v = fx.minimal();
    set(&mut v, "citus", json!({"group": 0, "database": "citus"}));
    rejected(&v, "citus");
    // Next to etcd3, another DCS section is only a warning.
    let mut v = fx.minimal();
    set(&mut v, "etcd", json!({"host": "127.0.0.1:2379"}));
    let (_, w) = ok(&v);
    assert_eq!(lines(&w), ["etcd: ignored: only etcd3 is used"]);
}

#[test]
fn etcd3_needs_endpoints_with_valid_ports_and_a_known_protocol() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "etcd3", json!({"protocol": "http"}));
    rejected(&v, "etcd3");
    set(&mut v, "etcd3", json!({"hosts": ["a:2379", "b:notaport"]}));
    rejected(&v, "etcd3.hosts");
    set(&mut v, "etcd3", json!({"hosts": []}));
    rejected(&v, "etcd3.hosts");
    set(&mut v, "etcd3", json!({"hosts": ["http://a:2379"]}));
    rejected(&v, "etcd3.hosts");
    set(&mut v, "etcd3", json!({"host": "a", "protocol": "ftp"}));
    rejected(&v, "etcd3.protocol");
    set(&mut v, "etcd3", json!({"host": "a", "username": "u"}));
    rejected(&v, "etcd3.password");
    set(&mut v, "etcd3", json!({"host": "a", "srv": "example.com"}));
    rejected(&v, "etcd3.srv");
    set(&mut v, "etcd3", json!({"url": "a:2379"}));
    rejected(&v, "etcd3.url");
}

#[test]
fn etcd3_endpoints_carry_the_scheme_and_the_default_port() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "etcd3",
        json!({"hosts": "a, b:2380", "protocol": "https", "cacert": "/ca.pem"}),
    );
    let (c, w) = ok(&v);
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.etcd.endpoints, ["https://a:2379", "https://b:2380"]);
    assert_eq!(
        c.etcd.cacert.as_deref(),
        Some(std::path::Path::new("/ca.pem"))
    );
    set(
        &mut v,
        "etcd3",
        json!({"url": "https://user:pw@e:2390", "host": "ignored:1"}),
    );
    let (c, w) = ok(&v);
    assert_eq!(c.etcd.endpoints, ["https://e:2390"]);
    assert_eq!(
        (c.etcd.username.as_deref(), c.etcd.password.as_deref()),
        (Some("user"), Some("pw"))
    );
    assert_eq!(lines(&w), ["etcd3.host: ignored: etcd3.url is used"]);
    set(&mut v, "etcd3", json!({"host": "[::1]", "port": 2391}));
    let (c, _) = ok(&v);
    assert_eq!(c.etcd.endpoints, ["http://[::1]:2391"]);
}

#[test]
fn restapi_listen_must_be_an_ip_and_port() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    remove(&mut v, "restapi.listen");
    rejected(&v, "restapi.listen");
    for bad in [
        "example.com:8008",
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:70000",
        "a,b:8008",
    ] {
        set(&mut v, "restapi.listen", json!(bad));
        rejected(&v, "restapi.listen");
    }
    set(&mut v, "restapi.listen", json!("localhost:8008"));
    let (c, _) = ok(&v);
    assert_eq!(c.restapi.listen.to_string(), "127.0.0.1:8008");
}

#[test]
fn restapi_connect_address_must_be_a_concrete_host_and_port() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    for bad in ["0.0.0.0:8008", "10.0.0.1", "10.0.0.1:x"] {
        set(&mut v, "restapi.connect_address", json!(bad));
        rejected(&v, "restapi.connect_address");
    }
}

#[test]
fn restapi_authentication_needs_username_and_password() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "restapi.authentication",
        json!({"username": "admin"}),
    );
    rejected(&v, "restapi.authentication.password");
    set(&mut v, "restapi.authentication", json!({"password": "pw"}));
    rejected(&v, "restapi.authentication.username");
}

#[test]
fn restapi_tls_settings_must_fit_together() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "restapi.keyfile", json!("/k.pem"));
    rejected(&v, "restapi.keyfile");
    let mut v = fx.minimal();
    set(&mut v, "restapi.certfile", json!("/c.pem"));
    set(&mut v, "restapi.verify_client", json!("required"));
    rejected(&v, "restapi.verify_client");
    set(&mut v, "restapi.verify_client", json!("sometimes"));
    rejected(&v, "restapi.verify_client");
}

#[test]
fn tags_are_read_like_patroni_and_bad_ones_rejected() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "tags", json!({"failover_priority": -1}));
    rejected(&v, "tags.failover_priority");
    set(&mut v, "tags", json!({"nofailover": "maybe"}));
    rejected(&v, "tags.nofailover");
    set(
        &mut v,
        "tags",
        json!({"nofailover": "on", "noloadbalance": "true", "nosync": false, "zone": "a"}),
    );
    let (c, _) = ok(&v);
    assert!(c.tags.nofailover && c.tags.noloadbalance && !c.tags.nosync);
    assert_eq!(c.tags.failover_priority, 0);
    assert_eq!(
        c.tags.raw,
        BTreeMap::from([
            ("nofailover".to_owned(), json!("on")),
            ("noloadbalance".to_owned(), json!("true")),
            ("zone".to_owned(), json!("a")),
        ])
    );
    set(&mut v, "tags", json!({"failover_priority": 0}));
    let (c, _) = ok(&v);
    assert!(c.tags.nofailover, "failover_priority 0 means nofailover");
    set(&mut v, "tags", json!({"failover_priority": 5}));
    let (c, _) = ok(&v);
    assert_eq!((c.tags.nofailover, c.tags.failover_priority), (false, 5));
}

#[test]
fn log_level_and_format_are_read_like_patroni() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "log", json!({"level": "LOUD"}));
    rejected(&v, "log.level");
    set(&mut v, "log", json!({"type": "xml"}));
    rejected(&v, "log.type");
    for (level, want) in [
        ("DEBUG", "debug"),
        ("warning", "warn"),
        ("CRITICAL", "error"),
        ("ERROR", "error"),
    ] {
        set(&mut v, "log", json!({"level": level}));
        assert_eq!(ok(&v).0.log.level.as_deref(), Some(want));
    }
    set(&mut v, "log", json!({"type": "json"}));
    assert!(ok(&v).0.log.json);
    set(&mut v, "log", json!({"format": "json"}));
    assert!(ok(&v).0.log.json);
    set(&mut v, "log", json!({"format": "%(message)s json"}));
    assert!(!ok(&v).0.log.json);
}

#[test]
fn a_type_error_names_the_dotted_key() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "postgresql.listen", json!(5432));
    rejected(&v, "postgresql.listen");
    let mut v = fx.minimal();
    set(&mut v, "restapi", json!("0.0.0.0:8008"));
    rejected(&v, "restapi");
    let mut v = fx.minimal();
    set(
        &mut v,
        "postgresql.authentication.replication.password",
        json!(["x"]),
    );
    rejected(&v, "postgresql.authentication.replication.password");
}
