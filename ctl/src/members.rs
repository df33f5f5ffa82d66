//! The member listing of `list` and `topology`, computed as patronictl computes it
//! (`cluster_as_json` then `output_members`), so that every format shows the same words,
//! numbers and columns.
//!
//! Per member: role `leader`/`standby_leader`/`sync_standby`/`quorum_standby`/`replica`; state the
//! replica's `replication_state` when it has one (`streaming`), else the record's `state`;
//! LSNs as `X/X` and lags in bytes behind the leader's last position (`unknown` when a replica
//! reports none), shown in MB rounded half to even, as Python's `round`. The reference
//! position is `leader_position` (the newer of `status.optime` and the leader's record), where
//! patronictl takes `status.optime` alone.

use std::collections::BTreeMap;

use ha_agent::dcs::Cluster;
use serde_json::{Map, Value};

use crate::dcs::dynamic;
use crate::table::Align;

/// Bytes to whole MB, rounded half to even (Python's `round(b / 1024 / 1024)`).
pub fn lag_mb(bytes: u64) -> u64 {
    const MB: u64 = 1024 * 1024;
    let (q, r) = (bytes / MB, bytes % MB);
    match (r * 2).cmp(&MB) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
        std::cmp::Ordering::Less => q,
    }
}

/// One member as patronictl's `cluster_as_json` describes it (the agent's `GET /cluster`
/// uses the same function, so both always agree).
pub fn member_json(c: &Cluster, name: &str) -> Option<Map<String, Value>> {
    ha_agent::api::status::cluster_member(c, name)
}

/// Everything `list` shows about one cluster.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Column names, `Cluster` first (patronictl's machine-readable names).
    pub columns: Vec<String>,
    /// One row per member, values as patronictl has them (ints, strings, tags object).
    pub rows: Vec<Vec<Value>>,
    /// ` Cluster: <name> (<sysid>) `.
    pub title: String,
    /// Footer lines: `Maintenance mode: on`, a scheduled switchover.
    pub service_info: Vec<String>,
}

/// Columns patronictl right-aligns.
pub fn align_of(column: &str) -> Align {
    match column {
        "TL" | "Receive LSN" | "Replay LSN" | "Lag" | "Group" => Align::Right,
        _ => Align::Left,
    }
}

fn text(m: &Map<String, Value>, k: &str) -> Value {
    m.get(k).cloned().unwrap_or_else(|| "".into())
}

/// patronictl's `output_members` data for cluster `name`; with `topology`, members in
/// replication-tree order with indented names.
pub fn listing(c: &Cluster, name: &str, extended: bool, topology: bool) -> Listing {
    let members: Vec<Map<String, Value>> = c
        .members
        .iter()
        .filter_map(|m| member_json(c, &m.name))
        .collect();
    let mut columns: Vec<String> = [
        "Cluster",
        "Member",
        "Host",
        "Role",
        "State",
        "TL",
        "Receive LSN",
        "Receive Lag",
        "Replay LSN",
        "Replay Lag",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let with_host: Vec<&Map<String, Value>> =
        members.iter().filter(|m| m.contains_key("host")).collect();
    for col in [
        "Pending restart",
        "Pending restart reason",
        "Scheduled restart",
        "Tags",
    ] {
        let key = col.to_lowercase().replace(' ', "_");
        if extended || with_host.iter().any(|m| truthy(m.get(&key))) {
            columns.push(col.to_string());
        }
    }
    let distinct_hosts: std::collections::BTreeSet<&str> = with_host
        .iter()
        .filter_map(|m| m.get("host").and_then(Value::as_str))
        .collect();
    let append_port = with_host.iter().any(|m| {
        m.get("port")
            .and_then(Value::as_u64)
            .is_some_and(|p| p != 5432)
    }) || distinct_hosts.len() < with_host.len();

    let ordered = if topology {
        topology_order(members)
    } else {
        members
    };
    let mut rows = Vec::new();
    for mut m in ordered {
        // Old agents publish only `lsn`: show it as the receive or replay position.
        let unknown = |k: &str| m.get(k).and_then(Value::as_str) == Some("unknown");
        if unknown("receive_lsn")
            && unknown("replay_lsn")
            && m.get("lsn").is_some_and(|l| l.as_str() != Some("unknown"))
        {
            let (lag, lsn) = (text(&m, "lag"), text(&m, "lsn"));
            if m.get("state").and_then(Value::as_str) == Some("streaming") {
                m.insert("receive_lag".into(), lag);
                m.insert("receive_lsn".into(), lsn);
            } else {
                m.insert("replay_lag".into(), lag);
                m.insert("replay_lsn".into(), lsn);
            }
        }
        for k in ["receive_lag", "replay_lag"] {
            let shown = match m.get(k) {
                Some(Value::Number(n)) => n.as_u64().map_or(Value::from(""), |b| lag_mb(b).into()),
                Some(Value::String(s)) if s == "unknown" => "".into(),
                Some(v) => v.clone(),
                None => "".into(),
            };
            m.insert(k.into(), shown);
        }
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .map(title_case)
            .unwrap_or_default();
        let mut host = text(&m, "host");
        if append_port
            && let (Some(h), Some(p)) = (m.get("host").and_then(Value::as_str), m.get("port"))
            && !h.is_empty()
        {
            host = format!("{h}:{p}").into();
        }
        let pending = if truthy(m.get("pending_restart")) {
            "*"
        } else {
            ""
        };
        let row: Vec<Value> = columns
            .iter()
            .map(|col| match col.as_str() {
                "Cluster" => name.into(),
                "Member" => text(&m, "name"),
                "Host" => host.clone(),
                "Role" => role.clone().into(),
                "State" => text(&m, "state"),
                "TL" => text(&m, "timeline"),
                "Receive LSN" => text(&m, "receive_lsn"),
                "Receive Lag" => text(&m, "receive_lag"),
                "Replay LSN" => text(&m, "replay_lsn"),
                "Replay Lag" => text(&m, "replay_lag"),
                "Pending restart" => pending.into(),
                "Tags" => text(&m, "tags"),
                _ => "".into(),
            })
            .collect();
        rows.push(row);
    }
    let initialize = match c.initialize.as_deref() {
        None => "uninitialized",
        Some("") => "initializing",
        Some(s) => s,
    };
    Listing {
        columns,
        rows,
        title: format!(" Cluster: {name} ({initialize}) "),
        service_info: service_info(c),
    }
}

/// `member['role'].replace('_', ' ').title()`.
fn title_case(role: &str) -> String {
    role.split('_')
        .map(|w| {
            let mut ch = w.chars();
            match ch.next() {
                Some(f) => f.to_uppercase().collect::<String>() + &ch.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
    }
}

/// patronictl's `topology_sort`: the leader, then its replicas (indented `+ name`), each
/// followed by the replicas cascading from it (`replicatefrom` tag).
fn topology_order(members: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    let is_leader = |m: &Map<String, Value>| {
        m.get("role")
            .and_then(Value::as_str)
            .is_some_and(|r| r.ends_with("leader"))
    };
    let name_of = |m: &Map<String, Value>| {
        m.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let leader = members.iter().find(|m| is_leader(m)).map(name_of);
    let replicas: std::collections::BTreeSet<String> = members
        .iter()
        .filter(|m| !is_leader(m))
        .map(name_of)
        .collect();
    let mut children: BTreeMap<Option<String>, Vec<Map<String, Value>>> = BTreeMap::new();
    let mut leader_member = None;
    for m in members {
        if is_leader(&m) {
            if leader_member.is_none() {
                leader_member = Some(m);
            }
            continue;
        }
        let me = name_of(&m);
        let parent = m
            .get("tags")
            .and_then(|t| t.get("replicatefrom"))
            .and_then(Value::as_str)
            .filter(|p| *p != me && replicas.contains(*p))
            .map(str::to_string)
            .or_else(|| leader.clone());
        children.entry(parent).or_default().push(m);
    }
    let mut out = Vec::new();
    fn walk(
        level: usize,
        key: Option<String>,
        member: Option<Map<String, Value>>,
        children: &mut BTreeMap<Option<String>, Vec<Map<String, Value>>>,
        out: &mut Vec<Map<String, Value>>,
    ) {
        let kids = children.remove(&key).unwrap_or_default();
        if let Some(mut m) = member {
            if level > 0 {
                let n = m
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                m.insert(
                    "name".into(),
                    format!("{}+ {n}", " ".repeat((level - 1) * 2)).into(),
                );
            }
            out.push(m);
        }
        for k in kids {
            let key = k.get("name").and_then(Value::as_str).map(str::to_string);
            walk(level + 1, key, Some(k), children, out);
        }
    }
    walk(0, leader, leader_member, &mut children, &mut out);
    out
}

fn unix_now() -> u64 {
    ha_agent::backup::runner::unix_now()
}

/// patronictl's `get_cluster_service_info`.
fn service_info(c: &Cluster) -> Vec<String> {
    let mut lines = Vec::new();
    if dynamic(c).pause {
        lines.push("Maintenance mode: on".to_string());
    }
    // hapg's own: patronictl has no such lines.
    if let Some(why) = ha_agent::api::sync::shortfall(c) {
        let mut s = why;
        if let Some(first) = s.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        lines.push(s);
    }
    if let Some(b) = c.backup.as_ref().and_then(|b| b.value.summary(unix_now())) {
        let mut s = b;
        if let Some(first) = s.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        lines.push(s);
    }
    if let Some(conflict) = c.system_id_conflict() {
        let mut s = conflict;
        if let Some(first) = s.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        lines.push(s);
    }
    if let Some(f) = &c.failover
        && let Some(at) = f.value.scheduled_at.as_deref().filter(|s| !s.is_empty())
    {
        let at = chrono::DateTime::parse_from_rfc3339(at)
            .map(|t| crate::pyfmt::isoformat(&t))
            .unwrap_or_else(|_| at.to_string());
        let mut info = format!("Switchover scheduled at: {at}");
        for (label, v) in [("from", &f.value.leader), ("to", &f.value.member)] {
            if let Some(v) = v.as_deref().filter(|s| !s.is_empty()) {
                info.push_str(&format!("\n{label:>24}: {v}"));
            }
        }
        lines.push(info);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_rounds_half_to_even_like_python() {
        const MB: u64 = 1024 * 1024;
        assert_eq!(lag_mb(0), 0);
        assert_eq!(lag_mb(MB / 2), 0);
        assert_eq!(lag_mb(MB / 2 + 1), 1);
        assert_eq!(lag_mb(3 * MB / 2), 2);
        assert_eq!(lag_mb(5 * MB / 2), 2);
        assert_eq!(lag_mb(7 * MB / 2), 4);
        assert_eq!(lag_mb(16_777_216), 16);
    }

    #[test]
    fn lsn_text() {
        assert_eq!(ha_agent::ha::Lsn(69_888_624).to_string(), "0/42A6A70");
        assert_eq!(ha_agent::ha::Lsn((3 << 32) + 255).to_string(), "3/FF");
    }

    #[test]
    fn roles_title_cased() {
        assert_eq!(title_case("sync_standby"), "Sync Standby");
        assert_eq!(title_case("quorum_standby"), "Quorum Standby");
        assert_eq!(title_case("leader"), "Leader");
    }
}
