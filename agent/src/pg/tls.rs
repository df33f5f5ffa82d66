//! TLS for the agent's own PostgreSQL sessions (tokio-postgres with rustls), following the
//! role's libpq settings as closely as rustls allows:
//!
//! | `sslmode` | here |
//! |---|---|
//! | unset, `disable`, `allow` | no TLS (unset keeps the agent's behaviour before TLS support) |
//! | `prefer` | TLS when the server offers it, certificate not checked (libpq's `prefer`) |
//! | `require` | TLS or no connection; the chain is checked only when `sslrootcert` is given (libpq) |
//! | `verify-ca` | TLS, chain checked against `sslrootcert` |
//! | `verify-full` | TLS, chain and host name checked |
//!
//! `sslcert`/`sslkey` give a client certificate; `sslcrl`/`sslcrldir` revoke server
//! certificates; `channel_binding: require` uses `tls-server-end-point` (SHA-256 of the
//! server's certificate, which RFC 5929 prescribes for certificates signed with SHA-256 or
//! weaker). What rustls cannot do (`sslpassword`, an encrypted key; `gssencmode: require`) is
//! refused when the configuration is loaded ([`unsupported`]), never silently dropped.
//!
//! A Unix socket never uses TLS (as in libpq).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::{ChannelBinding as CbMode, SslMode};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use super::connparams::ConnParams;

/// Why the settings of `role` cannot be honoured by the agent's own sessions, if so.
pub fn unsupported(p: &ConnParams) -> Option<(&'static str, String)> {
    if p.sslpassword.is_some() {
        return Some((
            "sslpassword",
            "an encrypted sslkey cannot be used by the agent's own connections; give an unencrypted key".into(),
        ));
    }
    if p.gssencmode.as_deref() == Some("require") {
        return Some((
            "gssencmode",
            "require: the agent's own connections cannot use GSSAPI encryption".into(),
        ));
    }
    None
}

/// How one session connects.
#[derive(Clone)]
pub enum Tls {
    /// Plain TCP or a Unix socket.
    Off,
    /// rustls with this configuration; `SslMode` says whether TLS is required.
    On(Arc<ClientConfig>, SslMode),
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tls::Off => f.write_str("Tls::Off"),
            Tls::On(_, mode) => write!(f, "Tls::On({mode:?})"),
        }
    }
}

/// Applies `p` to `cfg` (ssl mode, channel binding) for `host`, and returns the connector.
/// Reads the certificate files; an unreadable file is an error naming it.
pub fn configure(
    cfg: &mut tokio_postgres::Config,
    host: &str,
    p: &ConnParams,
) -> Result<Tls, String> {
    if let Some(cb) = p.channel_binding.as_deref() {
        cfg.channel_binding(match cb {
            "disable" => CbMode::Disable,
            "require" => CbMode::Require,
            _ => CbMode::Prefer,
        });
    }
    let mode = p.sslmode.as_deref().unwrap_or("disable");
    if host.starts_with('/') || matches!(mode, "disable" | "allow") {
        cfg.ssl_mode(SslMode::Disable);
        return Ok(Tls::Off);
    }
    let roots = match &p.sslrootcert {
        Some(path) if path != "system" => Some(root_store(path)?),
        _ => None,
    };
    let verify = match mode {
        "prefer" => Verify::Nothing,
        "require" if roots.is_none() => Verify::Nothing,
        "require" | "verify-ca" => Verify::Chain,
        _ => Verify::Full,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider))),
        Verify::Chain | Verify::Full => {
            let roots = roots.ok_or_else(|| {
                format!(
                    "sslmode {mode} needs sslrootcert (the CA that signed the server's certificate)"
                )
            })?;
            let mut b = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let crls = crls(p)?;
            if !crls.is_empty() {
                b = b.with_crls(crls);
            }
            let webpki = b.build().map_err(|e| format!("TLS setup: {e}"))?;
            if matches!(verify, Verify::Full) {
                builder.with_webpki_verifier(webpki)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
            }
        }
    };
    let config = match (&p.sslcert, &p.sslkey) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("sslkey {key}: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("sslcert/sslkey: {e}"))?
        }
        (Some(_), None) => return Err("sslcert needs sslkey".into()),
        _ => builder.with_no_client_auth(),
    };
    cfg.ssl_mode(if mode == "prefer" {
        SslMode::Prefer
    } else {
        SslMode::Require
    });
    Ok(Tls::On(Arc::new(config), cfg.get_ssl_mode()))
}

enum Verify {
    Nothing,
    Chain,
    Full,
}

fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path}: no PEM certificate in it"));
    }
    Ok(certs)
}

fn root_store(path: &str) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for c in read_certs(path).map_err(|e| format!("sslrootcert {e}"))? {
        store
            .add(c)
            .map_err(|e| format!("sslrootcert {path}: {e}"))?;
    }
    Ok(store)
}

fn crls(p: &ConnParams) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let mut files = Vec::new();
    if let Some(f) = &p.sslcrl {
        files.push(std::path::PathBuf::from(f));
    }
    if let Some(dir) = &p.sslcrldir {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("sslcrldir {dir}: {e}"))?;
        for e in entries.flatten() {
            if e.path().is_file() {
                files.push(e.path());
            }
        }
    }
    let mut out = Vec::new();
    for f in files {
        let list = CertificateRevocationListDer::pem_file_iter(&f)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", f.display()))?;
        out.extend(list);
    }
    Ok(out)
}

/// `prefer`, or `require` without a CA: encryption without authentication of the server,
/// as libpq does in those modes. Signatures are still checked (the handshake is real).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to `sslrootcert`; the name in the certificate is not
/// compared with the host.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// tokio-postgres's connector over rustls.
#[derive(Clone)]
pub struct MakeRustls(pub Arc<ClientConfig>);

/// One connection's connector.
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{domain}: {e}")))?;
        Ok(RustlsConnect {
            config: self.0.clone(),
            name,
        })
    }
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let c = tokio_rustls::TlsConnector::from(self.config);
            Ok(Stream(c.connect(self.name, stream).await?))
        })
    }
}

/// A TLS session to PostgreSQL.
pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, conn) = self.0.get_ref();
        match conn.peer_certificates().and_then(|c| c.first()) {
            Some(cert) => ChannelBinding::tls_server_end_point(
                ring::digest::digest(&ring::digest::SHA256, cert.as_ref())
                    .as_ref()
                    .to_vec(),
            ),
            None => ChannelBinding::none(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
