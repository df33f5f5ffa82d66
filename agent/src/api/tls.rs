//! HTTPS for the REST API: `restapi.certfile`/`keyfile`, and client certificates checked
//! against `restapi.cafile` (`verify_client`), with rustls.
//!
//! - `verify_client: required`: a client without a certificate signed by `cafile` fails the TLS
//!   handshake, so its request never reaches a handler (nor the health checks);
//! - `optional`: such a client may connect (health checks work) but a certificate it does send
//!   must be valid; whether it sent one is recorded per connection ([`ClientCert`]) so that
//!   mutating requests without one get 403, as in Patroni;
//! - `none` (or unset): no certificate is asked for, even with `cafile`.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use axum::Extension;
use axum::middleware::AddExtension;
use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use tower_layer::Layer;

use super::access::ClientCert;
use crate::config::{RestApiConfig, VerifyClient};

/// Builds the server's TLS configuration from `restapi` (which must have a `certfile`);
/// every file problem names the key and the file.
pub fn server_config(r: &RestApiConfig) -> Result<RustlsConfig, String> {
    let cert = r
        .certfile
        .as_deref()
        .ok_or_else(|| "restapi.certfile is not set".to_string())?;
    let key = r.keyfile.as_deref().unwrap_or(cert);
    let chain = certs(cert).map_err(|e| format!("restapi.certfile {e}"))?;
    let key = crate::keyfile::load_der("restapi.keyfile", key, r.keyfile_password.as_ref())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match (r.verify_client, &r.cafile) {
        (VerifyClient::None, _) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca).map_err(|e| format!("restapi.cafile {e}"))? {
                roots
                    .add(c)
                    .map_err(|e| format!("restapi.cafile {}: {e}", ca.display()))?;
            }
            let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if mode == VerifyClient::Optional {
                v = v.allow_unauthenticated();
            }
            let verifier = v
                .build()
                .map_err(|e| format!("restapi.cafile {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        (_, None) => return Err("restapi.verify_client needs restapi.cafile".into()),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("restapi.certfile/keyfile: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let list = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if list.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(list)
}

/// rustls' acceptor that also records, per connection, whether the client presented a
/// (verified) certificate.
#[derive(Clone)]
pub struct CertAcceptor(pub RustlsAcceptor<DefaultAcceptor>);

impl<I, S> Accept<I, S> for CertAcceptor
where
    RustlsAcceptor<DefaultAcceptor>: Accept<I, S, Stream = tokio_rustls::server::TlsStream<I>>,
    <RustlsAcceptor<DefaultAcceptor> as Accept<I, S>>::Future: Send + 'static,
    <RustlsAcceptor<DefaultAcceptor> as Accept<I, S>>::Service: Send + 'static,
    I: Send + 'static,
{
    type Stream = tokio_rustls::server::TlsStream<I>;
    type Service =
        AddExtension<<RustlsAcceptor<DefaultAcceptor> as Accept<I, S>>::Service, ClientCert>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let handshake = self.0.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = handshake.await?;
            let sent = stream
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            Ok((stream, Extension(ClientCert(sent)).layer(service)))
        })
    }
}
