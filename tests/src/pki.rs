//! `Pki`: a throwaway certificate authority for one test (rcgen), with a server certificate
//! for `localhost`/`127.0.0.1` (etcd, the REST API, PostgreSQL) and client certificates by
//! common name (etcd takes the CN as the user when auth is on). Files are PEM, owned by the
//! unprivileged user the agents and PostgreSQL run as, keys mode 0600 (PostgreSQL refuses a
//! key others can read).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

use crate::procs::RunAs;

/// A certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The unencrypted key (PEM, mode 0600).
    pub key: PathBuf,
}

impl CertFiles {
    /// Certificate and key concatenated, for reqwest's `Identity::from_pem`.
    pub fn identity_pem(&self) -> Vec<u8> {
        let mut pem = std::fs::read(&self.cert).expect("read cert");
        pem.push(b'\n');
        pem.extend(std::fs::read(&self.key).expect("read key"));
        pem
    }
}

/// The CA and what it signed, in a directory of the test.
pub struct Pki {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// Server certificate for `localhost` and `127.0.0.1`.
    pub server: CertFiles,
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
    run_as: RunAs,
}

impl Pki {
    /// A new CA in `dir` (which must exist), with its server certificate.
    pub fn new(dir: &Path, run_as: RunAs) -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "hapg test CA");
        let issuer =
            CertifiedIssuer::self_signed(p, KeyPair::generate().expect("ca key")).expect("ca");
        let ca = dir.join("ca.crt");
        std::fs::write(&ca, issuer.pem()).expect("write ca");
        run_as.chown(&ca);
        let mut pki = Pki {
            ca,
            server: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            dir: dir.to_owned(),
            issuer,
            run_as,
        };
        pki.server = pki.issue("server", &["localhost", "127.0.0.1"]);
        pki
    }

    /// A certificate for common name `cn` with `sans`, usable by servers and clients.
    pub fn issue(&self, cn: &str, sans: &[&str]) -> CertFiles {
        self.make(cn, sans, true)
    }

    /// A client certificate whose subject has no common name (organization `name` only).
    /// etcd 3.4's JSON gateway, which Patroni and patronictl use, refuses a client
    /// certificate with a common name once etcd's auth is enabled ("CommonName of client
    /// sending a request against gateway will be ignored").
    pub fn issue_without_cn(&self, name: &str) -> CertFiles {
        self.make(name, &[], false)
    }

    fn make(&self, cn: &str, sans: &[&str], with_cn: bool) -> CertFiles {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
        if with_cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        } else {
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name.push(DnType::OrganizationName, cn);
        }
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &self.issuer).expect("sign");
        let files = CertFiles {
            cert: self.dir.join(format!("{cn}.crt")),
            key: self.dir.join(format!("{cn}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600))
            .expect("chmod key");
        self.run_as.chown(&files.cert);
        self.run_as.chown(&files.key);
        files
    }

    /// A copy of `c` whose key is encrypted PKCS#8 (PBES2, AES-256-CBC) with `password`.
    pub fn encrypted(&self, c: &CertFiles, password: &str) -> CertFiles {
        use pkcs8::der::Decode;
        let pem = std::fs::read_to_string(&c.key).expect("read key");
        let (_, der) = pkcs8::der::pem::decode_vec(pem.as_bytes()).expect("key pem");
        let info = pkcs8::PrivateKeyInfo::from_der(&der).expect("pkcs8 key");
        let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
            2048,
            b"hapg-test-salt-1",
            b"hapg-test-iv-16b",
        )
        .expect("pbes2 parameters");
        let enc = info
            .encrypt_with_params(params, password)
            .expect("encrypt")
            .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::der::pem::LineEnding::LF)
            .expect("pem");
        let key = c.key.with_extension("enc.key");
        std::fs::write(&key, enc.as_bytes()).expect("write key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        self.run_as.chown(&key);
        CertFiles {
            cert: c.cert.clone(),
            key,
        }
    }

    /// The CA certificate's PEM text.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca).expect("read ca")
    }
}
