//! The libpq settings of one role beyond user name and password, as Patroni accepts them under
//! `postgresql.authentication.<role>` (`sslmode`, `sslcert`, `sslkey`, `sslpassword`,
//! `sslrootcert`, `sslcrl`, `sslcrldir`, `gssencmode`, `channel_binding`), and how they reach
//! each connection:
//!
//! - `primary_conninfo` (the walreceiver, libpq): every setting, in the connection string, as
//!   Patroni writes it (`postgresql.conf` is readable by the server's OS user only);
//! - pg_basebackup and pg_rewind (libpq): libpq's environment variables (`PGSSLMODE`, ...), so
//!   nothing shows on a command line in `ps`; `sslpassword` has no variable and goes through a
//!   connection service file of mode 0600 instead (`PGSERVICEFILE`/`PGSERVICE`);
//! - the agent's own sessions (tokio-postgres): see `tls.rs`.
//!
//! `sslpassword` is a secret: `Debug` redacts it, and it is never logged.

use std::fmt;

/// libpq's keyword, its environment variable (none for `sslpassword`).
const KEYS: [(&str, Option<&str>); 9] = [
    ("sslmode", Some("PGSSLMODE")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslpassword", None),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcrl", Some("PGSSLCRL")),
    ("sslcrldir", Some("PGSSLCRLDIR")),
    ("gssencmode", Some("PGGSSENCMODE")),
    ("channel_binding", Some("PGCHANNELBINDING")),
];

/// The values libpq accepts for the settings that take a keyword.
pub const SSLMODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];
/// `gssencmode` values.
pub const GSSENCMODES: [&str; 3] = ["disable", "prefer", "require"];
/// `channel_binding` values.
pub const CHANNEL_BINDINGS: [&str; 3] = ["disable", "prefer", "require"];

/// One role's libpq TLS/GSS settings; `None` leaves libpq's default.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ConnParams {
    /// `sslmode`.
    pub sslmode: Option<String>,
    /// `sslcert`: client certificate file.
    pub sslcert: Option<String>,
    /// `sslkey`: client key file.
    pub sslkey: Option<String>,
    /// `sslpassword`: passphrase of `sslkey` (secret).
    pub sslpassword: Option<String>,
    /// `sslrootcert`: CA file to verify the server with.
    pub sslrootcert: Option<String>,
    /// `sslcrl`: revocation list file.
    pub sslcrl: Option<String>,
    /// `sslcrldir`: revocation list directory.
    pub sslcrldir: Option<String>,
    /// `gssencmode`.
    pub gssencmode: Option<String>,
    /// `channel_binding`.
    pub channel_binding: Option<String>,
}

impl fmt::Debug for ConnParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ConnParams");
        for (k, v) in self.pairs() {
            d.field(k, &if k == "sslpassword" { "<redacted>" } else { v });
        }
        d.finish()
    }
}

impl ConnParams {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "sslmode" => self.sslmode.as_deref(),
            "sslcert" => self.sslcert.as_deref(),
            "sslkey" => self.sslkey.as_deref(),
            "sslpassword" => self.sslpassword.as_deref(),
            "sslrootcert" => self.sslrootcert.as_deref(),
            "sslcrl" => self.sslcrl.as_deref(),
            "sslcrldir" => self.sslcrldir.as_deref(),
            "gssencmode" => self.gssencmode.as_deref(),
            "channel_binding" => self.channel_binding.as_deref(),
            _ => None,
        }
    }

    /// Sets `key` (one of libpq's keywords above); false for another key.
    pub fn set(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "sslmode" => &mut self.sslmode,
            "sslcert" => &mut self.sslcert,
            "sslkey" => &mut self.sslkey,
            "sslpassword" => &mut self.sslpassword,
            "sslrootcert" => &mut self.sslrootcert,
            "sslcrl" => &mut self.sslcrl,
            "sslcrldir" => &mut self.sslcrldir,
            "gssencmode" => &mut self.gssencmode,
            "channel_binding" => &mut self.channel_binding,
            _ => return false,
        };
        *slot = Some(value);
        true
    }

    /// Every keyword this type knows, in libpq's order.
    pub fn keywords() -> impl Iterator<Item = &'static str> {
        KEYS.iter().map(|(k, _)| *k)
    }

    /// The settings that are set, as (keyword, value), in libpq's order.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        KEYS.iter()
            .filter_map(|(k, _)| self.get(k).map(|v| (*k, v)))
            .collect()
    }

    /// Environment variables for a libpq program (pg_basebackup, pg_rewind); `sslpassword`
    /// is not among them (see [`ConnParams::service_file`]).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        KEYS.iter()
            .filter_map(|(k, var)| Some((((*var)?), self.get(k)?.to_string())))
            .collect()
    }

    /// A connection service file with section `[hapg]` holding `sslpassword`, when set
    /// (libpq has no environment variable for it; a command-line connection string would
    /// show it in `ps`).
    pub fn service_file(&self) -> Option<String> {
        let pw = self.sslpassword.as_deref()?;
        Some(format!("[hapg]\nsslpassword={pw}\n"))
    }

    /// `sslmode` as given, or libpq's default `prefer`.
    pub fn sslmode(&self) -> &str {
        self.sslmode.as_deref().unwrap_or("prefer")
    }
}

/// The libpq environment of a program that connects as `who` (pg_basebackup, pg_rewind): the
/// role's TLS settings as `PGSSLMODE` & co., and, when `sslpassword` is set, a connection
/// service file of mode 0600 beside the pgpass file that holds it (nothing secret on a
/// command line).
pub fn libpq_env(
    s: &super::PgSettings,
    who: &super::Credentials,
) -> super::Result<Vec<(&'static str, String)>> {
    let mut env = who.conn.env();
    if let Some(text) = who.conn.service_file() {
        let path = service_file(s);
        super::conf::write_atomic(&path, &text, 0o600)?;
        env.push(("PGSERVICEFILE", path.to_string_lossy().into_owned()));
        env.push(("PGSERVICE", "hapg".into()));
    }
    Ok(env)
}

/// Where [`libpq_env`] writes the service file.
pub fn service_file(s: &super::PgSettings) -> std::path::PathBuf {
    let mut p = s.pgpass.clone().into_os_string();
    p.push(".service");
    p.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ConnParams {
        ConnParams {
            sslmode: Some("verify-full".into()),
            sslrootcert: Some("/ca.pem".into()),
            sslpassword: Some("key-secret".into()),
            channel_binding: Some("require".into()),
            ..Default::default()
        }
    }

    #[test]
    fn programs_get_environment_variables_and_no_password() {
        let env = params().env();
        assert_eq!(
            env,
            vec![
                ("PGSSLMODE", "verify-full".to_string()),
                ("PGSSLROOTCERT", "/ca.pem".to_string()),
                ("PGCHANNELBINDING", "require".to_string()),
            ]
        );
        assert_eq!(
            params().service_file().as_deref(),
            Some("[hapg]\nsslpassword=key-secret\n")
        );
        assert_eq!(ConnParams::default().service_file(), None);
    }

    #[test]
    fn debug_hides_the_key_passphrase() {
        let text = format!("{:?}", params());
        assert!(!text.contains("key-secret"), "{text}");
        assert!(text.contains("verify-full"), "{text}");
    }

    #[test]
    fn every_keyword_can_be_set_and_read_back() {
        let mut p = ConnParams::default();
        for k in ConnParams::keywords() {
            assert!(p.set(k, format!("v-{k}")));
        }
        assert!(!p.set("password", "x".into()));
        assert_eq!(p.pairs().len(), 9);
        assert!(p.pairs().iter().all(|(k, v)| *v == format!("v-{k}")));
    }
}
