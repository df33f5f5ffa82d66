//! Synchronous replication as the REST API shows it (Patroni's reading): a member is a
//! synchronous standby (synchronous mode on) or a quorum standby (quorum mode) when the `sync`
//! key, written by the current leader, names it. Used by `/sync`, `/quorum`, `/async`,
//! `/patroni`, `/cluster`, the metrics and `hactl list`.

use super::NodeSnapshot;
use crate::config::DynamicConfig;
use crate::dcs::Cluster;
use crate::ha::SyncMode;

/// How the `sync` key names a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRole {
    /// `sync_standby` (synchronous mode on).
    Sync,
    /// `quorum_standby` (quorum mode).
    Quorum,
}

impl SyncRole {
    /// The role name in `/cluster` (and, title-cased, in `patronictl list`).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRole::Sync => "sync_standby",
            SyncRole::Quorum => "quorum_standby",
        }
    }
}

fn mode(c: &Cluster) -> Option<SyncMode> {
    c.config
        .as_ref()
        .map(|cfg| DynamicConfig::from_json(&cfg.value).0.synchronous_mode)
}

/// How the `sync` key names `name` in `c`: synchronous mode on or quorum in the cluster's
/// configuration, and the key written by the current leader names it (not as the leader).
pub fn sync_role(c: &Cluster, name: &str) -> Option<SyncRole> {
    let role = match mode(c)? {
        SyncMode::Off => return None,
        SyncMode::On => SyncRole::Sync,
        SyncMode::Quorum => SyncRole::Quorum,
    };
    let sync = c.sync.as_ref()?;
    let leader = c.leader_name()?;
    (sync.value.leader.as_deref() == Some(leader)
        && leader != name
        && sync.value.standbys().iter().any(|s| s == name))
    .then_some(role)
}

/// Whether `name` is a synchronous standby (synchronous mode on) in `c`.
pub fn is_sync_standby(c: &Cluster, name: &str) -> bool {
    sync_role(c, name) == Some(SyncRole::Sync)
}

/// With synchronous mode on or quorum: why the cluster runs with fewer synchronous standbys
/// than `synchronous_node_count` asks for (on: the standbys the key names; quorum: the
/// streaming voters minus `quorum`, i.e. how many can confirm each commit; none: the leader
/// fell back to asynchronous replication, or under strict mode commits wait). `None` when it has enough,
/// or the mode is off, or there is no leader.
pub fn shortfall(c: &Cluster) -> Option<String> {
    let dc = DynamicConfig::from_json(&c.config.as_ref()?.value).0;
    if dc.synchronous_mode == SyncMode::Off {
        return None;
    }
    let leader = c.leader_name()?;
    let key = c
        .sync
        .as_ref()
        .filter(|s| s.value.leader.as_deref() == Some(leader));
    let named = key.map_or_else(Vec::new, |s| s.value.standbys());
    let have = match dc.synchronous_mode {
        // Quorum mode: voters that stream now (their member records), less `quorum`. Under
        // strict mode the key keeps naming a voter that is gone (commits wait for it).
        SyncMode::Quorum => {
            let streaming = named
                .iter()
                .filter(|n| {
                    c.member(n)
                        .is_some_and(|m| m.record.replication_state.as_deref() == Some("streaming"))
                })
                .count();
            let quorum = key.and_then(|s| s.value.quorum).unwrap_or(0) as usize;
            streaming.saturating_sub(quorum)
        }
        _ => named.len(),
    };
    let asked = usize::try_from(dc.synchronous_node_count).unwrap_or(usize::MAX);
    if have >= asked {
        return None;
    }
    let what = match (have, dc.synchronous_mode_strict) {
        (0, true) => "; commits wait until a standby confirms them (strict)",
        (0, false) => "; replication fell back to asynchronous",
        _ => "",
    };
    Some(match dc.synchronous_mode {
        SyncMode::Quorum => {
            format!("quorum mode: {have} of {asked} quorum standby(s) confirm each commit{what}")
        }
        _ => format!("synchronous mode: {have} of {asked} synchronous standby(s){what}"),
    })
}

/// How the `sync` key names this member, running as a replica.
pub fn snapshot_sync_role(snap: &NodeSnapshot) -> Option<SyncRole> {
    if snap.pg.state.role() != crate::ha::PgRole::Replica {
        return None;
    }
    sync_role(snap.cluster.as_ref()?, &snap.member)
}

/// This member, running as a replica, is a synchronous standby (synchronous mode on).
pub fn snapshot_is_sync_standby(snap: &NodeSnapshot) -> bool {
    snapshot_sync_role(snap) == Some(SyncRole::Sync)
}

/// This member, running as a replica, is a quorum standby (quorum mode).
pub fn snapshot_is_quorum_standby(snap: &NodeSnapshot) -> bool {
    snapshot_sync_role(snap) == Some(SyncRole::Quorum)
}

#[cfg(test)]
mod tests;
