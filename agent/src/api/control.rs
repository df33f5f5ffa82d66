//! `POST /restart`, `POST /reinitialize`, `POST /reload`: requests for this member's agent,
//! handed to its loop (which decides, and answers when done or refused). Restart honours
//! Patroni's conditions (`role`, `restart_pending`, `postgres_version`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use super::ApiState;
use super::request::{json_body, text};
use crate::dcs::Dcs;
use crate::runtime::{ApiRequest, ApiWhat};

pub use super::config_edit::merge_patch;

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

/// `15.2` → 150002; `9.6.3` → 90603; `None` for anything else, including numbers too large
/// for a version (the request body is the client's: no overflow).
fn pg_version_num(s: &str) -> Option<i32> {
    let parts: Vec<i32> = s
        .split('.')
        .map(|p| p.parse().ok().filter(|n: &i32| *n >= 0))
        .collect::<Option<_>>()?;
    let num = |a: i32, b: i32, c: i32| {
        a.checked_mul(10000)?
            .checked_add(b.checked_mul(100)?)?
            .checked_add(c)
    };
    match parts.as_slice() {
        [major] if *major >= 10 => num(*major, 0, 0),
        [major, minor] if *major >= 10 => num(*major, 0, *minor),
        [a, b] => num(*a, *b, 0),
        [a, b, c] => num(*a, *b, *c),
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

#[cfg(test)]
mod tests {
    use super::pg_version_num;

    #[test]
    fn postgres_versions_as_numbers() {
        assert_eq!(pg_version_num("15.2"), Some(150002));
        assert_eq!(pg_version_num("9.6.3"), Some(90603));
    }
}
