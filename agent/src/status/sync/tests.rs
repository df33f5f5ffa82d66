//! The REST API's reading of the `sync` key: roles and shortfall.

use serde_json::json;

use super::*;
use crate::dcs::{Keys, RawKv};

fn cluster(config: &str, sync: &str) -> Cluster {
    cluster_streaming(config, sync, &[])
}

/// With member records for `streaming`, which report `replication_state: streaming`.
fn cluster_streaming(config: &str, sync: &str, streaming: &[&str]) -> Cluster {
    let keys = Keys::new("/service", "demo");
    let kv = |k: &str, v: &str| (format!("/service/demo/{k}"), v.to_string());
    let mut kvs = vec![kv("leader", "pg1"), kv("config", config), kv("sync", sync)];
    for m in streaming {
        let record = json!({"conn_url": "postgres://127.0.0.1:5432/postgres",
            "api_url": "http://127.0.0.1:8008/patroni", "state": "running", "role": "replica",
            "replication_state": "streaming"});
        kvs.push(kv(&format!("members/{m}"), &record.to_string()));
    }
    Cluster::from_kvs(
        &keys,
        kvs.iter().map(|(k, v)| RawKv {
            key: k,
            value: v.as_bytes(),
            mod_revision: 1,
            lease: 0,
        }),
    )
}

#[test]
fn fewer_sync_standbys_than_asked_is_reported() {
    let on = json!({"synchronous_mode": true}).to_string();
    let named = r#"{"leader":"pg1","sync_standby":"pg2"}"#;
    assert_eq!(shortfall(&cluster(&on, named)), None);
    let none = r#"{"leader":"pg1","sync_standby":null}"#;
    assert_eq!(
        shortfall(&cluster(&on, none)).as_deref(),
        Some(
            "synchronous mode: 0 of 1 synchronous standby(s); replication fell back to asynchronous"
        )
    );
    let strict = json!({"synchronous_mode": true, "synchronous_mode_strict": true}).to_string();
    assert!(
        shortfall(&cluster(&strict, none))
            .unwrap()
            .contains("(strict)")
    );
    let two = json!({"synchronous_mode": true, "synchronous_node_count": 2}).to_string();
    assert_eq!(
        shortfall(&cluster(&two, named)).as_deref(),
        Some("synchronous mode: 1 of 2 synchronous standby(s)")
    );
    let off = json!({"synchronous_mode": false}).to_string();
    assert_eq!(shortfall(&cluster(&off, none)), None);
}

#[test]
fn a_sync_standby_is_named_by_the_current_leaders_key_in_sync_mode() {
    let on = json!({"synchronous_mode": "on"}).to_string();
    let key = r#"{"leader":"pg1","sync_standby":"pg2"}"#;
    assert!(is_sync_standby(&cluster(&on, key), "pg2"));
    assert!(!is_sync_standby(&cluster(&on, key), "pg3"));
    assert!(!is_sync_standby(&cluster(&on, key), "pg1"), "the leader");
    let off = json!({"synchronous_mode": false}).to_string();
    assert!(!is_sync_standby(&cluster(&off, key), "pg2"), "mode off");
    let stale = r#"{"leader":"pg0","sync_standby":"pg2"}"#;
    assert!(
        !is_sync_standby(&cluster(&on, stale), "pg2"),
        "written by an earlier leader"
    );
}

#[test]
fn a_quorum_standby_is_a_voter_of_the_current_leaders_key_in_quorum_mode() {
    let q = json!({"synchronous_mode": "quorum"}).to_string();
    let key = r#"{"leader":"pg1","quorum":1,"sync_standby":"pg2,pg3"}"#;
    let c = cluster(&q, key);
    assert_eq!(sync_role(&c, "pg2"), Some(SyncRole::Quorum));
    assert_eq!(sync_role(&c, "pg3"), Some(SyncRole::Quorum));
    assert_eq!(sync_role(&c, "pg1"), None, "the leader");
    assert!(
        !is_sync_standby(&c, "pg2"),
        "not a sync standby in quorum mode"
    );
    let on = json!({"synchronous_mode": true}).to_string();
    assert_eq!(sync_role(&cluster(&on, key), "pg2"), Some(SyncRole::Sync));
}

#[test]
fn quorum_shortfall_counts_the_standbys_confirming_each_commit() {
    let q = json!({"synchronous_mode": "quorum"}).to_string();
    let two = r#"{"leader":"pg1","quorum":1,"sync_standby":"pg2,pg3"}"#;
    assert_eq!(
        shortfall(&cluster_streaming(&q, two, &["pg2", "pg3"])),
        None
    );
    let one = r#"{"leader":"pg1","quorum":0,"sync_standby":"pg2"}"#;
    let strict = json!({"synchronous_mode": "quorum", "synchronous_mode_strict": true}).to_string();
    assert_eq!(
        shortfall(&cluster(&strict, one)).as_deref(),
        Some(
            "quorum mode: 0 of 1 quorum standby(s) confirm each commit; commits wait until a standby confirms them (strict)"
        ),
        "a voter that does not stream"
    );
    let none = r#"{"leader":"pg1","quorum":0,"sync_standby":null}"#;
    assert_eq!(
        shortfall(&cluster(&q, none)).as_deref(),
        Some(
            "quorum mode: 0 of 1 quorum standby(s) confirm each commit; replication fell back to asynchronous"
        )
    );
    let q2 = json!({"synchronous_mode": "quorum", "synchronous_node_count": 2}).to_string();
    assert_eq!(
        shortfall(&cluster_streaming(&q2, two, &["pg2", "pg3"])).as_deref(),
        Some("quorum mode: 1 of 2 quorum standby(s) confirm each commit")
    );
}
