//! `PATRONI_*` environment overrides, with Patroni's names and parsing
//! (`Config._build_environment_configuration`): each variable becomes a value in an overlay
//! tree that is deep-merged over the file, so the environment wins.
//!
//! Invariants: only variables that start with `PATRONI_` are looked at; an empty value is
//! ignored (as in Patroni); every key set here is remembered with its variable, so that an
//! error about it can name the variable instead of the file.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{ConfigError, Result};

/// Patroni's prefix.
const PREFIX: &str = "PATRONI_";

/// Scalar settings per section: `PATRONI_<SECTION>_<PARAM>` -> `<section>.<param>`.
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "restapi",
        &[
            "listen",
            "connect_address",
            "certfile",
            "keyfile",
            "keyfile_password",
            "cafile",
            "ciphers",
            "verify_client",
            "http_extra_headers",
            "https_extra_headers",
            "allowlist",
            "allowlist_include_members",
            "request_queue_size",
            "server_tokens",
        ],
    ),
    (
        "ctl",
        &[
            "insecure",
            "cacert",
            "certfile",
            "keyfile",
            "keyfile_password",
        ],
    ),
    (
        "postgresql",
        &[
            "listen",
            "connect_address",
            "proxy_address",
            "config_dir",
            "data_dir",
            "pgpass",
            "bin_dir",
        ],
    ),
    (
        "log",
        &[
            "type",
            "level",
            "traceback_level",
            "format",
            "dateformat",
            "static_fields",
            "max_queue_size",
            "dir",
            "mode",
            "file_size",
            "file_num",
            "loggers",
            "deduplicate_heartbeat_logs",
        ],
    ),
    (
        "raft",
        &[
            "data_dir",
            "self_addr",
            "partner_addrs",
            "password",
            "bind_addr",
        ],
    ),
];

/// Connection settings of the PostgreSQL roles (`PATRONI_REPLICATION_USERNAME`, ...).
const AUTH_PARAMS: &[&str] = &[
    "username",
    "password",
    "sslmode",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "gssencmode",
    "channel_binding",
];

/// `PATRONI_<DCS>_<SUFFIX>`: the DCS settings Patroni takes from the environment.
const DCS_SUFFIXES: &[&str] = &[
    "HOST",
    "HOSTS",
    "PORT",
    "USE_PROXIES",
    "PROTOCOL",
    "SRV",
    "SRV_SUFFIX",
    "URL",
    "PROXY",
    "CACERT",
    "CERT",
    "KEY",
    "VERIFY",
    "TOKEN",
    "CHECKS",
    "DC",
    "CONSISTENCY",
    "REGISTER_SERVICE",
    "SERVICE_CHECK_INTERVAL",
    "SERVICE_CHECK_TLS_SERVER_NAME",
    "SERVICE_TAGS",
    "NAMESPACE",
    "CONTEXT",
    "USE_ENDPOINTS",
    "SCOPE_LABEL",
    "ROLE_LABEL",
    "POD_IP",
    "PORTS",
    "LABELS",
    "BYPASS_API_SERVICE",
    "RETRIABLE_HTTP_CODES",
    "KEY_PASSWORD",
    "USE_SSL",
    "SET_ACLS",
    "GROUP",
    "DATABASE",
    "LEADER_LABEL_VALUE",
    "FOLLOWER_LABEL_VALUE",
    "STANDBY_LEADER_LABEL_VALUE",
    "TMP_ROLE_LABEL",
    "AUTH_DATA",
    "BOOTSTRAP_LABELS",
];

/// The overlay built from the environment.
#[derive(Debug, Default)]
pub(super) struct EnvOverlay {
    /// Values to merge over the file.
    pub tree: Map<String, Value>,
    /// Dotted key -> the variable that set it.
    pub sources: BTreeMap<String, String>,
}

impl EnvOverlay {
    fn set(&mut self, dotted: &str, value: Value, var: &str) {
        let mut node = &mut self.tree;
        let mut parts = dotted.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_owned(), value);
                break;
            }
            let entry = node
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            match entry {
                Value::Object(m) => node = m,
                // invariant: replaced by an object just above
                _ => return,
            }
        }
        self.sources.insert(dotted.to_owned(), var.to_owned());
    }
}

/// Builds the overlay from `env` (all variables; non-`PATRONI_` ones are skipped).
pub(super) fn overlay(env: &BTreeMap<String, String>) -> Result<EnvOverlay> {
    // Patroni pops each variable it consumes, so a later, more generic pattern never sees it.
    let mut left: BTreeMap<&str, &str> = env
        .iter()
        .filter(|(k, v)| k.starts_with(PREFIX) && !v.is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut out = EnvOverlay::default();

    for key in ["name", "namespace", "scope"] {
        let var = format!("{PREFIX}{}", key.to_uppercase());
        if let Some(v) = take(&mut left, &var) {
            out.set(key, Value::String(v), &var);
        }
    }
    // Old spellings of the log variables; the new one wins when both are set.
    for (new, old) in [
        ("LOG_LEVEL", "LOGLEVEL"),
        ("LOG_FORMAT", "LOGFORMAT"),
        ("LOG_DATEFORMAT", "LOG_DATEFMT"),
    ] {
        let old_var = format!("{PREFIX}{old}");
        if let Some(v) = take(&mut left, &old_var) {
            let new_var = format!("{PREFIX}{new}");
            if !left.contains_key(new_var.as_str()) {
                out.set(
                    &new.to_lowercase().replacen('_', ".", 1),
                    Value::String(v),
                    &old_var,
                );
            }
        }
    }
    for (section, params) in SECTIONS {
        for param in *params {
            let var = format!(
                "{PREFIX}{}_{}",
                section.to_uppercase(),
                param.to_uppercase()
            );
            if let Some(v) = take(&mut left, &var) {
                out.set(&format!("{section}.{param}"), Value::String(v), &var);
            }
        }
    }
    for binary in [
        "pg_ctl",
        "initdb",
        "pg_controldata",
        "pg_basebackup",
        "postgres",
        "pg_isready",
        "pg_rewind",
    ] {
        let var = format!("{PREFIX}POSTGRESQL_BIN_{}", binary.to_uppercase());
        if let Some(v) = take(&mut left, &var) {
            out.set(
                &format!("postgresql.bin_name.{binary}"),
                Value::String(v),
                &var,
            );
        }
    }
    for section in ["ctl", "restapi"] {
        for param in ["username", "password"] {
            let var = format!(
                "{PREFIX}{}_{}",
                section.to_uppercase(),
                param.to_uppercase()
            );
            if let Some(v) = take(&mut left, &var) {
                out.set(
                    &format!("{section}.authentication.{param}"),
                    Value::String(v),
                    &var,
                );
            }
        }
    }
    for role in ["replication", "superuser", "rewind"] {
        for param in AUTH_PARAMS {
            let var = format!("{PREFIX}{}_{}", role.to_uppercase(), param.to_uppercase());
            if let Some(v) = take(&mut left, &var) {
                out.set(
                    &format!("postgresql.authentication.{role}.{param}"),
                    Value::String(v),
                    &var,
                );
            }
        }
    }
    // PATRONI_<DCS>_<SUFFIX>: the section name is the part before the first underscore.
    let vars: Vec<String> = left.keys().map(|k| (*k).to_owned()).collect();
    for var in vars {
        let rest = &var[PREFIX.len()..];
        let Some((name, suffix)) = rest.split_once('_') else {
            continue;
        };
        if name.is_empty() || !DCS_SUFFIXES.contains(&suffix) {
            continue;
        }
        let Some(raw) = take(&mut left, &var) else {
            continue;
        };
        let value = match suffix {
            "PORT" => Value::from(parse_env_int(&var, &raw)?),
            "HOSTS" | "PORTS" | "CHECKS" | "SERVICE_TAGS" | "RETRIABLE_HTTP_CODES" => {
                Value::Array(parse_list(&var, &raw)?)
            }
            "USE_PROXIES" | "REGISTER_SERVICE" | "USE_ENDPOINTS" | "BYPASS_API_SERVICE"
            | "VERIFY" => Value::Bool(parse_env_bool(&var, &raw)?),
            _ => Value::String(raw),
        };
        let key = format!("{}.{}", name.to_lowercase(), suffix.to_lowercase());
        out.set(&key, value, &var);
    }
    // etcd credentials only make sense next to an etcd section (Patroni applies them only
    // when another variable created it; we also accept a section from the file).
    for dcs in ["etcd", "etcd3"] {
        for param in ["username", "password"] {
            let var = format!("{PREFIX}{}_{}", dcs.to_uppercase(), param.to_uppercase());
            if let Some(v) = take(&mut left, &var) {
                out.set(&format!("{dcs}.{param}"), Value::String(v), &var);
            }
        }
    }
    Ok(out)
}

/// Merges `overlay` into `base` (Patroni's `patch_config`): mappings merge key by key,
/// anything else replaces.
pub(super) fn deep_merge(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// A list as Patroni reads one from the environment: a YAML/JSON list (`[a, b]`, `- a`) or
/// a comma-separated string.
pub(super) fn parse_list(var: &str, raw: &str) -> Result<Vec<Value>> {
    let t = raw.trim();
    if t.starts_with('-') || t.contains('[') {
        match serde_saphyr::from_str::<Value>(t) {
            Ok(Value::Array(items)) => Ok(items),
            Ok(_) => Err(env_error(var, "expected a list")),
            Err(e) => Err(env_error(var, &format!("not a YAML list: {e}"))),
        }
    } else {
        Ok(t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect())
    }
}

/// Removes `var` from the variables still to look at, returning its value.
fn take(left: &mut BTreeMap<&str, &str>, var: &str) -> Option<String> {
    left.remove(var).map(str::to_owned)
}

fn parse_env_int(var: &str, raw: &str) -> Result<i64> {
    raw.trim()
        .parse()
        .map_err(|_| env_error(var, &format!("{raw:?} is not an integer")))
}

fn parse_env_bool(var: &str, raw: &str) -> Result<bool> {
    super::raw::parse_bool_str(raw)
        .ok_or_else(|| env_error(var, &format!("{raw:?} is not a boolean")))
}

fn env_error(var: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        path: "environment".into(),
        key: var.to_owned(),
        reason: reason.to_owned(),
    }
}
