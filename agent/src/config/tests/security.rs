//! The security settings: client certificates, the allowlist, `ctl`, the libpq TLS settings
//! of each PostgreSQL role, and secrets kept out of `Debug` output.

use std::path::PathBuf;

use serde_json::json;

use super::{Fixture, lines, ok, rejected, set};
use crate::config::VerifyClient;
use crate::config::allowlist::{AllowEntry, IpNet};

#[test]
fn verify_client_needs_tls_and_a_ca_and_is_read_case_insensitively() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "restapi.verify_client", json!("optional"));
    rejected(&v, "restapi.verify_client");
    set(&mut v, "restapi.certfile", json!("/c.pem"));
    let why = rejected(&v, "restapi.verify_client");
    assert!(why.contains("cafile"), "{why}");
    set(&mut v, "restapi.cafile", json!("/ca.pem"));
    assert_eq!(ok(&v).0.restapi.verify_client, VerifyClient::Optional);
    set(&mut v, "restapi.verify_client", json!("REQUIRED"));
    assert_eq!(ok(&v).0.restapi.verify_client, VerifyClient::Required);
    set(&mut v, "restapi.verify_client", json!("none"));
    assert_eq!(ok(&v).0.restapi.verify_client, VerifyClient::None);
}

#[test]
fn allowlist_entries_are_networks_addresses_or_names_and_bad_ones_are_refused() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "restapi.allowlist",
        json!(["10.0.0.0/8", "127.0.0.1", "db1.example"]),
    );
    set(&mut v, "restapi.allowlist_include_members", json!("on"));
    let (c, _) = ok(&v);
    assert_eq!(
        c.restapi.allowlist,
        vec![
            AllowEntry::Net(IpNet::parse("10.0.0.0/8").unwrap()),
            AllowEntry::Net(IpNet::parse("127.0.0.1/32").unwrap()),
            AllowEntry::Host("db1.example".into()),
        ]
    );
    assert!(c.restapi.allowlist_include_members);
    // PATRONI_RESTAPI_ALLOWLIST gives text.
    set(
        &mut v,
        "restapi.allowlist",
        json!("[10.0.0.0/8, 192.0.2.7]"),
    );
    assert_eq!(ok(&v).0.restapi.allowlist.len(), 2);
    for bad in [json!(["10.0.0.0/40"]), json!([7]), json!({"a": 1})] {
        set(&mut v, "restapi.allowlist", bad);
        rejected(&v, "restapi.allowlist");
    }
    set(&mut v, "restapi.allowlist", json!([]));
    set(&mut v, "restapi.allowlist_include_members", json!("maybe"));
    rejected(&v, "restapi.allowlist_include_members");
}

#[test]
fn key_passphrases_are_read_as_secrets() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "restapi.keyfile_password", json!("pw-api-1"));
    rejected(&v, "restapi.keyfile_password");
    set(&mut v, "restapi.certfile", json!("/c.pem"));
    set(
        &mut v,
        "ctl",
        json!({"certfile": "/c", "keyfile_password": 1234}),
    );
    set(&mut v, "etcd3.protocol", json!("https"));
    set(&mut v, "etcd3.key", json!("/k.pem"));
    set(&mut v, "etcd3.cert", json!("/c.pem"));
    set(&mut v, "etcd3.key_password", json!("pw-etcd-2"));
    let (c, _) = ok(&v);
    let exposed = |s: &Option<crate::keyfile::Secret>| s.as_ref().map(|s| s.expose().to_string());
    assert_eq!(
        exposed(&c.restapi.keyfile_password).as_deref(),
        Some("pw-api-1")
    );
    assert_eq!(exposed(&c.ctl.keyfile_password).as_deref(), Some("1234"));
    assert_eq!(exposed(&c.etcd.key_password).as_deref(), Some("pw-etcd-2"));
    let text = format!("{c:?}");
    for s in ["pw-api-1", "pw-etcd-2"] {
        assert!(!text.contains(s), "{s} in {text}");
    }
    set(&mut v, "restapi.keyfile_password", json!(["x"]));
    let why = rejected(&v, "restapi.keyfile_password");
    assert!(why.contains("a list"), "{why}");
}

#[test]
fn ctl_section_gives_the_client_certificate() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "ctl",
        json!({"certfile": "/c.pem", "cacert": "/ca.pem", "insecure": "yes",
               "authentication": {"username": "u", "password": "p"}}),
    );
    let (c, w) = ok(&v);
    assert_eq!(c.ctl.certfile, Some(PathBuf::from("/c.pem")));
    assert_eq!(c.ctl.keyfile, Some(PathBuf::from("/c.pem")));
    assert_eq!(c.ctl.cacert, Some(PathBuf::from("/ca.pem")));
    assert!(c.ctl.insecure);
    assert!(lines(&w).is_empty(), "{w:?}");
    set(&mut v, "ctl", json!({"keyfile": "/k.pem"}));
    rejected(&v, "ctl.keyfile");
    set(&mut v, "ctl", json!({"insecure": "perhaps"}));
    rejected(&v, "ctl.insecure");
}

#[test]
fn role_tls_settings_are_passed_on_and_checked() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(
        &mut v,
        "postgresql.authentication.replication",
        json!({"username": "replicator", "password": "rep-pass", "sslmode": "verify-full",
               "sslrootcert": "/ca.pem", "sslcert": "/r.crt", "sslkey": "/r.key",
               "sslpassword": "key-pass", "gssencmode": "disable", "channel_binding": "require",
               "sslcrl": "/crl.pem"}),
    );
    let (c, w) = ok(&v);
    assert!(lines(&w).is_empty(), "{w:?}");
    let r = &c.postgresql.replication.conn;
    assert_eq!(r.sslmode.as_deref(), Some("verify-full"));
    assert_eq!(r.sslpassword.as_deref(), Some("key-pass"));
    assert_eq!(r.pairs().len(), 8);
    // Secrets stay out of Debug output (logs, panics).
    let text = format!("{c:?}");
    for secret in ["key-pass", "rep-pass"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    set(
        &mut v,
        "postgresql.authentication.replication.sslmode",
        json!("verify"),
    );
    rejected(&v, "postgresql.authentication.replication.sslmode");
    set(
        &mut v,
        "postgresql.authentication.replication.sslmode",
        json!(true),
    );
    rejected(&v, "postgresql.authentication.replication.sslmode");
}

#[test]
fn what_the_agents_own_connections_cannot_honour_is_refused_for_superuser_and_rewind() {
    let fx = Fixture::new();
    for role in ["superuser", "rewind"] {
        for (k, val) in [("sslpassword", "x"), ("gssencmode", "require")] {
            let mut v = fx.minimal();
            set(
                &mut v,
                &format!("postgresql.authentication.{role}"),
                json!({"username": "u", "password": "p", k: val}),
            );
            rejected(&v, &format!("postgresql.authentication.{role}.{k}"));
        }
        let mut v = fx.minimal();
        set(
            &mut v,
            &format!("postgresql.authentication.{role}"),
            json!({"username": "u", "password": "p", "sslcert": "/c.crt"}),
        );
        rejected(&v, &format!("postgresql.authentication.{role}.sslkey"));
        set(
            &mut v,
            &format!("postgresql.authentication.{role}"),
            json!({"username": "u", "password": "p", "sslmode": "verify-ca",
                   "sslrootcert": "/ca.pem", "channel_binding": "require"}),
        );
        ok(&v);
    }
}

#[test]
fn etcd_password_stays_out_of_debug_output() {
    let fx = Fixture::new();
    let mut v = fx.minimal();
    set(&mut v, "etcd3.username", json!("hapg"));
    set(&mut v, "etcd3.password", json!("etcd-secret-pw"));
    let (c, _) = ok(&v);
    assert_eq!(c.etcd.password.as_deref(), Some("etcd-secret-pw"));
    assert!(!format!("{c:?}").contains("etcd-secret-pw"));
}
