//! JSON bodies of the status endpoints, shaped as Patroni's: `/cluster`, `/history`,
//! `/config`, and `/patroni` (rendered in `crate::status::patroni`, which the runtime also
//! uses to pre-render it with each snapshot; re-exported here). Built from the snapshot only.

use serde_json::{Map, Value, json};

use crate::dcs::Cluster;
use crate::ha::Lsn;
use crate::runtime::NodeSnapshot;
pub use crate::status::leader_position;
pub use crate::status::patroni::patroni;

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
