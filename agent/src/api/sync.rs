//! Synchronous replication as the REST API shows it (Patroni's reading): a member is a
//! synchronous standby when synchronous mode is on and the `sync` key, written by the current
//! leader, names it. Used by `/sync`, `/async`, `/patroni`, `/cluster` and the metrics.

use crate::config::DynamicConfig;
use crate::dcs::Cluster;
use crate::ha::SyncMode;
use crate::runtime::NodeSnapshot;

/// Whether `name` is a synchronous standby in `c`: synchronous mode on in the cluster's
/// configuration, and the `sync` key written by the current leader names it.
pub fn is_sync_standby(c: &Cluster, name: &str) -> bool {
    let mode = c
        .config
        .as_ref()
        .map(|cfg| DynamicConfig::from_json(&cfg.value).0.synchronous_mode);
    if mode != Some(SyncMode::On) {
        return false;
    }
    let Some(sync) = &c.sync else { return false };
    let leader = c.leader_name();
    leader.is_some()
        && sync.value.leader.as_deref() == leader
        && leader != Some(name)
        && sync.value.standbys().iter().any(|s| s == name)
}

/// This member, running as a replica, is a synchronous standby.
pub fn snapshot_is_sync_standby(snap: &NodeSnapshot) -> bool {
    snap.pg.state.role() == crate::ha::PgRole::Replica
        && snap
            .cluster
            .as_ref()
            .is_some_and(|c| is_sync_standby(c, &snap.member))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dcs::{Keys, RawKv};

    fn cluster(config: &str, sync: &str) -> Cluster {
        let keys = Keys::new("/service", "demo");
        let kv = |k: &str, v: &str| (format!("/service/demo/{k}"), v.to_string());
        let kvs = [kv("leader", "pg1"), kv("config", config), kv("sync", sync)];
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
}
