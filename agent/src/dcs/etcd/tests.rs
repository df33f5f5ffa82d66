//! Unit tests of `EtcdDcs` that need no etcd (the rest is in `ha-tests`, `dcs_etcd.rs`).

use super::txn::failover_pending;
use super::*;
use crate::dcs::{Dcs, DcsError};

#[test]
fn only_a_non_empty_failover_request_is_pending() {
    assert!(!failover_pending(b""));
    assert!(!failover_pending(b"{}"));
    assert!(!failover_pending(br#"{"leader":"","member":""}"#));
    assert!(!failover_pending(b"not json"));
    assert!(failover_pending(br#"{"leader":"a"}"#));
    assert!(failover_pending(br#"{"member":"b","scheduled_at":null}"#));
}

#[tokio::test]
async fn connect_needs_no_reachable_etcd_and_calls_fail_within_the_timeout() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let settings = EtcdSettings {
        endpoints: vec!["http://127.0.0.1:1".into()],
        ..Default::default()
    };
    let timeout = Duration::from_millis(500);
    let dcs = EtcdDcs::connect(&settings, Keys::new("/service/", "t"), "m", 10, timeout)
        .await
        .unwrap();
    let t = tokio::time::Instant::now();
    let err = dcs.cluster().await.unwrap_err();
    assert!(
        matches!(err, DcsError::Unavailable { op: "range", .. }),
        "{err}"
    );
    assert!(dcs.keepalive().await.is_err());
    assert!(t.elapsed() < timeout * 3, "took {:?}", t.elapsed());
}

#[tokio::test]
async fn mixed_or_empty_endpoints_are_refused() {
    let keys = Keys::new("/service/", "t");
    let d = Duration::from_secs(1);
    let none = EtcdSettings::default();
    assert!(
        EtcdDcs::connect(&none, keys.clone(), "m", 10, d)
            .await
            .is_err()
    );
    let mixed = EtcdSettings {
        endpoints: vec!["http://a:2379".into(), "https://b:2379".into()],
        ..Default::default()
    };
    assert!(EtcdDcs::connect(&mixed, keys, "m", 10, d).await.is_err());
}

#[tokio::test]
async fn unreadable_or_incomplete_tls_files_are_refused_at_connect() {
    let keys = Keys::new("/service/", "t");
    let d = Duration::from_secs(1);
    let https = |cacert: Option<&str>, cert: Option<&str>, key: Option<&str>| EtcdSettings {
        endpoints: vec!["https://127.0.0.1:2379".into()],
        cacert: cacert.map(Into::into),
        cert: cert.map(Into::into),
        key: key.map(Into::into),
        ..Default::default()
    };
    let missing = https(Some("/nonexistent/ca.pem"), None, None);
    let err = EtcdDcs::connect(&missing, keys.clone(), "m", 10, d)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DcsError::Invalid { what: "cacert", .. }),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    let half = https(None, cert.to_str(), None);
    let err = EtcdDcs::connect(&half, keys.clone(), "m", 10, d)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DcsError::Invalid { what: "cert", .. }),
        "{err}"
    );
    // Plain http with no TLS files needs no TLS at all.
    let plain = EtcdSettings {
        endpoints: vec!["http://127.0.0.1:2379".into()],
        ..Default::default()
    };
    assert!(EtcdDcs::connect(&plain, keys, "m", 10, d).await.is_ok());
}
