//! `PATCH /config` (JSON merge patch, `null` deletes) and `PUT /config`: validated with the
//! strict dynamic-configuration rules (a ttl that breaks `loop_wait + 2 * retry_timeout <= ttl`
//! is refused with the reason) before a compare-and-set on the key's revision; a concurrent
//! change is a 409, not a lost update.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::ApiState;
use super::request::{json_body, read_cluster, text};
use crate::config::DynamicConfig;
use crate::dcs::{CasOutcome, Dcs};

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
    let cluster = match read_cluster(&*st.dcs).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
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
    let rev = match read_cluster(&*st.dcs).await {
        Ok(c) => c.config.map(|c| c.revision),
        Err(e) => return e.into_response(),
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
    use super::merge_patch;
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
}
