//! JSON bodies of the status endpoints, shaped as Patroni's: `/patroni`, `/cluster`,
//! `/history`, `/config`. Built from the snapshot only. `/patroni` also says what guards
//! this member (`fence`, `watchdog`), which Patroni clients ignore.

use serde_json::{Map, Value, json};

use crate::dcs::Cluster;
use crate::ha::{Lsn, PgRole, PgState};
use crate::runtime::NodeSnapshot;

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
    if let Some(role) = super::sync::snapshot_sync_role(snap) {
        o.insert(role.as_str().into(), true.into());
    }
    // hapg's own: the leader says when it runs short of synchronous standbys.
    if snap.holds_leader_key
        && let Some(why) = snap
            .cluster
            .as_ref()
            .and_then(|c| super::sync::shortfall(c))
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

/// The leader's last known WAL position: `status.optime` or its member record, whichever is newer.
pub fn leader_position(c: &Cluster) -> Option<u64> {
    let from_status = c.status.as_ref().map(|s| s.optime);
    let from_leader = c
        .leader_name()
        .and_then(|l| c.member(l))
        .and_then(|m| m.record.xlog_location);
    from_status.into_iter().chain(from_leader).max()
}

/// One member as Patroni's `cluster_as_json` describes it, for `GET /cluster` and `hactl list`:
/// role `leader`/`standby_leader`/`sync_standby`/`replica`; state the replica's
/// `replication_state` when it has one (`streaming`), else the record's `state`; LSNs as `X/X`
/// and lags in bytes behind the leader's last position (`unknown` when a replica reports none).
pub fn cluster_member(c: &Cluster, name: &str) -> Option<Map<String, Value>> {
    let m = c.member(name)?;
    let r = &m.record;
    let is_leader = c.leader_name() == Some(name);
    let role = if is_leader {
        if r.normalized_role() == "standby_leader" {
            "standby_leader"
        } else {
            "leader"
        }
    } else if let Some(role) = super::sync::sync_role(c, name) {
        role.as_str()
    } else {
        "replica"
    };
    let state = match (&r.replication_state, is_leader) {
        (Some(rs), false) if !rs.is_empty() => rs.clone(),
        _ => r.state.clone(),
    };
    let mut o = Map::new();
    o.insert("name".into(), name.into());
    o.insert("role".into(), role.into());
    o.insert("state".into(), state.into());
    o.insert("api_url".into(), r.api_url.clone().into());
    if let Some(t) = r.conn_target() {
        o.insert("host".into(), t.host.into());
        o.insert("port".into(), t.port.into());
    }
    if let Some(tl) = r.timeline {
        o.insert("timeline".into(), tl.into());
    }
    if r.pending_restart {
        o.insert("pending_restart".into(), true.into());
    }
    if !r.tags.is_empty() {
        o.insert(
            "tags".into(),
            serde_json::to_value(&r.tags).unwrap_or_default(),
        );
    }
    if !is_leader {
        let cluster_lsn = leader_position(c).unwrap_or(0);
        for (prefix, lsn) in [
            ("receive_", r.receive_lsn),
            ("replay_", r.replay_lsn),
            ("", r.xlog_location),
        ] {
            let (lsn_key, lag_key) = (format!("{prefix}lsn"), format!("{prefix}lag"));
            match lsn.filter(|l| *l != 0) {
                None => {
                    o.insert(lsn_key, "unknown".into());
                    o.insert(lag_key, "unknown".into());
                }
                Some(l) => {
                    o.insert(lag_key, cluster_lsn.saturating_sub(l).into());
                    o.insert(lsn_key, Lsn(l).to_string().into());
                }
            }
        }
    }
    Some(o)
}

/// `GET /cluster`.
pub fn cluster(snap: &NodeSnapshot) -> Value {
    let mut o = Map::new();
    let Some(c) = &snap.cluster else {
        o.insert("members".into(), Value::Array(vec![]));
        o.insert("scope".into(), snap.scope.clone().into());
        return Value::Object(o);
    };
    let members: Vec<Value> = c
        .members
        .iter()
        .filter_map(|m| cluster_member(c, &m.name).map(Value::Object))
        .collect();
    o.insert("members".into(), Value::Array(members));
    o.insert("scope".into(), snap.scope.clone().into());
    if snap.ha.pause {
        o.insert("pause".into(), true.into());
    }
    if let Some(f) = &c.failover
        && f.value.scheduled_at.is_some()
    {
        o.insert(
            "scheduled_switchover".into(),
            json!({"at": f.value.scheduled_at, "from": f.value.leader, "to": f.value.member}),
        );
    }
    let (health, reason) = cluster_health(snap, c);
    o.insert(
        "health".into(),
        json!({ "status": health, "reason": reason }),
    );
    Value::Object(o)
}

/// `healthy` (leader and every replica streaming within lag), `degraded` (leader, but a
/// replica is down or lagging), `unavailable` (no leader), with the reason.
pub fn cluster_health(snap: &NodeSnapshot, c: &Cluster) -> (&'static str, String) {
    let Some(leader) = c.leader_name() else {
        return ("unavailable", "no member holds the leader lock".into());
    };
    let conflict = c.system_id_conflict();
    let leader_running = c
        .member(leader)
        .is_some_and(|m| m.record.state == "running" && m.record.normalized_role() == "primary");
    if !leader_running {
        return (
            "unavailable",
            format!("leader {leader} is not running as primary"),
        );
    }
    let max_lag = snap.ha.maximum_lag_on_failover;
    let leader_pos = leader_position(c);
    let mut problems: Vec<String> = conflict.into_iter().collect();
    problems.extend(super::sync::shortfall(c));
    problems.extend(c.backup.as_ref().and_then(|b| b.value.problem()));
    for m in c.members.iter().filter(|m| m.name != leader) {
        let r = &m.record;
        if r.state != "running" || r.replication_state.as_deref() != Some("streaming") {
            problems.push(format!(
                "{} is {}",
                m.name,
                if r.state == "running" {
                    "not streaming"
                } else {
                    r.state.as_str()
                }
            ));
            continue;
        }
        if let (Some(l), Some(p)) = (leader_pos, r.xlog_location) {
            let lag = l.saturating_sub(p);
            if lag > max_lag {
                problems.push(format!("{} lags {lag} bytes", m.name));
            }
        }
    }
    if problems.is_empty() {
        (
            "healthy",
            format!(
                "leader {leader} and {} streaming replica(s)",
                c.members.len().saturating_sub(1)
            ),
        )
    } else {
        ("degraded", problems.join("; "))
    }
}

/// `GET /history`: Patroni's list of `[timeline, lsn, reason, timestamp, new_leader]`.
pub fn history(snap: &NodeSnapshot) -> Value {
    snap.cluster
        .as_ref()
        .and_then(|c| c.history.as_ref())
        .map(|h| serde_json::to_value(&h.value).unwrap_or_default())
        .unwrap_or_else(|| Value::Array(vec![]))
}

/// `GET /config`: the cluster's dynamic configuration.
pub fn config(snap: &NodeSnapshot) -> Value {
    snap.cluster
        .as_ref()
        .and_then(|c| c.config.as_ref())
        .map(|c| c.value.clone())
        .unwrap_or_else(|| snap.dynamic.raw.clone())
}
