//! The etcd client behind `EtcdDcs`: connection options, lazy connecting, and how failures
//! are classified.
//!
//! Invariants:
//! - building a `Conn` never touches the network, so the agent starts (and reports etcd as
//!   unreachable) while etcd is down; the first call connects and later calls retry;
//! - HTTP/2 pings detect a frozen or cut-off etcd; their interval must stay at or above etcd's
//!   `--grpc-keepalive-min-time` (default 5 s), or etcd answers GOAWAY `too_many_pings` and
//!   drops the connection with every stream on it (measured here: 1 s pings killed an idle
//!   watch after 4 s; 5 s pings kept it for good and still noticed SIGSTOP within ~6 s).
//!
//! This module must not retry on its own: callers bound every call with `op_timeout`.

use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use tokio::sync::Mutex;

use crate::dcs::{DcsError, EtcdSettings, Result};

/// HTTP/2 ping interval: etcd's default `--grpc-keepalive-min-time` (see the module docs).
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// How long an unanswered ping may take before the connection is dropped.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an etcd call failed, before it becomes a `DcsError`.
#[derive(Debug)]
pub(super) enum Failure {
    /// `op_timeout` passed (the request may still be applied later).
    Timeout(Duration),
    /// The client or etcd reported an error.
    Etcd(etcd_client::Error),
}

impl From<etcd_client::Error> for Failure {
    fn from(e: etcd_client::Error) -> Self {
        Failure::Etcd(e)
    }
}

impl Failure {
    /// etcd says our lease does not exist (expired or revoked).
    pub(super) fn is_lease_not_found(&self) -> bool {
        match self {
            Failure::Etcd(etcd_client::Error::LeaseKeepAliveError(m)) => m.contains("not found"),
            Failure::Etcd(etcd_client::Error::GRpcStatus(s)) => {
                s.message().contains("requested lease not found")
            }
            Failure::Timeout(_) | Failure::Etcd(_) => false,
        }
    }

    /// The connection itself may be broken (as opposed to etcd refusing one request), so
    /// anything learned through it, like the watch cache, is suspect.
    pub(super) fn is_transport(&self) -> bool {
        use etcd_client::Error as E;
        // gRPC status codes (tonic is not a direct dependency): CANCELLED, UNKNOWN,
        // DEADLINE_EXCEEDED, UNAVAILABLE. etcd-client reports a broken HTTP/2 connection as
        // UNKNOWN "h2 protocol error".
        const CONNECTION_CODES: [i32; 4] = [1, 2, 4, 14];
        match self {
            Failure::Timeout(_) => true,
            Failure::Etcd(E::TransportError(_) | E::IoError(_)) => true,
            Failure::Etcd(E::LeaseKeepAliveError(m) | E::WatchError(m)) => !m.contains("not found"),
            Failure::Etcd(E::GRpcStatus(s)) => CONNECTION_CODES.contains(&i32::from(s.code())),
            Failure::Etcd(_) => false,
        }
    }

    /// The `DcsError` for operation `op`.
    pub(super) fn into_dcs(self, op: &'static str) -> DcsError {
        let detail = match self {
            Failure::Timeout(d) => format!("timed out after {} ms", d.as_millis()),
            Failure::Etcd(e) => e.to_string(),
        };
        DcsError::Unavailable { op, detail }
    }
}

/// A lazily connected etcd client.
pub(super) struct Conn {
    endpoints: Vec<String>,
    options: ConnectOptions,
    client: Mutex<Option<Client>>,
}

impl Conn {
    /// Validates the settings and reads the TLS files; does not connect.
    pub(super) fn new(settings: &EtcdSettings, op_timeout: Duration) -> Result<Conn> {
        if settings.endpoints.is_empty() {
            return Err(DcsError::Invalid {
                what: "endpoints",
                detail: "no etcd endpoint given".into(),
            });
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(op_timeout)
            .with_timeout(op_timeout)
            .with_keep_alive(PING_INTERVAL, PING_TIMEOUT)
            .with_keep_alive_while_idle(true);
        if let Some(user) = &settings.username {
            let password = settings.password.clone().unwrap_or_default();
            options = options
                .with_user(user.clone(), password)
                // Tokens expire (and simple tokens die with an etcd restart): re-authenticate
                // and retry instead of failing every call until a restart of the agent.
                .with_auto_token_refresh(true);
        }
        if let Some(tls) = tls_options(settings)? {
            options = options.with_tls(tls);
        }
        Ok(Conn {
            endpoints: settings.endpoints.clone(),
            options,
            client: Mutex::new(None),
        })
    }

    /// The client, connecting first if no earlier call succeeded in doing so. Without
    /// credentials connecting needs no round trip; with them it authenticates.
    pub(super) async fn client(&self) -> std::result::Result<Client, Failure> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = Client::connect(&self.endpoints, Some(self.options.clone())).await?;
        *slot = Some(c.clone());
        tracing::debug!(endpoints = ?self.endpoints, "etcd client created");
        Ok(c)
    }
}

/// TLS when the endpoints are `https://`; mixing schemes is refused.
fn tls_options(settings: &EtcdSettings) -> Result<Option<TlsOptions>> {
    let https = settings
        .endpoints
        .iter()
        .filter(|e| e.starts_with("https://"))
        .count();
    if https == 0 {
        return Ok(None);
    }
    if https != settings.endpoints.len() {
        return Err(DcsError::Invalid {
            what: "endpoints",
            detail: "some endpoints are https:// and some are not".into(),
        });
    }
    // etcd-client's TLS uses rustls with ring; a process that has not chosen a provider yet
    // (hactl, tests) gets ring. Ignoring the result: another provider may already be set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |what: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| DcsError::Invalid {
            what,
            detail: format!("{}: {e}", path.display()),
        })
    };
    let mut tls = TlsOptions::new();
    if let Some(ca) = &settings.cacert {
        tls = tls.ca_certificate(Certificate::from_pem(read("cacert", ca)?));
    }
    match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => {
            let key = crate::keyfile::load_pem("etcd3.key", key, settings.key_password.as_ref())
                .map_err(|detail| DcsError::Invalid {
                    what: "key",
                    detail,
                })?;
            tls = tls.identity(Identity::from_pem(read("cert", cert)?, key));
        }
        (None, None) => {}
        _ => {
            return Err(DcsError::Invalid {
                what: "cert",
                detail: "a client certificate needs both cert and key".into(),
            });
        }
    }
    Ok(Some(tls))
}
