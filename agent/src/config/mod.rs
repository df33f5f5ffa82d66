//! The agent's configuration: Patroni's YAML format (the subset in PATRONI-COMPAT.md §1) plus
//! `PATRONI_*` environment overrides, validated into [`Config`]; and the cluster's dynamic
//! configuration (the `config` key in etcd), read into [`DynamicConfig`].
//!
//! Invariants: loading reads the file and checks that two directories exist (the data
//! directory's parent, and `/usr/lib/postgresql/15/bin` for the default `bin_dir`); it creates
//! and writes nothing. An invalid file is an error naming the file (or the `PATRONI_*`
//! variable), the dotted key and why; an unknown key is a warning. Nothing is silently
//! adjusted. Reading the dynamic configuration from etcd is lenient and never fails.
//!
//! Pipeline (`load.rs`): YAML -> JSON tree (`serde-saphyr`, YAML 1.1 scalars as PyYAML) ->
//! environment overlay (`env.rs`) -> `RawConfig` (`raw.rs`, `serde_ignored` for unknown keys,
//! `serde_path_to_error` for the key of a type error) -> `validate.rs` with one file per
//! section (`etcd3.rs`, `restapi.rs`, `pgconf.rs`, `tags.rs`), all reporting through `ctx.rs`.
//! `dynamic.rs` reads the `config` key; `params.rs` merges PostgreSQL parameters as Patroni
//! does. This file holds [`Config`] and what is derived from it, and the entry points of
//! [`DynamicConfig`]; the types of the file's sections are in `sections.rs`.

mod addr;
pub mod allowlist;
mod args;
mod backup;
mod ctx;
mod dynamic;
mod dynamic_keep;
mod dynamic_pg;
mod dynamic_reader;
mod dynamic_slots;
mod dynamic_sync;
mod env;
mod etcd3;
mod guards;
mod load;
mod params;
mod pgconf;
mod raw;
pub mod reload;
mod restapi;
mod sections;
mod tags;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use backup::BackupConfig;
pub use dynamic::DynamicConfig;
pub use sections::{
    BootstrapConfig, CtlConfig, FenceConfig, LogConfig, PostgresqlConfig, RepoSource,
    RestApiConfig, Tags, VerifyClient, WatchdogConfig,
};

use crate::dcs::EtcdSettings;
use crate::ha::{HaConfig, Millis};
use crate::pg::PgSettings;

/// The configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{path}: invalid YAML: {detail}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Parser message with line and column.
        detail: String,
    },
    /// A key has a bad value or is missing.
    #[error("{path}: {key}: {reason}")]
    Invalid {
        /// The file (or `environment` for a `PATRONI_*` variable).
        path: PathBuf,
        /// Dotted key path, e.g. `bootstrap.dcs.ttl`.
        key: String,
        /// Why it is unusable.
        reason: String,
    },
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, ConfigError>;

/// A validated configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// `scope`: the cluster name.
    pub scope: String,
    /// `namespace`, default `/service/`.
    pub namespace: String,
    /// `name`: this member.
    pub name: String,
    /// `restapi`.
    pub restapi: RestApiConfig,
    /// `ctl`.
    pub ctl: CtlConfig,
    /// `etcd3`.
    pub etcd: EtcdSettings,
    /// `bootstrap`, if present (only then may this member initialize a cluster).
    pub bootstrap: Option<BootstrapConfig>,
    /// `postgresql`.
    pub postgresql: PostgresqlConfig,
    /// `tags`.
    pub tags: Tags,
    /// `log`.
    pub log: LogConfig,
    /// `watchdog`.
    pub watchdog: WatchdogConfig,
    /// `fence`.
    pub fence: FenceConfig,
    /// `backup` (hapg's own section): backups with pgBackRest.
    pub backup: Option<BackupConfig>,
}

/// A non-fatal remark about the file (an unknown key), to be logged once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub String);

impl Config {
    /// Reads, overrides from the environment (`PATRONI_*`), and validates `path`.
    pub fn load(path: &Path) -> Result<(Config, Vec<Warning>)> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_yaml(path, &text, &patroni_environment()?)
    }

    /// Reads and validates YAML text (as `load`, without the file read; `env` gives the
    /// environment variables to apply).
    pub fn from_yaml(
        path: &Path,
        text: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<(Config, Vec<Warning>)> {
        load::from_yaml(path, text, env)
    }

    /// The dynamic configuration this member starts with before it has read the cluster's:
    /// `bootstrap.dcs` (or Patroni's defaults).
    pub fn initial_dynamic(&self) -> DynamicConfig {
        match &self.bootstrap {
            // Warnings were already reported by `load`.
            Some(b) => DynamicConfig::from_json(&b.dcs).0,
            None => DynamicConfig::default(),
        }
    }

    /// The HA core's settings under `dynamic`, with this member's tags.
    pub fn ha_config(&self, dynamic: &DynamicConfig) -> HaConfig {
        HaConfig {
            ttl: Millis::secs(dynamic.ttl),
            loop_wait: Millis::secs(dynamic.loop_wait),
            retry_timeout: Millis::secs(dynamic.retry_timeout),
            maximum_lag_on_failover: dynamic.maximum_lag_on_failover,
            primary_start_timeout: Millis::secs(dynamic.primary_start_timeout),
            use_pg_rewind: dynamic.use_pg_rewind,
            use_slots: dynamic.use_slots,
            member_slots_ttl: Millis::secs(dynamic.member_slots_ttl),
            ignore_slots: dynamic.ignore_slots.clone(),
            pause: dynamic.pause,
            nofailover: self.tags.nofailover,
            failover_priority: self.tags.failover_priority,
            can_bootstrap: self.bootstrap.is_some(),
            fence: self.fence.enabled,
            watchdog: self.watchdog.mode,
            watchdog_safety_margin: self.watchdog.safety_margin.map(Millis::secs),
            failsafe_mode: dynamic.failsafe_mode,
            synchronous_mode: dynamic.synchronous_mode,
            synchronous_mode_strict: dynamic.synchronous_mode_strict,
            synchronous_node_count: usize::try_from(dynamic.synchronous_node_count)
                .unwrap_or(usize::MAX),
            maximum_lag_on_syncnode: dynamic.maximum_lag_on_syncnode,
        }
    }

    /// PostgreSQL settings under `dynamic`: parameters merged as Patroni does.
    pub fn pg_settings(&self, dynamic: &DynamicConfig) -> PgSettings {
        let pg = &self.postgresql;
        PgSettings {
            scope: self.scope.clone(),
            member: self.name.clone(),
            data_dir: pg.data_dir.clone(),
            bin_dir: pg.bin_dir.clone(),
            listen_addresses: pg.listen_addresses.clone(),
            port: pg.port,
            connect_address: pg.connect_address.clone(),
            local_host: pg.local_host.clone(),
            superuser: pg.superuser.clone(),
            replication: pg.replication.clone(),
            rewind: pg.rewind.clone(),
            parameters: self.with_archiving(params::merge(
                &dynamic.parameters,
                &pg.parameters,
                dynamic.use_pg_rewind,
            )),
            // Patroni: the local pg_hba wins; else the cluster's `postgresql.pg_hba`.
            pg_hba: pg.pg_hba.clone().or_else(|| dynamic_pg_hba(&dynamic.raw)),
            bootstrap_pg_hba: self.bootstrap.as_ref().and_then(|b| b.pg_hba.clone()),
            initdb_args: self
                .bootstrap
                .as_ref()
                .map(|b| b.initdb_args.clone())
                .unwrap_or_default(),
            basebackup_args: pg.basebackup_args.clone(),
            pgpass: pg.pgpass.clone(),
            use_slots: dynamic.use_slots,
            callbacks: pg.callbacks.clone(),
            repo_clone: self.repo_clone(),
            repo_bootstrap: self.repo_bootstrap(),
        }
    }

    /// `http://<restapi.connect_address>/patroni` (https with a certfile).
    pub fn api_url(&self) -> String {
        let scheme = if self.restapi.certfile.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/patroni", self.restapi.connect_address)
    }

    /// `postgres://<postgresql.connect_address>/postgres`.
    pub fn conn_url(&self) -> String {
        let c = &self.postgresql.connect_address;
        format!("postgres://{}:{}/postgres", addr::bracket(&c.host), c.port)
    }
}

/// The process's `PATRONI_*` variables (others are not needed).
fn patroni_environment() -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in std::env::vars_os() {
        let Some(k) = k.to_str().filter(|k| k.starts_with("PATRONI_")) else {
            continue;
        };
        let v = v.into_string().map_err(|_| ConfigError::Invalid {
            path: "environment".into(),
            key: k.to_owned(),
            reason: "the value is not valid UTF-8".into(),
        })?;
        out.insert(k.to_owned(), v);
    }
    Ok(out)
}

/// `postgresql.pg_hba` of the dynamic configuration, when it is a list of strings.
fn dynamic_pg_hba(raw: &serde_json::Value) -> Option<Vec<String>> {
    let lines = raw.get("postgresql")?.get("pg_hba")?.as_array()?;
    lines
        .iter()
        .map(|l| l.as_str().map(str::to_owned))
        .collect()
}

impl DynamicConfig {
    /// Reads a `config` value leniently; problems are returned to be logged.
    pub fn from_json(value: &serde_json::Value) -> (DynamicConfig, Vec<Warning>) {
        dynamic::from_json(value)
    }

    /// Reads a `config` value leniently over the configuration in force: a key whose value
    /// cannot be used keeps its value from `base` (an absent key takes its default).
    pub fn from_json_over(
        value: &serde_json::Value,
        base: &DynamicConfig,
    ) -> (DynamicConfig, Vec<Warning>) {
        dynamic_keep::over(value, base)
    }

    /// Checks a value strictly before it is written (`PATCH /config`, `hactl edit-config`):
    /// types, and `loop_wait + 2 * retry_timeout <= ttl`. The error names the key.
    pub fn validate(value: &serde_json::Value) -> std::result::Result<DynamicConfig, String> {
        dynamic::read(value, true)
            .map(|(dc, _)| dc)
            .map_err(|issue| issue.line())
    }
}
