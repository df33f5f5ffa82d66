//! `POST /switchover`, `POST /failover`, `DELETE /switchover`: Patroni's semantics over one
//! mechanism, the `failover` key in etcd, which the agents act on. Validate first (412 with the
//! reason when the request cannot succeed), write the key create-only (a pending request is
//! never silently replaced), then watch the cluster and report the outcome: 200 when done, 202
//! when scheduled, 503 with what is known when it could not be confirmed in time.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::request::{json_body, read_cluster, str_field, text};
use crate::clock::wall_ms;
use crate::dcs::records::parse_iso8601_ms;
use crate::dcs::{CasOutcome, Cluster, Dcs, FailoverExpect, FailoverRecord};

/// Why a switchover or failover to `candidate` (or any member) cannot happen now: the core's
/// one candidate check (`ha::candidate`), on the cluster as etcd shows it.
fn impossible(
    c: &Cluster,
    leader: Option<&str>,
    candidate: Option<&str>,
    cfg: &crate::ha::HaConfig,
    action: &str,
) -> Option<String> {
    let leader = leader.map(crate::ha::MemberName::new);
    let candidate = candidate.map(crate::ha::MemberName::new);
    crate::ha::candidate::request_problem(
        &c.view(0),
        leader.as_ref(),
        candidate.as_ref(),
        cfg,
        action,
    )
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
    let cluster = match read_cluster(&*st.dcs).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
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
            &snap.ha,
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
    let limit = {
        let s = st.snapshot.borrow();
        Duration::from_millis(crate::ha::candidate::handover_timeout(&s.ha).0)
    };
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
    let cluster = match read_cluster(&*st.dcs).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
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

#[cfg(test)]
mod tests {
    use super::has_offset;

    #[test]
    fn schedules_need_an_offset() {
        assert!(has_offset("2026-11-22T15:00:00+01:00"));
        assert!(has_offset("2026-11-22T15:00:00Z"));
        assert!(has_offset("2026-11-22T15:00:00-05:00"));
        assert!(!has_offset("2026-11-22T15:00:00"));
    }
}
