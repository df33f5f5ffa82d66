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

/// With synchronous mode on: why the cluster runs with fewer synchronous standbys than
/// `synchronous_node_count` asks for (none named: the leader fell back to asynchronous
/// replication, or under strict mode commits wait). `None` when it has enough, or the mode is
/// off, or there is no leader.
pub fn shortfall(c: &Cluster) -> Option<String> {
    let dc = DynamicConfig::from_json(&c.config.as_ref()?.value).0;
    if dc.synchronous_mode != SyncMode::On {
        return None;
    }
    let leader = c.leader_name()?;
    let have = c
        .sync
        .as_ref()
        .filter(|s| s.value.leader.as_deref() == Some(leader))
        .map_or(0, |s| s.value.standbys().len());
    let asked = usize::try_from(dc.synchronous_node_count).unwrap_or(usize::MAX);
    if have >= asked {
        return None;
    }
    let what = match (have, dc.synchronous_mode_strict) {
        (0, true) => "; commits wait until a standby confirms them (strict)",
        (0, false) => "; replication fell back to asynchronous",
        _ => "",
    };
    Some(format!(
        "synchronous mode: {have} of {asked} synchronous standby(s){what}"
    ))
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
}
