//! Who may call the mutating endpoints (POST, PUT, PATCH, DELETE), in Patroni's order
//! (`RestApiServer.check_access`):
//!
//! 1. `restapi.allowlist` / `allowlist_include_members`: a client address outside both gets
//!    403 `Access is denied` (members are not included for `POST /failsafe`, as in Patroni);
//! 2. `verify_client: optional|required` over HTTPS: a connection without a client
//!    certificate gets 403 `client certificate required` (with `required` such a connection
//!    never gets this far: the TLS handshake fails);
//! 3. `restapi.authentication`: 401 without the right basic-auth credentials.
//!
//! Read-only requests (health checks, status pages, metrics) skip all three and cost one
//! method comparison, so HAProxy's checks stay as fast as without any of this.
//!
//! Invariant: fail closed. A request whose client address is unknown (no `ConnectInfo`) is
//! denied when an allowlist is configured; members' addresses that cannot be resolved allow
//! nobody.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth;
use crate::config::allowlist::{AllowEntry, IpNet, canonical};
use crate::dcs::Cluster;
use crate::pg::Credentials;

/// Whether the TLS connection carried a verified client certificate (set per connection by
/// the HTTPS acceptor; absent on plain HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCert(pub bool);

/// The access rules of the mutating endpoints.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `restapi.allowlist`, host names already resolved.
    pub allowlist: Vec<IpNet>,
    /// `restapi.allowlist_include_members`.
    pub include_members: bool,
    /// `verify_client` is optional or required (and the API serves HTTPS).
    pub client_cert: bool,
    /// `restapi.authentication`.
    pub auth: Option<Credentials>,
}

/// Resolves `restapi.allowlist` (host names once, now, as Patroni does when it loads the
/// configuration). A name that does not resolve is logged and allows nobody.
pub async fn resolve_allowlist(entries: &[AllowEntry]) -> Vec<IpNet> {
    let mut out = Vec::new();
    for e in entries {
        match e {
            AllowEntry::Net(n) => out.push(*n),
            AllowEntry::Host(h) => {
                let ips = resolve(h, 8080).await;
                if ips.is_empty() {
                    tracing::error!(host = %h, "restapi.allowlist: cannot resolve; it allows nobody");
                }
                out.extend(ips.into_iter().map(IpNet::host));
            }
        }
    }
    out
}

async fn resolve(host: &str, port: u16) -> Vec<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => addrs.map(|a| a.ip()).collect(),
        Err(e) => {
            tracing::debug!(host, error = %e, "cannot resolve");
            Vec::new()
        }
    }
}

/// The addresses of every member's `api_url` host (Patroni's `allowlist_include_members`).
pub async fn member_addresses(cluster: &Cluster) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for m in &cluster.members {
        if let Some(host) = api_url_host(&m.record.api_url) {
            out.extend(resolve(&host, 80).await);
        }
    }
    out
}

/// The host of `http(s)://host[:port]/...`, brackets removed.
pub fn api_url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit('@').next()?;
    let host = if let Some(h) = hostport.strip_prefix('[') {
        h.split_once(']')?.0
    } else {
        hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// Whether `method` changes something (and so goes through the checks).
pub fn is_mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Middleware applying [`Access`]; `members` gives the cluster for
/// `allowlist_include_members` (the watch cache, or one read of etcd).
pub async fn check<F, Fut>(access: Arc<Access>, members: F, req: Request, next: Next) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Option<Cluster>>,
{
    if !is_mutating(req.method()) {
        return next.run(req).await;
    }
    // Patroni's `check_access(allowlist_check_members=False)` on `POST /failsafe`: the leader
    // calls it exactly when etcd (and so the member list) cannot be read.
    let include_members = access.include_members && req.uri().path() != "/failsafe";
    if !access.allowlist.is_empty() || include_members {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| canonical(c.0.ip()));
        let allowed = match peer {
            None => false,
            Some(ip) => {
                access.allowlist.iter().any(|n| n.contains(ip))
                    || (include_members
                        && match members().await {
                            Some(c) => member_addresses(&c)
                                .await
                                .into_iter()
                                .any(|m| canonical(m) == ip),
                            None => false,
                        })
            }
        };
        if !allowed {
            tracing::warn!(client = ?peer, method = %req.method(), path = %req.uri().path(), "restapi.allowlist: access denied");
            return (StatusCode::FORBIDDEN, "Access is denied").into_response();
        }
    }
    if access.client_cert && req.extensions().get::<ClientCert>() != Some(&ClientCert(true)) {
        return (StatusCode::FORBIDDEN, "client certificate required").into_response();
    }
    if let Some(creds) = &access.auth
        && !auth::authorized(req.headers().get(header::AUTHORIZATION), creds)
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
    fn api_url_hosts() {
        assert_eq!(
            api_url_host("https://10.0.0.1:8008/patroni").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            api_url_host("http://[::1]:8008/patroni").as_deref(),
            Some("::1")
        );
        assert_eq!(
            api_url_host("http://node1/patroni").as_deref(),
            Some("node1")
        );
        assert_eq!(api_url_host("garbage"), None);
        assert_eq!(api_url_host("http:///x"), None);
    }
}
