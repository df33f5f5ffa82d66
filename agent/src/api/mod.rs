//! The REST API (Patroni's paths, codes and JSON), served with axum.
//!
//! Health checks and status pages answer from the latest `NodeSnapshot` only (never a query to
//! etcd or PostgreSQL while the client waits), so a hung database or etcd cannot slow HAProxy.
//! GET, HEAD and OPTIONS are served on every health endpoint; HEAD and OPTIONS carry no body.

pub mod health;
pub mod status;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query as AxQuery, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use tokio::sync::watch;

use crate::runtime::NodeSnapshot;
use health::{Health, Query};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The agent's latest snapshot.
    pub snapshot: watch::Receiver<NodeSnapshot>,
}

/// The router with every endpoint.
pub fn router(state: ApiState) -> Router {
    let methods = MethodFilter::GET
        .or(MethodFilter::HEAD)
        .or(MethodFilter::OPTIONS);
    let mut r = Router::new();
    for path in Health::PATHS {
        r = r.route(path, on(methods, health_handler));
    }
    r.route("/patroni", on(methods, patroni_handler))
        .route("/cluster", on(methods, cluster_handler))
        .route("/history", on(methods, history_handler))
        .route("/config", on(methods, config_handler))
        .fallback(not_found)
        .with_state(Arc::new(state))
}

fn json_response(code: StatusCode, method: &Method, body: &serde_json::Value) -> Response {
    if method == Method::HEAD || method == Method::OPTIONS {
        return (code, Body::empty()).into_response();
    }
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    (code, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// A one-line error as JSON, for 4xx answers.
pub fn error_response(code: StatusCode, reason: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": reason.into() });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn health_handler(
    State(st): State<Arc<ApiState>>,
    method: Method,
    uri: Uri,
    AxQuery(pairs): AxQuery<Vec<(String, String)>>,
) -> Response {
    let Some(endpoint) = Health::from_path(uri.path()) else {
        return error_response(StatusCode::NOT_FOUND, "no such endpoint");
    };
    let q = match Query::parse(&pairs) {
        Ok(q) => q,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e),
    };
    let now = tokio::time::Instant::now();
    let snap = st.snapshot.borrow();
    let code = health::health(endpoint, &q, &snap, now);
    if method == Method::HEAD || method == Method::OPTIONS {
        return (code, Body::empty()).into_response();
    }
    json_response(code, &method, &status::patroni(&snap))
}

async fn patroni_handler(State(st): State<Arc<ApiState>>, method: Method) -> Response {
    let snap = st.snapshot.borrow();
    let running = matches!(snap.pg.state, crate::ha::PgState::Running(_));
    let code = if running && snap.is_fresh(tokio::time::Instant::now()) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(code, &method, &status::patroni(&snap))
}

async fn cluster_handler(State(st): State<Arc<ApiState>>, method: Method) -> Response {
    let body = status::cluster(&st.snapshot.borrow());
    json_response(StatusCode::OK, &method, &body)
}

async fn history_handler(State(st): State<Arc<ApiState>>, method: Method) -> Response {
    let body = status::history(&st.snapshot.borrow());
    json_response(StatusCode::OK, &method, &body)
}

async fn config_handler(State(st): State<Arc<ApiState>>, method: Method) -> Response {
    let body = status::config(&st.snapshot.borrow());
    json_response(StatusCode::OK, &method, &body)
}

async fn not_found(uri: Uri) -> Response {
    error_response(StatusCode::NOT_FOUND, format!("no endpoint {}", uri.path()))
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
