//! etcd values: `members/<name>`, `leader`, `config`, `failover`, `sync`, `history`,
//! `status`, `initialize`, and the cluster built from raw keys ([`Cluster::from_kvs`]). Another
//! program (or a person with etcdctl) can write anything there; the agent must read it or
//! report it, never crash.

use proptest::prelude::*;
use serde_json::Value;

use super::{any_json, config, object_with};
use crate::config::DynamicConfig;
use crate::dcs::records::{
    FailoverRecord, HistoryRecord, MemberRecord, StatusRecord, SyncRecord, parse_conn_url,
    parse_iso8601_ms,
};
use crate::dcs::{Cluster, Keys, RawKv};

const MEMBER_KEYS: &[&str] = &[
    "conn_url",
    "api_url",
    "state",
    "role",
    "version",
    "xlog_location",
    "replay_lsn",
    "receive_lsn",
    "replication_state",
    "timeline",
    "tags",
    "pending_restart",
    "pause",
];
const FAILOVER_KEYS: &[&str] = &["leader", "member", "scheduled_at"];
const STATUS_KEYS: &[&str] = &["optime", "slots", "retain_slots"];
const SYNC_KEYS: &[&str] = &["leader", "sync_standby", "quorum"];
const CONFIG_KEYS: &[&str] = &[
    "ttl",
    "loop_wait",
    "retry_timeout",
    "maximum_lag_on_failover",
    "primary_start_timeout",
    "master_start_timeout",
    "pause",
    "synchronous_mode",
    "failsafe_mode",
    "postgresql",
    "check_timeline",
];

/// Uses every accessor the agent calls on a parsed record.
fn exercise_member(m: &MemberRecord) {
    let _ = (m.conn_target(), m.nofailover(), m.failover_priority());
    let _ = m.normalized_role();
    let _ = serde_json::to_string(m);
}

fn parse_all(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(m) = serde_json::from_str::<MemberRecord>(&text) {
        exercise_member(&m);
    }
    if let Ok(f) = serde_json::from_str::<FailoverRecord>(&text) {
        let _ = (f.is_empty(), f.scheduled_at_ms());
    }
    let _ = serde_json::from_str::<StatusRecord>(&text);
    let _ = serde_json::from_str::<SyncRecord>(&text);
    if let Ok(h) = serde_json::from_str::<Vec<HistoryRecord>>(&text) {
        let _ = serde_json::to_string(&h);
    }
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        let _ = DynamicConfig::from_json(&v);
        let _ = DynamicConfig::validate(&v);
    }
}

/// Keys under the cluster prefix, right and wrong.
fn cluster_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "leader",
            "config",
            "failover",
            "sync",
            "history",
            "status",
            "initialize",
            "members/",
            "members/a/b",
            "members/node1",
            "members/node2",
        ])
        .prop_map(str::to_string),
        "members/\\PC{0,10}",
        "\\PC{0,12}",
    ]
    .prop_map(|k| format!("/service/demo/{k}"))
}

fn value_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        object_with(MEMBER_KEYS).prop_map(|v| v.to_string().into_bytes()),
        object_with(FAILOVER_KEYS).prop_map(|v| v.to_string().into_bytes()),
        object_with(CONFIG_KEYS).prop_map(|v| v.to_string().into_bytes()),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn etcd_values_of_any_bytes_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        parse_all(&bytes);
    }

    #[test]
    fn near_valid_records_parse_or_fail_cleanly(
        member in object_with(MEMBER_KEYS),
        failover in object_with(FAILOVER_KEYS),
        status in object_with(STATUS_KEYS),
        sync in object_with(SYNC_KEYS),
        config in object_with(CONFIG_KEYS),
        history in prop::collection::vec(prop::collection::vec(any_json(), 0..6), 0..4),
    ) {
        for v in [member, failover, status, sync, config, serde_json::json!(history)] {
            parse_all(v.to_string().as_bytes());
        }
    }

    #[test]
    fn cluster_from_any_keys_and_values(
        kvs in prop::collection::vec((cluster_key(), value_bytes(), any::<i64>(), any::<i64>()), 0..12),
    ) {
        let keys = Keys::new("/service/", "demo");
        let raw: Vec<RawKv<'_>> = kvs
            .iter()
            .map(|(k, v, rev, lease)| RawKv { key: k, value: v, mod_revision: *rev, lease: *lease })
            .collect();
        let c = Cluster::from_kvs(&keys, raw);
        let _ = (c.leader_name(), crate::status::leader_position(&c));
        for m in &c.members {
            exercise_member(&m.record);
        }
    }

    #[test]
    fn urls_and_times_of_any_text(s in "\\PC{0,40}") {
        let _ = parse_conn_url(&s);
        let _ = parse_iso8601_ms(&s);
        let _ = crate::api::access::api_url_host(&s);
    }
}
