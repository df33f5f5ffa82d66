//! The members' REST API, as patronictl calls it: the base URL is the member record's
//! `api_url` with its path replaced by the endpoint; JSON bodies; basic auth when configured.
//!
//! The client ignores proxy variables (failover traffic must not be redirected) and tells a
//! request that never reached the member ([`ApiError::Unreachable`], safe to retry elsewhere or
//! to fall back to etcd) from one whose outcome is unknown ([`ApiError::NoAnswer`]).

use std::time::Duration;

use anyhow::Context;
use reqwest::Method;
use serde_json::Value;

use crate::config::Settings;

/// What came back.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body text (one line for the agent's control endpoints).
    pub body: String,
}

impl Reply {
    /// The body parsed as JSON (Null when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    /// The body on one line, trimmed.
    pub fn text(&self) -> String {
        self.body.trim().replace('\n', " ")
    }
}

/// A request that did not produce a reply.
#[derive(Debug)]
pub enum ApiError {
    /// No connection could be made: the request was not delivered.
    Unreachable(String),
    /// The request may have been delivered, but no (complete) answer came.
    NoAnswer(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Unreachable(m) => write!(f, "unreachable: {m}"),
            ApiError::NoAnswer(m) => write!(f, "no answer: {m}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// REST API client.
pub struct Api {
    client: reqwest::Client,
    auth: Option<(String, String)>,
}

impl Api {
    /// A client with the settings' auth and TLS options.
    pub fn new(settings: &Settings) -> anyhow::Result<Api> {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("hactl/", env!("CARGO_PKG_VERSION")));
        if let Some((cert, key)) = &settings.api_identity {
            let mut pem = std::fs::read(cert)
                .with_context(|| format!("reading ctl.certfile {}", cert.display()))?;
            pem.push(b'\n');
            pem.extend(
                ha_agent::keyfile::load_pem("ctl.keyfile", key, settings.api_key_password.as_ref())
                    .map_err(|e| anyhow::anyhow!(e))?,
            );
            b = b.identity(reqwest::Identity::from_pem(&pem).with_context(|| {
                format!(
                    "ctl.certfile {} / ctl.keyfile {}: not a PEM certificate and key",
                    cert.display(),
                    key.display()
                )
            })?);
        }
        let roots = match &settings.api_cacert {
            Some(ca) => {
                let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
                reqwest::Certificate::from_pem_bundle(&pem)
                    .with_context(|| format!("{}: not a PEM certificate bundle", ca.display()))?
            }
            None => Vec::new(),
        };
        // patronictl's rules: with a client certificate, `insecure` only skips the host name
        // check (the chain is still checked against the CA); without one it skips the whole
        // verification.
        b = match (settings.api_identity.is_some(), settings.insecure) {
            (true, true) if !roots.is_empty() => b
                .tls_certs_only(roots)
                .danger_accept_invalid_hostnames(true),
            (_, true) => b.danger_accept_invalid_certs(true),
            (_, false) => roots.into_iter().fold(b, |b, c| b.add_root_certificate(c)),
        };
        Ok(Api {
            client: b.build().context("building the HTTP client")?,
            auth: settings.api_auth.clone(),
        })
    }

    /// `method` on `endpoint` of the member whose record says `api_url`, with a JSON body.
    pub async fn call(
        &self,
        api_url: &str,
        method: Method,
        endpoint: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Reply, ApiError> {
        let url = endpoint_url(api_url, endpoint)
            .ok_or_else(|| ApiError::Unreachable(format!("api_url {api_url:?} is not a URL")))?;
        let mut req = self.client.request(method, &url).timeout(timeout);
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| classify(&url, &e))?;
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .map_err(|e| ApiError::NoAnswer(format!("{url}: {e}")))?;
        Ok(Reply { status, body })
    }

    /// `GET /patroni` of a member, as JSON.
    pub async fn patroni(&self, api_url: &str) -> Result<Value, ApiError> {
        let r = self
            .call(
                api_url,
                Method::GET,
                "patroni",
                None,
                Duration::from_secs(5),
            )
            .await?;
        Ok(r.json())
    }
}

fn classify(url: &str, e: &reqwest::Error) -> ApiError {
    let mut msg = format!("{url}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    if e.is_connect() || e.is_builder() {
        ApiError::Unreachable(msg)
    } else {
        ApiError::NoAnswer(msg)
    }
}

/// `http://h:8008/patroni` + `switchover` → `http://h:8008/switchover`.
pub fn endpoint_url(api_url: &str, endpoint: &str) -> Option<String> {
    let (scheme, rest) = api_url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() {
        return None;
    }
    Some(format!(
        "{scheme}://{authority}/{}",
        endpoint.trim_start_matches('/')
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_replace_the_path() {
        assert_eq!(
            endpoint_url("http://127.0.0.1:8008/patroni", "switchover").as_deref(),
            Some("http://127.0.0.1:8008/switchover")
        );
        assert_eq!(
            endpoint_url("https://[::1]:8008", "/config").as_deref(),
            Some("https://[::1]:8008/config")
        );
        assert_eq!(endpoint_url("nonsense", "x"), None);
    }
}
