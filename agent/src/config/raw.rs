//! The file as written: serde structs with Patroni's key names, every field optional.
//!
//! Keys we know but do not act on are typed as `Option<Value>` so that they are consumed
//! without an "unknown key" warning; `validate` decides whether they are harmless, a
//! warning, or an error. No checks here beyond types.

// Keys accepted without effect are deserialized only so that they are not reported unknown.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawConfig {
    pub scope: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub restapi: Option<RawRestApi>,
    pub ctl: Option<Value>,
    pub etcd3: Option<RawEtcd3>,
    pub etcd: Option<Value>,
    pub consul: Option<Value>,
    pub zookeeper: Option<Value>,
    pub exhibitor: Option<Value>,
    pub kubernetes: Option<Value>,
    pub raft: Option<Value>,
    pub citus: Option<Value>,
    pub bootstrap: Option<RawBootstrap>,
    pub postgresql: Option<RawPostgresql>,
    pub tags: Option<BTreeMap<String, Value>>,
    pub watchdog: Option<RawWatchdog>,
    pub fence: Option<RawFence>,
    pub log: Option<RawLog>,
    pub backup: Option<super::backup::RawBackup>,
}

/// `restapi`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawRestApi {
    pub listen: Option<String>,
    pub connect_address: Option<String>,
    pub authentication: Option<RawCredentials>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub keyfile_password: Option<Value>,
    pub cafile: Option<PathBuf>,
    pub verify_client: Option<String>,
    pub ciphers: Option<Value>,
    pub allowlist: Option<Value>,
    pub allowlist_include_members: Option<Value>,
    pub http_extra_headers: Option<Value>,
    pub https_extra_headers: Option<Value>,
    pub request_queue_size: Option<Value>,
    pub server_tokens: Option<Value>,
}

/// A user name and password (`restapi.authentication`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawCredentials {
    #[serde(default, deserialize_with = "string_like")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub password: Option<String>,
}

/// `etcd3`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawEtcd3 {
    pub host: Option<String>,
    pub hosts: Option<Value>,
    pub url: Option<String>,
    pub proxy: Option<String>,
    pub port: Option<Value>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub use_proxies: Option<bool>,
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub password: Option<String>,
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub key_password: Option<Value>,
    pub srv: Option<Value>,
    pub srv_suffix: Option<Value>,
    pub discovery_srv: Option<Value>,
    pub srv_domain: Option<Value>,
}

/// `bootstrap`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawBootstrap {
    pub dcs: Option<Value>,
    pub method: Option<String>,
    pub pgbackrest: Option<super::backup::RawRepoSource>,
    pub initdb: Option<Value>,
    pub pg_hba: Option<Vec<String>>,
    pub users: Option<Value>,
    pub post_bootstrap: Option<Value>,
    pub post_init: Option<Value>,
}

/// `postgresql`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawPostgresql {
    pub listen: Option<String>,
    pub connect_address: Option<String>,
    pub proxy_address: Option<Value>,
    pub data_dir: Option<PathBuf>,
    pub config_dir: Option<PathBuf>,
    pub bin_dir: Option<PathBuf>,
    pub bin_name: Option<Value>,
    pub pgpass: Option<PathBuf>,
    pub authentication: Option<RawPgAuthentication>,
    pub parameters: Option<BTreeMap<String, Value>>,
    pub pg_hba: Option<Vec<String>>,
    pub pg_ident: Option<Value>,
    pub callbacks: Option<BTreeMap<String, String>>,
    pub create_replica_methods: Option<Vec<String>>,
    pub basebackup: Option<Value>,
    pub pgbackrest: Option<Value>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub use_unix_socket: Option<bool>,
    pub use_unix_socket_repl: Option<Value>,
    pub use_pg_rewind: Option<Value>,
    pub use_slots: Option<Value>,
    pub remove_data_directory_on_rewind_failure: Option<Value>,
    pub remove_data_directory_on_diverged_timelines: Option<Value>,
    pub pg_ctl_timeout: Option<Value>,
    pub recovery_conf: Option<Value>,
    pub custom_conf: Option<Value>,
    pub pre_promote: Option<Value>,
    pub before_stop: Option<Value>,
}

/// `postgresql.authentication`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawPgAuthentication {
    pub superuser: Option<RawRole>,
    pub replication: Option<RawRole>,
    pub rewind: Option<RawRole>,
}

/// One role of `postgresql.authentication`, with libpq's TLS settings Patroni passes on.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawRole {
    #[serde(default, deserialize_with = "string_like")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "string_like")]
    pub password: Option<String>,
    pub sslmode: Option<Value>,
    pub sslcert: Option<Value>,
    pub sslkey: Option<Value>,
    pub sslpassword: Option<Value>,
    pub sslrootcert: Option<Value>,
    pub sslcrl: Option<Value>,
    pub sslcrldir: Option<Value>,
    pub gssencmode: Option<Value>,
    pub channel_binding: Option<Value>,
}

impl RawRole {
    /// The libpq settings that are set, as (keyword, value).
    pub fn libpq_settings(&self) -> Vec<(&'static str, &Value)> {
        [
            ("sslmode", &self.sslmode),
            ("sslcert", &self.sslcert),
            ("sslkey", &self.sslkey),
            ("sslpassword", &self.sslpassword),
            ("sslrootcert", &self.sslrootcert),
            ("sslcrl", &self.sslcrl),
            ("sslcrldir", &self.sslcrldir),
            ("gssencmode", &self.gssencmode),
            ("channel_binding", &self.channel_binding),
        ]
        .into_iter()
        .filter_map(|(k, v)| match v {
            None | Some(Value::Null) => None,
            Some(v) => Some((k, v)),
        })
        .collect()
    }
}

/// `watchdog`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawWatchdog {
    pub mode: Option<Value>,
    pub device: Option<Value>,
    pub safety_margin: Option<Value>,
    pub driver: Option<Value>,
}

/// `fence` (hapg's own section).
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawFence {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub enabled: Option<bool>,
    pub socket: Option<PathBuf>,
    pub binary: Option<PathBuf>,
}

/// `log`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawLog {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub level: Option<String>,
    pub format: Option<Value>,
    pub dir: Option<Value>,
    pub traceback_level: Option<Value>,
    pub dateformat: Option<Value>,
    pub static_fields: Option<Value>,
    pub max_queue_size: Option<Value>,
    pub mode: Option<Value>,
    pub file_size: Option<Value>,
    pub file_num: Option<Value>,
    pub loggers: Option<Value>,
    pub deduplicate_heartbeat_logs: Option<Value>,
}

/// Patroni's `parse_bool` on text: `on/true/yes/1` and `off/false/no/0`, any case.
pub(super) fn parse_bool_str(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// A boolean as Patroni reads one: a YAML/JSON boolean, a string [`parse_bool_str`]
/// accepts, or the integers 0 and 1.
pub(super) fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool_str(s),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// An integer as Patroni reads one (`int(value)`): a whole JSON number or a string of digits.
pub(super) fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Short description of a value's type for messages.
pub(super) fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => bool_of(&v).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("expected a boolean, got {}", kind_of(&v)))
        }),
    }
}

/// Strings, and numbers written without quotes (`password: 1234`), as text.
fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(v) => Err(serde::de::Error::custom(format!(
            "expected a string, got {}",
            kind_of(&v)
        ))),
    }
}
