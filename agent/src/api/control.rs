//! Mutating endpoints, as Patroni's (`patronictl` drives them): `POST /switchover`,
//! `POST /failover`, `DELETE /switchover`, `POST /restart`, `POST /reinitialize`,
//! `POST /reload`, `PATCH /config`, `PUT /config`.
//!
//! Switchover and failover have one mechanism: the `failover` key in etcd, which the agents act
//! on. The handler validates first (412 with the reason when the request cannot succeed),
//! writes the key (create-only: a pending request is never silently replaced), then watches the
//! cluster and reports the outcome: 200 when done, 202 when scheduled, 503 with what is known
//! when it could not be confirmed in time. Answers are one line of text, as Patroni's.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::oneshot;

use super::ApiState;
use crate::api::status;
use crate::clock::wall_ms;
use crate::config::DynamicConfig;
use crate::dcs::records::parse_iso8601_ms;
use crate::dcs::{CasOutcome, Cluster, Dcs, FailoverExpect, FailoverRecord};
use crate::runtime::{ApiRequest, ApiWhat};

fn text(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, msg.into()).into_response()
}

/// A request refused before anything was done: status and one-line reason.
type Reject = (StatusCode, String);

fn bad(msg: impl Into<String>) -> Reject {
    (StatusCode::BAD_REQUEST, msg.into())
}

/// Parses a JSON object body; an empty body is allowed when `optional`.
fn json_body(body: &[u8], optional: bool) -> Result<serde_json::Map<String, Value>, Reject> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if optional {
            Ok(serde_json::Map::new())
        } else {
            Err(bad("a JSON object body is required"))
        };
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body must be a JSON object")),
        Err(e) => Err(bad(format!("invalid JSON: {e}"))),
    }
}

fn str_field(m: &serde_json::Map<String, Value>, k: &str) -> Result<Option<String>, Reject> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!("{k} must be a string, not {other}"))),
    }
}

/// Why a switchover or failover to `candidate` (or any member) cannot happen now.
fn impossible(
    c: &Cluster,
    leader: Option<&str>,
    candidate: Option<&str>,
    max_lag: u64,
    action: &str,
) -> Option<String> {
    if let Some(l) = leader
        && c.leader_name() != Some(l)
    {
        return Some(match c.leader_name() {
            Some(cur) => format!("leader name does not match: {l} is not the leader, {cur} is"),
            None => "leader name does not match: the cluster has no leader (use failover)".into(),
        });
    }
    let cur = c.leader_name();
    let leader_pos = status::leader_position(c);
    let problem = |name: &str| -> Option<String> {
        let Some(m) = c.member(name) else {
            return Some(format!("candidate {name} does not exist"));
        };
        if m.record.nofailover() {
            return Some(format!("candidate {name} is tagged nofailover"));
        }
        let running = matches!(m.record.state.as_str(), "running");
        if !running {
            return Some(format!(
                "candidate {name} is not running (state {})",
                m.record.state
            ));
        }
        if cur.is_some() && m.record.normalized_role() != "replica" {
            return Some(format!("candidate {name} is not a replica"));
        }
        if let (Some(l), Some(p)) = (leader_pos, m.record.xlog_location) {
            let lag = l.saturating_sub(p);
            if lag > max_lag {
                return Some(format!(
                    "candidate {name} lags {lag} bytes behind the leader, more than maximum_lag_on_failover ({max_lag})"
                ));
            }
        }
        None
    };
    match candidate {
        Some(name) => problem(name),
        None => {
            let others: Vec<&str> = c
                .members
                .iter()
                .map(|m| m.name.as_str())
                .filter(|n| Some(*n) != cur)
                .collect();
            if others.is_empty() {
                return Some(format!(
                    "{action} is not possible: cluster does not have members except leader"
                ));
            }
            if others.iter().all(|n| problem(n).is_some()) {
                let why: Vec<String> = others.iter().filter_map(|n| problem(n)).collect();
                return Some(format!(
                    "{action} is not possible: no good candidates have been found ({})",
                    why.join("; ")
                ));
            }
            None
        }
    }
}

pub(super) async fn switchover<D: Dcs>(
    State(st): State<Arc<ApiState<D>>>,
    body: axum::body::Bytes,
) -> Response {
    failover_common(st, &body, "switchover").await
}

pub(super) async fn failover<D: Dcs>(
    State(st): State<Arc<ApiState<D>>>,
    body: axum::body::Bytes,
) -> Response {
    failover_common(st, &body, "failover").await
}

async fn failover_common<D: Dcs>(
    st: Arc<ApiState<D>>,
    body: &[u8],
    mut action: &'static str,
) -> Response {
    let req = match json_body(body, false) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let (leader, candidate, scheduled_at) = match (
        str_field(&req, "leader"),
        str_field(&req, "candidate").and_then(|c| match c {
            Some(c) => Ok(Some(c)),
            None => str_field(&req, "member"),
        }),
        str_field(&req, "scheduled_at"),
    ) {
        (Ok(l), Ok(c), Ok(s)) => (l, c, s),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e.into_response(),
    };
    if action == "failover" && candidate.is_none() {
        return text(
            StatusCode::BAD_REQUEST,
            "Failover could be performed only to a specific candidate",
        );
    }
    if action == "switchover" && leader.is_none() {
        return text(
            StatusCode::BAD_REQUEST,
            "Switchover could be performed only from a specific leader",
        );
    }
    let cluster = match st.dcs.cluster().await {
        Ok(c) => c,
        Err(e) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the cluster from etcd: {e}"),
            );
        }
    };
    let snap = st.snapshot.borrow().clone();
    let paused = snap.ha.pause;
    let mut scheduled_ms = None;
    if let Some(s) = &scheduled_at {
        if action == "failover" {
            return text(StatusCode::BAD_REQUEST, "Failover can't be scheduled");
        }
        if paused {
            return text(
                StatusCode::BAD_REQUEST,
                "Can't schedule switchover in the paused state",
            );
        }
        if !has_offset(s) {
            return text(
                StatusCode::BAD_REQUEST,
                "Timezone information is mandatory for the scheduled switchover",
            );
        }
        match parse_iso8601_ms(s) {
            Ok(ms) if ms < wall_ms() => {
                return text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Cannot schedule switchover in the past",
                );
            }
            Ok(ms) => scheduled_ms = Some(ms),
            Err(e) => {
                return text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("Unable to parse scheduled timestamp: {e}"),
                );
            }
        }
    }
    if paused && candidate.is_none() {
        return text(
            StatusCode::BAD_REQUEST,
            "Switchover is possible only to a specific candidate in a paused state",
        );
    }
    if action == "failover" && leader.is_some() {
        action = "switchover";
    }
    if leader.is_some() && leader == candidate {
        return text(
            StatusCode::BAD_REQUEST,
            "Switchover target and source are the same",
        );
    }
    if scheduled_ms.is_none()
        && let Some(why) = impossible(
            &cluster,
            leader.as_deref(),
            candidate.as_deref(),
            snap.ha.maximum_lag_on_failover,
            action,
        )
    {
        return text(StatusCode::PRECONDITION_FAILED, why);
    }
    let rec = FailoverRecord {
        leader: leader.clone(),
        member: candidate.clone(),
        scheduled_at: scheduled_at.clone(),
    };
    let old_leader = cluster.leader_name().map(str::to_string);
    match st.dcs.write_failover(&rec, FailoverExpect::NoPending).await {
        Ok(CasOutcome::Applied) => {}
        Ok(CasOutcome::Lost) => {
            return text(
                StatusCode::CONFLICT,
                "another switchover or failover is already pending (DELETE /switchover cancels a scheduled one)",
            );
        }
        Err(e) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("failed to write failover key into etcd: {e}"),
            );
        }
    }
    tracing::info!(action, leader = ?leader, candidate = ?candidate, scheduled_at = ?scheduled_at, "manual {action} requested");
    if scheduled_ms.is_some() {
        let word = if action == "switchover" {
            "Switchover"
        } else {
            "Failover"
        };
        return text(StatusCode::ACCEPTED, format!("{word} scheduled"));
    }
    poll_outcome(&st, old_leader.as_deref(), candidate.as_deref(), action).await
}

/// `+00:00`, `Z` or `+0100` at the end of an ISO 8601 time.
fn has_offset(s: &str) -> bool {
    let s = s.trim();
    if s.ends_with('Z') || s.ends_with('z') {
        return true;
    }
    let tail: Vec<char> = s.chars().rev().take(6).collect();
    tail.contains(&'+') || s.rsplit_once('T').is_some_and(|(_, t)| t.contains('-'))
}

/// Watches the cluster (the watch-fed cache: no etcd request per poll) until the leader changed
/// and the new one runs as primary, the request was dropped, or time ran out.
async fn poll_outcome<D: Dcs>(
    st: &ApiState<D>,
    old: Option<&str>,
    candidate: Option<&str>,
    action: &str,
) -> Response {
    let (ttl, loop_wait) = {
        let s = st.snapshot.borrow();
        (s.ha.ttl.0, s.ha.loop_wait.0)
    };
    let limit = Duration::from_millis((ttl + 2 * loop_wait).max(20_000));
    let start = tokio::time::Instant::now();
    let verb = if action == "switchover" {
        "switched"
    } else {
        "failed"
    };
    let mut last_seen = String::from("no answer from etcd yet");
    while start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Ok(c) = st.dcs.cluster().await else {
            last_seen = "etcd unreachable while waiting".into();
            continue;
        };
        let took = start.elapsed().as_millis();
        match c.leader_name() {
            Some(l) if Some(l) != old => {
                let primary = c.member(l).is_some_and(|m| {
                    m.record.normalized_role() == "primary" && m.record.state == "running"
                });
                if primary {
                    return match candidate {
                        Some(cand) if cand != l => text(
                            StatusCode::OK,
                            format!(
                                "{} over to \"{l}\" instead of \"{cand}\" ({took} ms)",
                                title(verb)
                            ),
                        ),
                        _ => text(
                            StatusCode::OK,
                            format!("Successfully {verb} over to \"{l}\" ({took} ms)"),
                        ),
                    };
                }
                last_seen = format!("{l} holds the leader lock and is being promoted");
            }
            Some(l) => last_seen = format!("{l} still holds the leader lock"),
            None => last_seen = "the leader lock is vacant".into(),
        }
        if c.failover.is_none() && c.leader_name() == old {
            let reason = st.snapshot.borrow().reason.clone();
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{} failed: the request was dropped ({reason})",
                    title(action)
                ),
            );
        }
    }
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "{} not confirmed within {} s: {last_seen}",
            title(action),
            limit.as_secs()
        ),
    )
}

fn title(action: &str) -> String {
    let mut c = action.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

pub(super) async fn delete_switchover<D: Dcs>(State(st): State<Arc<ApiState<D>>>) -> Response {
    let cluster = match st.dcs.cluster().await {
        Ok(c) => c,
        Err(e) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the cluster from etcd: {e}"),
            );
        }
    };
    match &cluster.failover {
        Some(f) if f.value.scheduled_at.is_some() => {
            match st.dcs.clear_failover(f.revision).await {
                Ok(CasOutcome::Applied) => text(StatusCode::OK, "scheduled switchover deleted"),
                Ok(CasOutcome::Lost) => text(
                    StatusCode::CONFLICT,
                    "the switchover changed meanwhile; read it again",
                ),
                Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("etcd: {e}")),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "no switchover is scheduled"),
    }
}

async fn ask_runtime<D: Dcs>(
    st: &ApiState<D>,
    what: ApiWhat,
    limit: Duration,
) -> Result<String, String> {
    let (tx, rx) = oneshot::channel();
    st.requests
        .send(ApiRequest { what, reply: tx })
        .await
        .map_err(|_| "the agent is shutting down".to_string())?;
    match tokio::time::timeout(limit, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err("the agent dropped the request".into()),
        Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
    }
}

pub(super) async fn restart<D: Dcs>(
    State(st): State<Arc<ApiState<D>>>,
    body: axum::body::Bytes,
) -> Response {
    let req = match json_body(&body, true) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let snap = st.snapshot.borrow().clone();
    for (k, v) in &req {
        match k.as_str() {
            "role" => {
                let Some(role) = v.as_str() else {
                    return text(StatusCode::BAD_REQUEST, "role must be a string");
                };
                let role = if role == "master" { "primary" } else { role };
                if !matches!(role, "primary" | "replica" | "standby_leader") {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "PostgreSQL role should be either primary, standby_leader, or replica",
                    );
                }
                if role != snap.role {
                    return text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "restart conditions are not satisfied",
                    );
                }
            }
            "restart_pending" => {
                if crate::dcs::records::tag_true(Some(v)) && !snap.pg.details.pending_restart {
                    return text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "restart conditions are not satisfied",
                    );
                }
            }
            "postgres_version" => {
                let Some(want) = v.as_str().and_then(pg_version_num) else {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("postgres_version {v} is not a PostgreSQL version like 15.2"),
                    );
                };
                if snap
                    .pg
                    .details
                    .server_version
                    .is_some_and(|have| have >= want)
                {
                    return text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "restart conditions are not satisfied",
                    );
                }
            }
            "timeout" => {}
            "schedule" => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "scheduled restarts are not supported yet: restart now, or schedule it outside hapg",
                );
            }
            other => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Unknown filter for the scheduled restart: {other}"),
                );
            }
        }
    }
    let limit = Duration::from_millis(snap.ha.ttl.0 * 4 + 60_000);
    match ask_runtime(&st, ApiWhat::Restart, limit).await {
        Ok(_) => text(StatusCode::OK, "restarted successfully"),
        Err(e) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("restart failed: {e}"),
        ),
    }
}

/// `15.2` → 150002; `9.6.3` → 90603.
fn pg_version_num(s: &str) -> Option<i32> {
    let parts: Vec<i32> = s
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [major] if *major >= 10 => Some(major * 10000),
        [major, minor] if *major >= 10 => Some(major * 10000 + minor),
        [a, b] => Some(a * 10000 + b * 100),
        [a, b, c] => Some(a * 10000 + b * 100 + c),
        _ => None,
    }
}

pub(super) async fn reinitialize<D: Dcs>(
    State(st): State<Arc<ApiState<D>>>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(e) = json_body(&body, true) {
        return e.into_response();
    }
    if st.snapshot.borrow().holds_leader_key {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "I am the leader, can not reinitialize",
        );
    }
    match ask_runtime(&st, ApiWhat::Reinitialize, Duration::from_secs(30)).await {
        Ok(_) => text(StatusCode::OK, "reinitialize started"),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

pub(super) async fn reload<D: Dcs>(State(st): State<Arc<ApiState<D>>>) -> Response {
    match ask_runtime(&st, ApiWhat::Reload, Duration::from_secs(10)).await {
        Ok(_) => text(StatusCode::ACCEPTED, "reload scheduled"),
        Err(e) => text(StatusCode::BAD_REQUEST, format!("reload refused: {e}")),
    }
}

/// RFC 7386 merge patch, as Patroni's `patch_config`: `null` deletes a key.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

pub(super) async fn patch_config<D: Dcs>(
    State(st): State<Arc<ApiState<D>>>,
    body: axum::body::Bytes,
) -> Response {
    let patch = match json_body(&body, false) {
        Ok(r) => Value::Object(r),
        Err(e) => return e.into_response(),
    };
    let cluster = match st.dcs.cluster().await {
        Ok(c) => c,
        Err(e) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the cluster from etcd: {e}"),
            );
        }
    };
    let Some(current) = cluster.config else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the cluster has no config key yet",
        );
    };
    let mut value = current.value.clone();
    merge_patch(&mut value, &patch);
    write_config(&st, value, Some(current.revision)).await
}

pub(super) async fn put_config<D: Dcs>(
    State(st): State<Arc<ApiState<D>>>,
    body: axum::body::Bytes,
) -> Response {
    let value = match json_body(&body, false) {
        Ok(r) => Value::Object(r),
        Err(e) => return e.into_response(),
    };
    let rev = match st.dcs.cluster().await {
        Ok(c) => c.config.map(|c| c.revision),
        Err(e) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the cluster from etcd: {e}"),
            );
        }
    };
    write_config(&st, value, rev).await
}

async fn write_config<D: Dcs>(st: &ApiState<D>, value: Value, revision: Option<i64>) -> Response {
    if let Err(why) = DynamicConfig::validate(&value) {
        return text(
            StatusCode::BAD_REQUEST,
            format!("invalid configuration: {why}"),
        );
    }
    let outcome = match revision {
        Some(rev) => st.dcs.write_config(&value, rev).await,
        None => st.dcs.create_config(&value).await,
    };
    match outcome {
        Ok(CasOutcome::Applied) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response(),
        Ok(CasOutcome::Lost) => text(
            StatusCode::CONFLICT,
            "the configuration was changed by someone else meanwhile; read it and try again",
        ),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("etcd: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null_and_merges_objects() {
        let mut v = json!({"ttl": 30, "postgresql": {"parameters": {"a": 1, "b": 2}}});
        merge_patch(
            &mut v,
            &json!({"ttl": 20, "postgresql": {"parameters": {"a": null, "c": 3}}}),
        );
        assert_eq!(
            v,
            json!({"ttl": 20, "postgresql": {"parameters": {"b": 2, "c": 3}}})
        );
    }

    #[test]
    fn versions_and_offsets() {
        assert_eq!(pg_version_num("15.2"), Some(150002));
        assert_eq!(pg_version_num("9.6.3"), Some(90603));
        assert!(has_offset("2026-11-22T15:00:00+01:00"));
        assert!(has_offset("2026-11-22T15:00:00Z"));
        assert!(has_offset("2026-11-22T15:00:00-05:00"));
        assert!(!has_offset("2026-11-22T15:00:00"));
    }
}
