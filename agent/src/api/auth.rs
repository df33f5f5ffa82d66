//! `restapi.authentication`: checking HTTP basic auth credentials (in constant time). The
//! access middleware (`access.rs`) asks for them on mutating requests only, as Patroni's
//! `check_access`, so health checks and monitoring need no credentials.

use axum::http::HeaderValue;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth() {
        let c = Credentials {
            username: "admin".into(),
            password: Some("secret".into()),
            ..Default::default()
        };
        let good = HeaderValue::from_static("Basic YWRtaW46c2VjcmV0");
        let bad = HeaderValue::from_static("Basic YWRtaW46d3Jvbmc=");
        assert!(authorized(Some(&good), &c));
        assert!(!authorized(Some(&bad), &c));
        assert!(!authorized(None, &c));
        assert!(!authorized(Some(&HeaderValue::from_static("Bearer x")), &c));
    }
}
