//! The router served for real on loopback: HTTPS from `restapi.certfile`/`keyfile`, basic
//! auth on mutating requests, 4xx with a reason for bad input.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::access::Access;
use super::{ApiState, router, serve};
use crate::config::DynamicConfig;
use crate::config::VerifyClient;
use crate::dcs::Keys;
use crate::dcs::memory::{MemoryDcs, MemoryStore};
use crate::ha::HaConfig;
use crate::pg::Credentials;
use crate::runtime::NodeSnapshot;

/// What the API under test runs with.
#[derive(Default)]
pub(super) struct Setup {
    /// `restapi` TLS settings (certfile set means HTTPS).
    pub restapi: Option<crate::config::RestApiConfig>,
    /// Access rules (basic auth admin/secret when `None`).
    pub access: Option<Access>,
}

/// A `restapi` section with only the TLS fields filled in.
pub(super) fn tls_restapi(
    cert: &std::path::Path,
    key: &std::path::Path,
    ca: Option<&std::path::Path>,
    verify: VerifyClient,
) -> crate::config::RestApiConfig {
    crate::config::RestApiConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        connect_address: "127.0.0.1:0".into(),
        authentication: None,
        certfile: Some(cert.to_owned()),
        keyfile: Some(key.to_owned()),
        keyfile_password: None,
        cafile: ca.map(ToOwned::to_owned),
        verify_client: verify,
        allowlist: Vec::new(),
        allowlist_include_members: false,
    }
}

async fn start(tls: bool) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let restapi = tls.then(|| {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).expect("write cert");
        std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
        tls_restapi(&cert, &key, None, VerifyClient::None)
    });
    let base = start_with(Setup {
        restapi,
        access: None,
    })
    .await;
    (base, dir)
}

/// Serves the router on a loopback port; returns `http(s)://localhost:<port>`.
pub(super) async fn start_with(setup: Setup) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let snap = NodeSnapshot::initial("pg1", "demo", HaConfig::default(), DynamicConfig::default());
    let (_tx, rx) = watch::channel(snap);
    let (req_tx, _req_rx) = mpsc::channel(1);
    let dcs = Arc::new(MemoryDcs::new(
        MemoryStore::new(),
        Keys::new("/service/", "demo"),
        "pg1",
        30,
    ));
    let access = setup.access.unwrap_or_else(|| Access {
        auth: Some(Credentials {
            username: "admin".into(),
            password: Some("secret".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    let state = ApiState {
        failsafe: Default::default(),
        snapshot: rx,
        dcs,
        requests: req_tx,
        access: Arc::new(access),
    };
    let tls_cfg = setup
        .restapi
        .as_ref()
        .map(|r| super::tls::server_config(r).expect("tls config"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(serve(
        listener,
        router(state),
        tls_cfg,
        std::future::pending(),
    ));
    let scheme = if setup.restapi.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://localhost:{port}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

#[tokio::test]
async fn api_serves_https_when_a_certificate_is_configured() {
    let (base, _dir) = start(true).await;
    let r = client()
        .get(format!("{base}/patroni"))
        .send()
        .await
        .expect("https request");
    // Over TLS; /patroni answers 200 even before the first cycle (as Patroni 4 does, the
    // body says what is known).
    assert_eq!(r.status().as_u16(), 200);
    let plain = base.replace("https://", "http://");
    let r = client().get(format!("{plain}/patroni")).send().await;
    assert!(
        r.is_err() || !r.expect("response").status().is_success(),
        "plain HTTP must not be served"
    );
}

#[tokio::test]
async fn mutating_requests_need_credentials_and_bad_input_gets_a_reason() {
    let (base, _dir) = start(false).await;
    let c = client();
    let r = c
        .post(format!("{base}/switchover"))
        .json(&serde_json::json!({"leader": "pg1"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = c
        .post(format!("{base}/switchover"))
        .basic_auth("admin", Some("secret"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.expect("body").contains("invalid JSON"));
    let r = c
        .patch(format!("{base}/config"))
        .basic_auth("admin", Some("secret"))
        .json(&serde_json::json!({"ttl": "soon"}))
        .send()
        .await
        .expect("patch");
    // No config key in this empty store yet: 503 with the reason, not a crash.
    assert_eq!(r.status().as_u16(), 503);
    let r = c
        .get(format!("{base}/replica?lag=lots"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 400);
    // Read-only endpoints stay open without credentials.
    let r = c.get(format!("{base}/cluster")).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
}
