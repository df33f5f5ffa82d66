//! The access rules against real TLS connections on loopback: client certificates
//! (`verify_client` optional and required), the allowlist (a client bound to 127.0.0.2), and
//! their order before basic auth. Certificates come from a throwaway CA made with rcgen.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use super::access::Access;
use super::tests::{Setup, start_with, tls_restapi};
use crate::config::VerifyClient;
use crate::config::allowlist::IpNet;
use crate::pg::Credentials;

/// A CA, a server certificate for localhost, a client certificate from the CA and one from
/// another CA, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
    stranger: (PathBuf, PathBuf),
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("ca")
}

fn leaf(
    dir: &Path,
    name: &str,
    sans: &[&str],
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    let cert = p.signed_by(&key, issuer).expect("sign");
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).expect("write");
    std::fs::write(&k, key.serialize_pem()).expect("write");
    (c, k)
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let ours = ca("hapg test CA");
        let theirs = ca("someone else's CA");
        let ca = dir.join("ca.crt");
        std::fs::write(&ca, ours.pem()).expect("write");
        Pki {
            ca,
            server: leaf(dir, "server", &["localhost", "127.0.0.1"], &ours),
            client: leaf(dir, "client", &[], &ours),
            stranger: leaf(dir, "stranger", &[], &theirs),
        }
    }
}

fn client(pki: &Pki, cert: Option<&(PathBuf, PathBuf)>, from: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).expect("ca")).expect("ca"),
        );
    if let Some((c, k)) = cert {
        let mut pem = std::fs::read(c).expect("cert");
        pem.extend(std::fs::read(k).expect("key"));
        b = b.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
    }
    if let Some(ip) = from {
        b = b.local_address(ip.parse::<IpAddr>().ok());
    }
    b.build().expect("client")
}

async fn switchover(c: &reqwest::Client, base: &str) -> Result<(u16, String), reqwest::Error> {
    let r = c
        .post(format!("{base}/switchover"))
        .json(&serde_json::json!({"leader": "pg1"}))
        .send()
        .await?;
    let code = r.status().as_u16();
    Ok((code, r.text().await.unwrap_or_default()))
}

async fn read_only(c: &reqwest::Client, base: &str) -> Result<u16, reqwest::Error> {
    Ok(c.get(format!("{base}/cluster"))
        .send()
        .await?
        .status()
        .as_u16())
}

#[tokio::test]
async fn required_client_certificates_are_checked_in_the_handshake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let base = start_with(Setup {
        restapi: Some(tls_restapi(
            &pki.server.0,
            &pki.server.1,
            Some(&pki.ca),
            VerifyClient::Required,
        )),
        access: Some(Access {
            client_cert: true,
            ..Default::default()
        }),
    })
    .await;
    // No certificate, or one from another CA: no HTTP at all, not even health checks.
    assert!(switchover(&client(&pki, None, None), &base).await.is_err());
    assert!(read_only(&client(&pki, None, None), &base).await.is_err());
    assert!(
        switchover(&client(&pki, Some(&pki.stranger), None), &base)
            .await
            .is_err()
    );
    // Our CA's certificate: the request reaches the handler (412: no such cluster here).
    let (code, body) = switchover(&client(&pki, Some(&pki.client), None), &base)
        .await
        .expect("request with a certificate");
    assert!(code != 403 && code != 401, "{code} {body}");
}

#[tokio::test]
async fn optional_client_certificates_guard_only_mutating_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let base = start_with(Setup {
        restapi: Some(tls_restapi(
            &pki.server.0,
            &pki.server.1,
            Some(&pki.ca),
            VerifyClient::Optional,
        )),
        access: Some(Access {
            client_cert: true,
            auth: Some(Credentials {
                username: "admin".into(),
                password: Some("secret".into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
    })
    .await;
    let anonymous = client(&pki, None, None);
    assert_eq!(
        read_only(&anonymous, &base)
            .await
            .expect("read-only request"),
        200
    );
    let (code, body) = switchover(&anonymous, &base).await.expect("post");
    assert_eq!((code, body.as_str()), (403, "client certificate required"));
    // A certificate that does not verify fails the handshake even in optional mode.
    assert!(
        switchover(&client(&pki, Some(&pki.stranger), None), &base)
            .await
            .is_err()
    );
    // With a good certificate, basic auth is checked next.
    let (code, _) = switchover(&client(&pki, Some(&pki.client), None), &base)
        .await
        .expect("post");
    assert_eq!(code, 401);
}

#[tokio::test]
async fn the_allowlist_guards_mutating_requests_and_leaves_health_checks_open() {
    let base = start_with(Setup {
        restapi: None,
        access: Some(Access {
            allowlist: vec![IpNet::parse("127.0.0.1/32").expect("net")],
            ..Default::default()
        }),
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let outsider = client(&pki, None, Some("127.0.0.2"));
    let base_ip = base.replace("localhost", "127.0.0.1");
    let (code, body) = switchover(&outsider, &base_ip).await.expect("post");
    assert_eq!((code, body.as_str()), (403, "Access is denied"));
    assert_eq!(
        read_only(&outsider, &base_ip)
            .await
            .expect("read-only request"),
        200
    );
    let insider = client(&pki, None, Some("127.0.0.1"));
    let (code, body) = switchover(&insider, &base_ip).await.expect("post");
    assert!(code != 403, "{code} {body}");
}
