//! `restapi.authentication`: HTTP basic auth on every mutating request (POST, PUT, PATCH,
//! DELETE), as Patroni's `check_access`. Read-only requests stay open so health checks and
//! monitoring need no credentials.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::pg::Credentials;

/// Whether `header_value` (an `Authorization` header) carries `creds`.
pub fn authorized(header_value: Option<&HeaderValue>, creds: &Credentials) -> bool {
    let Some(v) = header_value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(b64) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(raw) else {
        return false;
    };
    let Some((user, pass)) = text.split_once(':') else {
        return false;
    };
    let want_pass = creds.password.as_deref().unwrap_or("");
    constant_time_eq(user.as_bytes(), creds.username.as_bytes())
        & constant_time_eq(pass.as_bytes(), want_pass.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: 401 for a mutating request without the configured credentials.
pub async fn require(creds: Option<Credentials>, req: Request, next: Next) -> Response {
    let mutating = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if let Some(creds) = &creds
        && mutating
        && !authorized(req.headers().get(header::AUTHORIZATION), creds)
    {
        let why = if req.headers().contains_key(header::AUTHORIZATION) {
            "not authenticated: wrong user name or password"
        } else {
            "no auth header received: this request needs restapi.authentication credentials"
        };
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"hapg\"")],
            why,
        )
            .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth() {
        let c = Credentials {
            username: "admin".into(),
            password: Some("secret".into()),
        };
        let good = HeaderValue::from_static("Basic YWRtaW46c2VjcmV0");
        let bad = HeaderValue::from_static("Basic YWRtaW46d3Jvbmc=");
        assert!(authorized(Some(&good), &c));
        assert!(!authorized(Some(&bad), &c));
        assert!(!authorized(None, &c));
        assert!(!authorized(Some(&HeaderValue::from_static("Bearer x")), &c));
    }
}
