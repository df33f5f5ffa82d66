//! JSON values of the cluster's keys, field for field as Patroni writes them, so that
//! `patronictl`, monitoring and a Patroni agent can read what hapg writes and the reverse.
//!
//! Reading is lenient (unknown fields are ignored, optional fields default) because these come
//! from other programs and versions; writing omits what Patroni omits.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ha::{ConnTarget, Lsn};

/// `members/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MemberRecord {
    /// `postgres://host:port/postgres`.
    pub conn_url: String,
    /// `http://host:port/patroni`.
    pub api_url: String,
    /// `running`, `starting`, `stopped`, `crashed`, `creating replica`, ...
    pub state: String,
    /// `primary`, `replica`, `standby_leader` (Patroni before 3.0: `master`).
    pub role: String,
    /// Agent version.
    #[serde(default)]
    pub version: String,
    /// Primary: current WAL position; replica: the later of received and replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xlog_location: Option<u64>,
    /// Replica: replayed position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_lsn: Option<u64>,
    /// Replica: received position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_lsn: Option<u64>,
    /// Replica: `streaming` or `in archive recovery`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_state: Option<String>,
    /// Current timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<u32>,
    /// Configured tags (`nofailover`, `failover_priority`, `noloadbalance`, `clonefrom`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, serde_json::Value>,
    /// PostgreSQL needs a restart for a changed setting to apply.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending_restart: bool,
    /// The member runs in maintenance mode (`patronictl pause --wait` waits for it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pause: bool,
    /// The system identifier of the member's data directory (hapg's; Patroni shows it only in
    /// `/patroni`): lets anyone reading etcd see a conflict with `initialize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_system_identifier: Option<String>,
}

impl MemberRecord {
    /// Host and port from `conn_url`.
    pub fn conn_target(&self) -> Option<ConnTarget> {
        parse_conn_url(&self.conn_url)
    }
    /// Whether the member reports `nofailover` (or `failover_priority: 0`, as Patroni 4 reads it).
    pub fn nofailover(&self) -> bool {
        tag_true(self.tags.get("nofailover"))
            || self
                .tags
                .get("failover_priority")
                .and_then(serde_json::Value::as_i64)
                == Some(0)
    }
    /// Whether the member is tagged `nosync` (never a synchronous standby).
    pub fn nosync(&self) -> bool {
        tag_true(self.tags.get("nosync"))
    }
    /// `failover_priority`, default 1.
    pub fn failover_priority(&self) -> i64 {
        self.tags
            .get("failover_priority")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(1)
    }
    /// Role normalized: Patroni < 3 wrote `master`.
    pub fn normalized_role(&self) -> &str {
        match self.role.as_str() {
            "master" => "primary",
            r => r,
        }
    }
}

/// Patroni reads a tag as true from `true`, `"true"`, `"on"`, `"yes"`, `1`.
pub fn tag_true(v: Option<&serde_json::Value>) -> bool {
    match v {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => {
            matches!(s.to_ascii_lowercase().as_str(), "true" | "on" | "yes" | "1")
        }
        Some(serde_json::Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
        _ => false,
    }
}

/// `postgres://host:port/db` (also `postgresql://`, credentials and query ignored) to host and port.
pub fn parse_conn_url(url: &str) -> Option<ConnTarget> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit('@').next()?;
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once(']')?;
        (
            h.to_string(),
            p.strip_prefix(':').unwrap_or("5432").to_string(),
        )
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (hostport.to_string(), "5432".to_string()),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(ConnTarget {
        host,
        port: port.parse().ok()?,
    })
}

/// `failover`: `{"leader": ..., "member": ..., "scheduled_at": ...}`; `{}` means none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FailoverRecord {
    /// The leader at the time of the request (switchover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// ISO 8601 time with offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
}

impl FailoverRecord {
    /// Whether the record asks for anything (Patroni leaves `{}` behind after a failover).
    pub fn is_empty(&self) -> bool {
        self.leader.as_deref().is_none_or(str::is_empty)
            && self.member.as_deref().is_none_or(str::is_empty)
    }
    /// `scheduled_at` as Unix milliseconds; `Err` when present but not a valid time.
    pub fn scheduled_at_ms(&self) -> Result<Option<u64>, String> {
        match self.scheduled_at.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => parse_iso8601_ms(s).map(Some),
        }
    }
}

/// Parses an ISO 8601 / RFC 3339 time with an offset into Unix milliseconds.
pub fn parse_iso8601_ms(s: &str) -> Result<u64, String> {
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%:z"))
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .map_err(|e| format!("{s:?} is not an ISO 8601 time with offset: {e}"))?;
    u64::try_from(t.timestamp_millis()).map_err(|_| format!("{s:?} is before 1970"))
}

/// Formats Unix milliseconds as Patroni does (`2026-11-22T14:33:13.949943+00:00`).
pub fn format_iso8601(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let nanos = u32::try_from((ms % 1000) * 1_000_000).unwrap_or(0);
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string())
        .unwrap_or_default()
}

/// `status`: the leader's last WAL position and slot positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StatusRecord {
    /// Leader's WAL position.
    #[serde(default)]
    pub optime: u64,
    /// Replication slots and their positions.
    #[serde(default)]
    pub slots: BTreeMap<String, u64>,
    /// Slots kept for members that are temporarily gone.
    #[serde(default)]
    pub retain_slots: Vec<String>,
}

/// One entry of `history`: `[timeline, switch_lsn, reason, timestamp, new_leader]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    /// The timeline that ended.
    pub timeline: u32,
    /// Where it ended.
    pub switch_lsn: u64,
    /// PostgreSQL's reason (`no recovery target specified`).
    pub reason: String,
    /// When (ISO 8601), if recorded.
    pub timestamp: Option<String>,
    /// Who became leader, if recorded.
    pub new_leader: Option<String>,
}

impl Serialize for HistoryRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = vec![
            serde_json::Value::from(self.timeline),
            serde_json::Value::from(self.switch_lsn),
            serde_json::Value::from(self.reason.clone()),
        ];
        if let Some(t) = &self.timestamp {
            v.push(t.clone().into());
            if let Some(l) = &self.new_leader {
                v.push(l.clone().into());
            }
        }
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for HistoryRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Vec::<serde_json::Value>::deserialize(d)?;
        let timeline = v
            .first()
            .and_then(serde_json::Value::as_u64)
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| D::Error::custom("history entry without a timeline"))?;
        let switch_lsn = v
            .get(1)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| D::Error::custom("history entry without a switch position"))?;
        let text = |i: usize| v.get(i).and_then(|x| x.as_str().map(str::to_string));
        Ok(HistoryRecord {
            timeline,
            switch_lsn,
            reason: text(2).unwrap_or_default(),
            timestamp: text(3),
            new_leader: text(4),
        })
    }
}

/// `sync`: synchronous replication state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SyncRecord {
    /// Leader that set it.
    #[serde(default)]
    pub leader: Option<String>,
    /// Quorum mode: how many voters besides itself a member must see to take over (Patroni
    /// writes 0 with synchronous mode on; field order as Patroni writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// Comma-separated synchronous standbys (quorum mode: the voters), sorted.
    #[serde(default)]
    pub sync_standby: Option<String>,
}

impl SyncRecord {
    /// The standbys `sync_standby` names (comma-separated; empty entries skipped).
    pub fn standbys(&self) -> Vec<String> {
        self.sync_standby
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// LSN as Patroni's integer.
pub fn lsn_int(l: Lsn) -> u64 {
    l.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_patroni_member_json() {
        let j = r#"{"conn_url":"postgres://127.0.0.1:25432/postgres","api_url":"http://127.0.0.1:28008/patroni","state":"running","role":"replica","version":"4.1.5","xlog_location":69888624,"replay_lsn":69888624,"receive_lsn":69888624,"replication_state":"streaming","timeline":23}"#;
        let m: MemberRecord = serde_json::from_str(j).unwrap();
        assert_eq!(m.conn_target().unwrap().port, 25432);
        assert_eq!(m.timeline, Some(23));
        assert!(!m.nofailover());
        let back = serde_json::to_string(&m).unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn history_round_trips_patroni_arrays() {
        let j = r#"[[1,67613864,"no recovery target specified","2026-11-22T14:33:13.949943+00:00","node2"],[2,5,"x"]]"#;
        let h: Vec<HistoryRecord> = serde_json::from_str(j).unwrap();
        assert_eq!(h[0].new_leader.as_deref(), Some("node2"));
        assert_eq!(h[1].timestamp, None);
        assert_eq!(serde_json::to_string(&h).unwrap(), j);
    }

    #[test]
    fn conn_urls() {
        let t = parse_conn_url("postgres://u:p@db.example:6432/postgres?x=1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("db.example", 6432));
        let t = parse_conn_url("postgresql://[::1]:5433/postgres").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 5433));
        assert!(parse_conn_url("http://x").is_none());
    }

    #[test]
    fn failover_times() {
        let f = FailoverRecord {
            scheduled_at: Some("2026-11-22T15:00:00+01:00".into()),
            ..Default::default()
        };
        assert_eq!(f.scheduled_at_ms().unwrap(), Some(1_795_356_000_000));
        assert_eq!(
            format_iso8601(1_795_356_000_123),
            "2026-11-22T14:00:00.123000+00:00"
        );
        assert!(FailoverRecord::default().is_empty());
    }

    #[test]
    fn tags_read_like_patroni() {
        assert!(tag_true(Some(&serde_json::json!("on"))));
        assert!(tag_true(Some(&serde_json::json!(true))));
        assert!(!tag_true(Some(&serde_json::json!("false"))));
    }
}
