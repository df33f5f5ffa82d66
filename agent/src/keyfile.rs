//! Private key files for TLS (`restapi.keyfile`, `ctl.keyfile`, `etcd3.key`): PEM, either
//! unencrypted or encrypted PKCS#8 (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, what
//! `openssl genpkey -aes256` and `openssl pkcs8 -topk8 -v2 aes-256-cbc` write) opened with the
//! configured passphrase (`keyfile_password`, `key_password`), as Patroni does through
//! Python's `ssl`.
//!
//! The old OpenSSL format (`Proc-Type: 4,ENCRYPTED` with `DEK-Info`) is refused with the
//! command that converts it. A decrypted key lives only in memory; [`Secret`] keeps the
//! passphrase out of `Debug` output.

use std::path::Path;

use pkcs8::der::pem::LineEnding;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A passphrase or password from the configuration: `Debug` shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret text, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// The key in `path` for rustls. `what` names the setting in errors.
pub fn load_der(
    what: &str,
    path: &Path,
    password: Option<&Secret>,
) -> Result<PrivateKeyDer<'static>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    from_pem(what, path, &text, password)
}

/// The key in `path` as an unencrypted PKCS#8 PEM (for clients that take PEM text), or the
/// file's own text when it is not encrypted.
pub fn load_pem(what: &str, path: &Path, password: Option<&Secret>) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if !contains(&text, ENCRYPTED_BEGIN) {
        refuse_legacy(what, path, &text)?;
        return Ok(text);
    }
    match from_pem(what, path, &text, password)? {
        PrivateKeyDer::Pkcs8(k) => {
            pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, k.secret_pkcs8_der())
                .map(String::into_bytes)
                .map_err(|e| format!("{what} {}: {e}", path.display()))
        }
        _ => Err(format!("{what} {}: unexpected key type", path.display())),
    }
}

fn contains(text: &[u8], needle: &str) -> bool {
    text.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn refuse_legacy(what: &str, path: &Path, text: &[u8]) -> Result<(), String> {
    if contains(text, "Proc-Type: 4,ENCRYPTED") {
        return Err(format!(
            "{what} {}: the key is encrypted in the old OpenSSL format, which is not supported; \
             convert it to encrypted PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW`",
            path.display()
        ));
    }
    Ok(())
}

fn from_pem(
    what: &str,
    path: &Path,
    text: &[u8],
    password: Option<&Secret>,
) -> Result<PrivateKeyDer<'static>, String> {
    let at = |e: &dyn std::fmt::Display| format!("{what} {}: {e}", path.display());
    refuse_legacy(what, path, text)?;
    let s = String::from_utf8_lossy(text);
    let Some(start) = s.find(ENCRYPTED_BEGIN) else {
        return PrivateKeyDer::from_pem_slice(text)
            .map_err(|e| at(&format!("{e} (expected a PEM private key)")));
    };
    let end = s[start..]
        .find(ENCRYPTED_END)
        .map(|e| start + e + ENCRYPTED_END.len())
        .ok_or_else(|| at(&"the encrypted key block is not terminated"))?;
    let password = password.ok_or_else(|| {
        at(&"the key is encrypted: set its passphrase (keyfile_password / key_password)")
    })?;
    let (_, der) = pkcs8::der::pem::decode_vec(s[start..end].as_bytes()).map_err(|e| at(&e))?;
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|e| at(&e))?;
    let plain = info
        .decrypt(password.expose().as_bytes())
        .map_err(|_| at(&"cannot decrypt the key: wrong passphrase or unsupported cipher"))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkcs8::der::Decode;

    /// `key` (unencrypted PKCS#8 PEM) encrypted with `password` (PBES2, AES-256-CBC).
    pub(crate) fn encrypt(key_pem: &str, password: &str) -> String {
        let (_, der) = pkcs8::der::pem::decode_vec(key_pem.as_bytes()).expect("pem");
        let info = pkcs8::PrivateKeyInfo::from_der(&der).expect("pkcs8");
        let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
            2048,
            b"saltsaltsaltsalt",
            b"iv-iv-iv-iv-iv-i",
        )
        .expect("params");
        info.encrypt_with_params(params, password)
            .expect("encrypt")
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .expect("pem")
            .to_string()
    }

    #[test]
    fn encrypted_pkcs8_keys_open_with_their_passphrase_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kp = rcgen::KeyPair::generate().expect("key");
        let plain = kp.serialize_pem();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, encrypt(&plain, "pass phrase")).expect("write");
        let pw = Secret::new("pass phrase");
        let der = load_der("restapi.keyfile", &path, Some(&pw)).expect("decrypt");
        assert_eq!(der.secret_der(), kp.serialized_der());
        let pem = load_pem("ctl.keyfile", &path, Some(&pw)).expect("decrypt");
        assert_eq!(String::from_utf8(pem).expect("utf-8"), plain);
        let wrong = load_der("restapi.keyfile", &path, Some(&Secret::new("nope"))).unwrap_err();
        assert!(wrong.contains("wrong passphrase"), "{wrong}");
        assert!(!wrong.contains("nope"));
        let none = load_der("restapi.keyfile", &path, None).unwrap_err();
        assert!(none.contains("keyfile_password"), "{none}");
    }

    #[test]
    fn plain_keys_load_with_or_without_a_passphrase_and_legacy_ones_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kp = rcgen::KeyPair::generate().expect("key");
        let path = dir.path().join("k.pem");
        std::fs::write(&path, kp.serialize_pem()).expect("write");
        assert!(load_der("x", &path, None).is_ok());
        assert!(load_der("x", &path, Some(&Secret::new("ignored"))).is_ok());
        std::fs::write(
            &path,
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        )
        .expect("write");
        let e = load_pem("etcd3.key", &path, Some(&Secret::new("p"))).unwrap_err();
        assert!(e.contains("openssl pkcs8 -topk8"), "{e}");
        assert_eq!(format!("{:?}", Secret::new("p4ss")), "<redacted>");
    }
}
