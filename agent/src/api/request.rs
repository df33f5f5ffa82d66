//! Reading mutating requests: the JSON object body and its string fields, and the one-line
//! text answers (Patroni's `patronictl` prints them as they are). A request that cannot be
//! read is refused with 400 and the reason, never a 5xx.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub(super) fn text(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, msg.into()).into_response()
}

/// A request refused before anything was done: status and one-line reason.
pub(super) type Reject = (StatusCode, String);

pub(super) fn bad(msg: impl Into<String>) -> Reject {
    (StatusCode::BAD_REQUEST, msg.into())
}

/// Parses a JSON object body; an empty body is allowed when `optional`.
pub(super) fn json_body(
    body: &[u8],
    optional: bool,
) -> Result<serde_json::Map<String, Value>, Reject> {
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

pub(super) fn str_field(
    m: &serde_json::Map<String, Value>,
    k: &str,
) -> Result<Option<String>, Reject> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!("{k} must be a string, not {other}"))),
    }
}

/// The cluster from etcd (the watch cache when live), or 503 with why it cannot be read.
pub(super) async fn read_cluster<D: crate::dcs::Dcs>(
    dcs: &D,
) -> Result<crate::dcs::Cluster, Reject> {
    dcs.cluster().await.map_err(|e| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read the cluster from etcd: {e}"),
        )
    })
}
