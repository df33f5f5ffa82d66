//! `GET /patroni`'s body, shaped as Patroni's, from one snapshot. The runtime renders it once
//! per published snapshot (health checks answer with it) and the REST API re-exports it.
//! `/patroni` also says what guards this member (`fence`, `watchdog`), which Patroni clients
//! ignore. Pure: reads the snapshot only.

use serde_json::{Map, Value, json};

use super::NodeSnapshot;
use crate::ha::{PgRole, PgState};

/// `GET /patroni` (also the body of GET health checks).
pub fn patroni(snap: &NodeSnapshot) -> Value {
    let mut o = Map::new();
    o.insert("state".into(), snap.state.clone().into());
    if let Some(t) = &snap.pg.details.postmaster_start_time {
        o.insert("postmaster_start_time".into(), t.clone().into());
    }
    o.insert("role".into(), snap.role.clone().into());
    if let Some(v) = snap.pg.details.server_version {
        o.insert("server_version".into(), v.into());
    }
    match &snap.pg.state {
        PgState::Running(r) if r.role == PgRole::Primary => {
            o.insert("xlog".into(), json!({ "location": r.lsn.0 }));
            o.insert("timeline".into(), r.timeline.into());
            o.insert(
                "replication".into(),
                serde_json::to_value(&snap.pg.details.replication).unwrap_or_default(),
            );
        }
        PgState::Running(r) => {
            let d = &snap.pg.details;
            let mut x = Map::new();
            x.insert(
                "received_location".into(),
                d.receive_lsn.unwrap_or(r.lsn.0).into(),
            );
            x.insert(
                "replayed_location".into(),
                d.replay_lsn.unwrap_or(r.replay_lsn.0).into(),
            );
            x.insert(
                "replayed_timestamp".into(),
                d.replayed_timestamp
                    .clone()
                    .map_or(Value::Null, Value::from),
            );
            x.insert("paused".into(), d.replay_paused.into());
            o.insert("xlog".into(), Value::Object(x));
            o.insert("timeline".into(), r.timeline.into());
            o.insert(
                "replication_state".into(),
                if r.streaming {
                    "streaming"
                } else {
                    "in archive recovery"
                }
                .into(),
            );
        }
        _ => {}
    }
    if let Some(c) = &snap.cluster
        && c.leader.is_none()
    {
        o.insert("cluster_unlocked".into(), true.into());
    }
    if snap.dcs_unreachable {
        o.insert("dcs_unreachable".into(), true.into());
    }
    if let Some(s) = snap.dcs_last_seen {
        o.insert("dcs_last_seen".into(), s.into());
    }
    if let Some(sysid) = sysid(snap) {
        o.insert("database_system_identifier".into(), sysid.into());
    }
    if snap.pg.details.pending_restart {
        o.insert("pending_restart".into(), true.into());
    }
    if snap.ha.pause {
        o.insert("pause".into(), true.into());
    }
    // Patroni: `sync_standby` (synchronous mode on) or `quorum_standby` (quorum mode).
    if let Some(role) = crate::status::sync::snapshot_sync_role(snap) {
        o.insert(role.as_str().into(), true.into());
    }
    // hapg's own: the leader says when it runs short of synchronous standbys.
    if snap.holds_leader_key
        && let Some(why) = snap
            .cluster
            .as_ref()
            .and_then(|c| crate::status::sync::shortfall(c))
    {
        o.insert("synchronous_shortfall".into(), why.into());
    }
    if snap.failsafe_active {
        o.insert("failsafe_mode_is_active".into(), true.into());
    }
    if let Some(conflict) = snap.cluster.as_ref().and_then(|c| c.system_id_conflict()) {
        o.insert("system_id_conflict".into(), conflict.into());
    }
    // hapg's own: the leader key as this member read it in the cycle that took the WAL
    // position above (null: vacant). In quorum mode a position counts as a vote only when
    // read after the old leader lost the key (`ha::quorum_vote`).
    if !snap.dcs_unreachable
        && let Some(c) = &snap.cluster
    {
        o.insert(
            "leader_seen".into(),
            c.leader_name().map_or(Value::Null, Value::from),
        );
    }
    // hapg's own: what guards this primary against a stalled agent.
    if let Value::Object(g) = &snap.guards {
        for (k, v) in g {
            o.insert(k.clone(), v.clone());
        }
    }
    if !snap.tags.is_empty() {
        o.insert("tags".into(), Value::Object(snap.tags.clone()));
    }
    o.insert(
        "patroni".into(),
        json!({ "version": crate::VERSION, "scope": snap.scope, "name": snap.member }),
    );
    Value::Object(o)
}

fn sysid(snap: &NodeSnapshot) -> Option<String> {
    match &snap.pg.state {
        PgState::Running(r) => Some(r.sysid.clone()),
        PgState::Stopped(s) => Some(s.sysid.clone()),
        _ => snap
            .cluster
            .as_ref()
            .and_then(|c| c.initialize.clone())
            .filter(|s| !s.is_empty()),
    }
}
