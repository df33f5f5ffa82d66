//! Health endpoints as a pure function: `health(endpoint, query, snapshot, now) -> status`.
//!
//! Patroni's table (PATRONI-COMPAT.md §4): 200 when the condition holds, 503 otherwise, 400
//! for a query parameter that does not parse. Role endpoints answer 503 when the snapshot is
//! older than ttl: a node that cannot tell whether it still holds the lease must not say so.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use tokio::time::Instant;

use super::sync::{SyncRole, snapshot_sync_role as sync_role};
use crate::dcs::records::tag_true;
use crate::ha::{PgRole, PgState};
use crate::runtime::NodeSnapshot;

/// A health-check endpoint (routing is by this enum, never by substrings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// `/`, `/primary`, `/read-write`, `/master`.
    Primary,
    /// `/leader`.
    Leader,
    /// `/standby-leader`, `/standby_leader`.
    StandbyLeader,
    /// `/replica`.
    Replica,
    /// `/read-only`.
    ReadOnly,
    /// `/sync`, `/synchronous`.
    Sync,
    /// `/read-only-sync`, `/read-only-synchronous`.
    ReadOnlySync,
    /// `/quorum`.
    Quorum,
    /// `/read-only-quorum`.
    ReadOnlyQuorum,
    /// `/async`, `/asynchronous`.
    Async,
    /// `/health`.
    Health,
    /// `/liveness`.
    Liveness,
    /// `/readiness`.
    Readiness,
}

impl Health {
    /// The endpoint served at `path`.
    pub fn from_path(path: &str) -> Option<Health> {
        Some(match path {
            "/" | "/primary" | "/read-write" | "/master" => Health::Primary,
            "/leader" => Health::Leader,
            "/standby-leader" | "/standby_leader" => Health::StandbyLeader,
            "/replica" => Health::Replica,
            "/read-only" => Health::ReadOnly,
            "/sync" | "/synchronous" => Health::Sync,
            "/read-only-sync" | "/read-only-synchronous" => Health::ReadOnlySync,
            "/quorum" => Health::Quorum,
            "/read-only-quorum" => Health::ReadOnlyQuorum,
            "/async" | "/asynchronous" => Health::Async,
            "/health" => Health::Health,
            "/liveness" => Health::Liveness,
            "/readiness" => Health::Readiness,
            _ => return None,
        })
    }

    /// Every path served, for the router.
    pub const PATHS: [&'static str; 20] = [
        "/",
        "/primary",
        "/read-write",
        "/master",
        "/leader",
        "/standby-leader",
        "/standby_leader",
        "/replica",
        "/read-only",
        "/sync",
        "/synchronous",
        "/read-only-sync",
        "/read-only-synchronous",
        "/quorum",
        "/read-only-quorum",
        "/async",
        "/asynchronous",
        "/health",
        "/liveness",
        "/readiness",
    ];
}

/// Conditions from the query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `?lag=`: maximum replication lag in bytes.
    pub lag: Option<u64>,
    /// `?replication_state=`: required replication state (e.g. `streaming`).
    pub replication_state: Option<String>,
    /// `?tag_<k>=<v>`: required tag values.
    pub tags: BTreeMap<String, String>,
    /// `?mode=` of `/readiness`: which position its lag is counted from.
    pub mode: LagMode,
}

/// Which of a replica's positions `/readiness` measures its lag from (Patroni's `mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LagMode {
    /// `apply` (the default): the replayed position.
    #[default]
    Apply,
    /// `write`: the received position.
    Write,
}

impl Query {
    /// Parses `lag`, `replication_state` and `tag_*`; other parameters are ignored.
    pub fn parse(pairs: &[(String, String)]) -> Result<Query, String> {
        let mut q = Query::default();
        for (k, v) in pairs {
            match k.as_str() {
                "lag" | "max-lag" => {
                    q.lag = Some(parse_bytes(v).ok_or_else(|| {
                        format!("lag: {v:?} is not a size (bytes, or with kB/MB/GB/TB)")
                    })?)
                }
                "replication_state" => q.replication_state = Some(v.clone()),
                "mode" => {
                    q.mode = match v.as_str() {
                        "apply" => LagMode::Apply,
                        "write" => LagMode::Write,
                        _ => return Err(format!("mode: {v:?} is neither write nor apply")),
                    }
                }
                _ => {
                    if let Some(tag) = k.strip_prefix("tag_") {
                        q.tags.insert(tag.to_string(), v.clone());
                    }
                }
            }
        }
        Ok(q)
    }
}

/// `1048576`, `16MB`, `1 GB`, `10kB` (PostgreSQL's units, 1024-based) to bytes.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1 << 10,
        "mb" | "m" => 1 << 20,
        "gb" | "g" => 1 << 30,
        "tb" | "t" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The status code of `endpoint` for `snap` at `now`.
pub fn health(endpoint: Health, q: &Query, snap: &NodeSnapshot, now: Instant) -> StatusCode {
    let ok = match endpoint {
        Health::Primary => snap.is_writable_leader(now),
        Health::Leader => {
            snap.is_fresh(now)
                && snap.holds_leader_key
                && !snap.demoting
                && snap.writable_until.is_some_and(|u| u > now)
        }
        Health::StandbyLeader => false,
        Health::Replica => replica_ok(q, snap, now) && !snap.noloadbalance,
        // Patroni: a replica the `sync` key names with synchronous mode on (`/sync`), in
        // quorum mode (`/quorum`), or neither (`/async`); the `read-only-` forms also accept
        // the writable leader.
        Health::Sync => replica_ok(q, snap, now) && sync_role(snap) == Some(SyncRole::Sync),
        Health::Quorum => replica_ok(q, snap, now) && sync_role(snap) == Some(SyncRole::Quorum),
        Health::Async => replica_ok(q, snap, now) && sync_role(snap).is_none(),
        Health::ReadOnlySync => {
            snap.is_writable_leader(now)
                || (replica_ok(q, snap, now) && sync_role(snap) == Some(SyncRole::Sync))
        }
        Health::ReadOnlyQuorum => {
            snap.is_writable_leader(now)
                || (replica_ok(q, snap, now) && sync_role(snap) == Some(SyncRole::Quorum))
        }
        Health::ReadOnly => {
            (replica_ok(q, snap, now) && !snap.noloadbalance) || snap.is_writable_leader(now)
        }
        Health::Health => snap.is_fresh(now) && matches!(snap.pg.state, PgState::Running(_)),
        Health::Liveness => snap.is_fresh(now) && !snap.shutting_down,
        // Patroni: the leader is ready; a replica when it streams and its lag (from the
        // replayed position, or the received one with `mode=write`) is within `lag`, by
        // default `maximum_lag_on_failover`.
        Health::Readiness => {
            let streaming = Query {
                replication_state: Some("streaming".into()),
                ..Query::default()
            };
            let max = q.lag.unwrap_or(snap.ha.maximum_lag_on_failover);
            snap.is_writable_leader(now)
                || (replica_ok(&streaming, snap, now)
                    && replica_lag_from(snap, q.mode).is_some_and(|lag| lag <= max))
        }
    };
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Running replica that meets the query's lag, replication state and tag conditions.
fn replica_ok(q: &Query, snap: &NodeSnapshot, now: Instant) -> bool {
    let PgState::Running(r) = &snap.pg.state else {
        return false;
    };
    if !snap.is_fresh(now) || r.role != PgRole::Replica || snap.demoting || snap.shutting_down {
        return false;
    }
    if let Some(max) = q.lag {
        let Some(lag) = replica_lag(snap) else {
            return false;
        };
        if lag > max {
            return false;
        }
    }
    if let Some(want) = &q.replication_state {
        let have = if r.streaming {
            "streaming"
        } else {
            "in archive recovery"
        };
        if want != have {
            return false;
        }
    }
    q.tags.iter().all(|(k, v)| tag_matches(snap.tags.get(k), v))
}

/// Bytes this replica is behind the leader's last published position (`status.optime`, or
/// the leader's member record when newer), from its latest position (received or replayed).
pub fn replica_lag(snap: &NodeSnapshot) -> Option<u64> {
    let r = snap.pg.state.running()?;
    leader_position(snap).map(|p| p.saturating_sub(r.lsn.0))
}

/// [`replica_lag`] from the replayed (`apply`) or received (`write`) position.
pub fn replica_lag_from(snap: &NodeSnapshot, mode: LagMode) -> Option<u64> {
    let r = snap.pg.state.running()?;
    let d = &snap.pg.details;
    let pos = match mode {
        LagMode::Apply => d.replay_lsn.unwrap_or(r.replay_lsn.0),
        LagMode::Write => d.receive_lsn.unwrap_or(r.lsn.0),
    };
    leader_position(snap).map(|p| p.saturating_sub(pos))
}

/// The leader's last published position (`status::leader_position`) as `snap` saw it.
fn leader_position(snap: &NodeSnapshot) -> Option<u64> {
    crate::status::leader_position(snap.cluster.as_ref()?)
}

fn tag_matches(have: Option<&serde_json::Value>, want: &str) -> bool {
    match have {
        None => false,
        Some(serde_json::Value::String(s)) => s == want,
        Some(serde_json::Value::Bool(_)) => {
            tag_true(have) == tag_true(Some(&serde_json::Value::String(want.to_string())))
        }
        Some(serde_json::Value::Number(n)) => n.as_f64() == want.parse::<f64>().ok(),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::DynamicConfig;
    use crate::dcs::{Cluster, StatusRecord};
    use crate::ha::{HaConfig, Lsn, RunningPg};

    /// A fresh replica that received up to 3 MiB and replayed 1 MiB, its leader at 3 MiB.
    fn replica_behind_in_replay() -> (NodeSnapshot, Instant) {
        const MIB: u64 = 1 << 20;
        let now = Instant::now();
        let mut snap =
            NodeSnapshot::initial("pg2", "demo", HaConfig::default(), DynamicConfig::default());
        snap.cycle = 1;
        snap.published_at = now;
        snap.pg.state = PgState::Running(RunningPg {
            role: PgRole::Replica,
            sysid: "1".into(),
            timeline: 1,
            lsn: Lsn(3 * MIB),
            replay_lsn: Lsn(MIB),
            streaming: true,
        });
        snap.pg.details.receive_lsn = Some(3 * MIB);
        snap.pg.details.replay_lsn = Some(MIB);
        snap.cluster = Some(Arc::new(Cluster {
            status: Some(StatusRecord {
                optime: 3 * MIB,
                ..StatusRecord::default()
            }),
            ..Cluster::default()
        }));
        (snap, now)
    }

    fn readiness(query: &[(&str, &str)], snap: &NodeSnapshot, now: Instant) -> StatusCode {
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let q = Query::parse(&pairs).expect("valid query");
        health(Health::Readiness, &q, snap, now)
    }

    #[test]
    fn readiness_counts_lag_from_the_replayed_position_unless_mode_is_write() {
        let (snap, now) = replica_behind_in_replay();
        // 2 MiB behind in replay, 0 in what it received.
        assert_eq!(
            readiness(&[("lag", "1MB")], &snap, now),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let apply = [("lag", "1MB"), ("mode", "apply")];
        assert_eq!(
            readiness(&apply, &snap, now),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let write = [("lag", "1MB"), ("mode", "write")];
        assert_eq!(readiness(&write, &snap, now), StatusCode::OK);
        assert_eq!(readiness(&[("lag", "2MB")], &snap, now), StatusCode::OK);
    }

    #[test]
    fn readiness_refuses_an_unknown_mode_by_name() {
        let err = Query::parse(&[("mode".into(), "fast".into())]).unwrap_err();
        assert!(err.contains("mode") && err.contains("fast"), "{err}");
    }
}
