//! `GET /failsafe` and `POST /failsafe` (Patroni's failsafe mode).
//!
//! `GET`: the `failsafe` key as last read from etcd (502 when there is none). `POST`: a
//! leader that cannot reach etcd asks us to accept it; we do unless we run as a primary
//! ourselves (`ha::accepts_failsafe`), remember the promise (for ttl we do not race for the
//! lease) and answer `Accepted` with our WAL position in the `lsn` header, as Patroni does.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::request::{json_body, str_field, text};
use crate::dcs::Dcs;
use crate::ha::{self, PgState};
use crate::runtime::failsafe::FailsafePromise;

pub(super) async fn get_failsafe<D: Dcs>(State(st): State<Arc<ApiState<D>>>) -> Response {
    let topology = st
        .snapshot
        .borrow()
        .cluster
        .as_ref()
        .and_then(|c| c.failsafe.clone());
    match topology {
        Some(m) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&m).unwrap_or_else(|_| "{}".into()),
        )
            .into_response(),
        None => text(StatusCode::BAD_GATEWAY, "no failsafe topology"),
    }
}

pub(super) async fn post_failsafe<D: Dcs>(
    State(st): State<Arc<ApiState<D>>>,
    body: Bytes,
) -> Response {
    let (enabled, pg) = {
        let s = st.snapshot.borrow();
        (s.ha.failsafe_mode, s.pg.clone())
    };
    if !enabled {
        return text(StatusCode::BAD_GATEWAY, "failsafe_mode is not enabled");
    }
    let fields = match json_body(&body, false) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let field = |k| str_field(&fields, k).map(Option::unwrap_or_default);
    let (name, api_url, conn_url) = match (field("name"), field("api_url"), field("conn_url")) {
        (Ok(n), Ok(a), Ok(c)) if !n.is_empty() => (n, a, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e.into_response(),
        _ => return text(StatusCode::BAD_REQUEST, "name is required"),
    };
    if !ha::accepts_failsafe(&pg.state) {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "Running as a leader");
    }
    st.failsafe.record(FailsafePromise {
        leader: name,
        api_url,
        conn_url,
        at: tokio::time::Instant::now(),
    });
    let lsn = match &pg.state {
        PgState::Running(r) => Some(r.lsn.0),
        _ => None,
    };
    let mut resp = text(StatusCode::OK, "Accepted");
    if let Some(v) = lsn.and_then(|l| HeaderValue::from_str(&l.to_string()).ok()) {
        resp.headers_mut().insert("lsn", v);
    }
    resp
}
