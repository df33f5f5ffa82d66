//! The REST API (Patroni's paths, codes and JSON), served with axum.
//!
//! Health checks and status pages answer from the latest `NodeSnapshot` only (never a query to
//! etcd or PostgreSQL while the client waits), so a hung database or etcd cannot slow HAProxy.
//! GET, HEAD and OPTIONS are served on every health endpoint; HEAD and OPTIONS carry no body.

pub mod access;
pub mod auth;
pub mod config_edit;
pub mod control;
mod failsafe;
pub mod handover;
pub mod health;
pub mod metrics;
mod request;
pub mod status;
pub mod sync;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_access;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query as AxQuery, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on, post};
use tokio::sync::{mpsc, watch};

use crate::dcs::Dcs;
use crate::runtime::{ApiRequest, NodeSnapshot};
use health::{Health, Query};

/// What the handlers share.
pub struct ApiState<D: Dcs> {
    /// The agent's latest snapshot: every read-only answer comes from it.
    pub snapshot: watch::Receiver<NodeSnapshot>,
    /// etcd, for the mutating endpoints (failover key, config).
    pub dcs: Arc<D>,
    /// Requests for the agent's loop (restart, reinitialize, reload).
    pub requests: mpsc::Sender<ApiRequest>,
    /// Who may call the mutating endpoints (allowlist, client certificate, basic auth).
    pub access: Arc<access::Access>,
    /// Promises given through `POST /failsafe`, read by the loop.
    pub failsafe: crate::runtime::FailsafeInbox,
}

/// The router with every endpoint.
pub fn router<D: Dcs>(state: ApiState<D>) -> Router {
    let methods = MethodFilter::GET
        .or(MethodFilter::HEAD)
        .or(MethodFilter::OPTIONS);
    let access = state.access.clone();
    let dcs = state.dcs.clone();
    let mut r = Router::new();
    for path in Health::PATHS {
        r = r.route(path, on(methods, health_handler::<D>));
    }
    r.route("/patroni", on(methods, patroni_handler::<D>))
        .route("/cluster", on(methods, cluster_handler::<D>))
        .route("/history", on(methods, history_handler::<D>))
        .route(
            "/config",
            on(methods, config_handler::<D>)
                .patch(config_edit::patch_config::<D>)
                .put(config_edit::put_config::<D>),
        )
        .route("/metrics", on(methods, metrics_handler::<D>))
        .route(
            "/switchover",
            post(handover::switchover::<D>).delete(handover::delete_switchover::<D>),
        )
        .route("/failover", post(handover::failover::<D>))
        .route("/restart", post(control::restart::<D>))
        .route("/reinitialize", post(control::reinitialize::<D>))
        .route("/reload", post(control::reload::<D>))
        .route(
            "/failsafe",
            on(methods, failsafe::get_failsafe::<D>).post(failsafe::post_failsafe::<D>),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn(move |req, next| {
            let dcs = dcs.clone();
            let members = move || async move {
                match dcs.cached_cluster() {
                    Some(c) => Some(c),
                    None => dcs.cluster().await.ok(),
                }
            };
            access::check(access.clone(), members, req, next)
        }))
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

async fn health_handler<D: Dcs>(
    State(st): State<Arc<ApiState<D>>>,
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
    let (code, body) = {
        let snap = st.snapshot.borrow();
        (
            health::health(endpoint, &q, &snap, now),
            snap.patroni_json.clone(),
        )
    };
    rendered_response(code, &method, body)
}

/// `/patroni` answers 200 whatever PostgreSQL's state, as Patroni 4 does: the body says it
/// (`state`: `running`, `stopped`, `starting`, ...), and monitoring reads that body exactly when
/// PostgreSQL is down. The health endpoints are the ones whose code carries a verdict.
async fn patroni_handler<D: Dcs>(State(st): State<Arc<ApiState<D>>>, method: Method) -> Response {
    let body = st.snapshot.borrow().patroni_json.clone();
    rendered_response(StatusCode::OK, &method, body)
}

/// A pre-rendered JSON body (`/patroni`), or no body for HEAD and OPTIONS.
fn rendered_response(code: StatusCode, method: &Method, body: axum::body::Bytes) -> Response {
    if method == Method::HEAD || method == Method::OPTIONS {
        return (code, Body::empty()).into_response();
    }
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response()
}

/// The snapshot with the cluster view refreshed from the watch cache when it is live (no etcd
/// request either way): status pages show other members' latest records, not the ones of our
/// last cycle.
fn fresh_snapshot<D: Dcs>(st: &ApiState<D>) -> NodeSnapshot {
    let mut snap = st.snapshot.borrow().clone();
    if let Some(c) = st.dcs.cached_cluster() {
        snap.cluster = Some(Arc::new(c));
    }
    snap
}

async fn cluster_handler<D: Dcs>(State(st): State<Arc<ApiState<D>>>, method: Method) -> Response {
    let body = status::cluster(&fresh_snapshot(&st));
    json_response(StatusCode::OK, &method, &body)
}

async fn history_handler<D: Dcs>(State(st): State<Arc<ApiState<D>>>, method: Method) -> Response {
    let body = status::history(&fresh_snapshot(&st));
    json_response(StatusCode::OK, &method, &body)
}

async fn config_handler<D: Dcs>(State(st): State<Arc<ApiState<D>>>, method: Method) -> Response {
    let body = status::config(&fresh_snapshot(&st));
    json_response(StatusCode::OK, &method, &body)
}

async fn metrics_handler<D: Dcs>(State(st): State<Arc<ApiState<D>>>) -> Response {
    let secs = crate::clock::wall_ms() as f64 / 1000.0;
    let body = metrics::render(&st.snapshot.borrow(), secs);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    error_response(StatusCode::NOT_FOUND, format!("no endpoint {}", uri.path()))
}

/// Serves `router` on `listener` until `shutdown` resolves; HTTPS when `tls` is given. Each
/// request carries the client's address (`ConnectInfo`) and, over HTTPS, whether it
/// presented a certificate ([`access::ClientCert`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use std::net::SocketAddr;
    match tls {
        None => {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                h.graceful_shutdown(Some(std::time::Duration::from_secs(1)));
            });
            let std_listener = listener.into_std()?;
            axum_server::from_tcp(std_listener)?
                .acceptor(tls::CertAcceptor(
                    axum_server::tls_rustls::RustlsAcceptor::new(tls),
                ))
                .handle(handle)
                .serve(router.into_make_service_with_connect_info::<SocketAddr>())
                .await
        }
    }
}
