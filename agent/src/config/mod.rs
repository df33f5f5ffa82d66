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
//! section (`etcd3.rs`, `restapi.rs`, `pgconf.rs`, `tags.rs`). `dynamic.rs` reads the `config`
//! key; `params.rs` merges PostgreSQL parameters as Patroni does.

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
mod restapi;
mod tags;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use backup::BackupConfig;

use crate::dcs::EtcdSettings;
use crate::ha::{HaConfig, Millis};
use crate::pg::{Credentials, GucValue, PgSettings};

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

/// `restapi`.
#[derive(Debug, Clone, PartialEq)]
pub struct RestApiConfig {
    /// Address to bind, e.g. `0.0.0.0:8008`.
    pub listen: std::net::SocketAddr,
    /// How others reach the API, `host:port` (goes into `api_url`).
    pub connect_address: String,
    /// Basic auth for mutating requests.
    pub authentication: Option<Credentials>,
    /// TLS certificate (PEM); the API serves HTTPS when set.
    pub certfile: Option<PathBuf>,
    /// TLS key (PEM); defaults to `certfile`.
    pub keyfile: Option<PathBuf>,
    /// `keyfile_password`: passphrase of an encrypted (PKCS#8) key.
    pub keyfile_password: Option<crate::keyfile::Secret>,
    /// CA for client certificates.
    pub cafile: Option<PathBuf>,
    /// `verify_client`.
    pub verify_client: VerifyClient,
    /// `allowlist`: who may call the mutating endpoints (empty: everyone).
    pub allowlist: Vec<allowlist::AllowEntry>,
    /// `allowlist_include_members`: the members' API hosts may too.
    pub allowlist_include_members: bool,
}

/// `restapi.verify_client` (Patroni's semantics, with `cafile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyClient {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A certificate is asked for; one that is sent must be valid (else the TLS handshake
    /// fails); mutating requests without one get 403.
    Optional,
    /// The TLS handshake fails without a valid client certificate.
    Required,
}

/// `ctl`: how hactl and the agent (asking other members for `/patroni`) call a REST API.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CtlConfig {
    /// Client certificate (PEM) presented to the API.
    pub certfile: Option<PathBuf>,
    /// Its key (PEM); defaults to `certfile`.
    pub keyfile: Option<PathBuf>,
    /// Passphrase of an encrypted (PKCS#8) `keyfile`.
    pub keyfile_password: Option<crate::keyfile::Secret>,
    /// CA that signed the API's certificate (else `restapi.cafile`).
    pub cacert: Option<PathBuf>,
    /// Do not check the API's certificate.
    pub insecure: bool,
}

/// `bootstrap`.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapConfig {
    /// `bootstrap.dcs` as JSON: seeds the cluster's `config` key.
    pub dcs: serde_json::Value,
    /// `bootstrap.initdb` as initdb arguments (`--encoding=UTF8`, `--data-checksums`).
    pub initdb_args: Vec<String>,
    /// `bootstrap.pg_hba`.
    pub pg_hba: Option<Vec<String>>,
    /// `bootstrap.method: pgbackrest` with `bootstrap.pgbackrest`: a new cluster from a backup.
    pub from_repo: Option<RepoSource>,
}

/// `bootstrap.pgbackrest` (with `bootstrap.method: pgbackrest`): which backup a new cluster
/// starts from; the repository is the `backup` section's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSource {
    /// `stanza` (default: `backup.stanza`): e.g. the stanza of the cluster being copied.
    pub stanza: Option<String>,
    /// `type`: `default` (end of the archive, the default), `time`, `lsn`, `name`, `immediate`.
    pub kind: String,
    /// `target`: the time, LSN or restore point name.
    pub target: Option<String>,
    /// `set`: a backup label.
    pub set: Option<String>,
}

/// `tags`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tags {
    /// Never become leader (also implied by `failover_priority: 0`).
    pub nofailover: bool,
    /// Tie-break between equally advanced candidates; higher wins. Default 1.
    pub failover_priority: i64,
    /// Excluded from `/replica` load balancing.
    pub noloadbalance: bool,
    /// Preferred clone source.
    pub clonefrom: bool,
    /// Never a synchronous standby.
    pub nosync: bool,
    /// The tags as published in the member record, as Patroni does: everything as written,
    /// except that `nofailover`, `noloadbalance`, `clonefrom` and `nosync` appear only when on.
    pub raw: BTreeMap<String, serde_json::Value>,
}

/// `log`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogConfig {
    /// `log.level` (Patroni's DEBUG/INFO/WARNING/ERROR), as a tracing filter directive.
    pub level: Option<String>,
    /// `log.format`: `json` for JSON lines, else text.
    pub json: bool,
}

/// `postgresql` (local part; the dynamic part comes from [`DynamicConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresqlConfig {
    /// `postgresql.listen` as `listen_addresses`.
    pub listen_addresses: String,
    /// `postgresql.listen`'s port.
    pub port: u16,
    /// `postgresql.connect_address` (host and port).
    pub connect_address: crate::ha::ConnTarget,
    /// `postgresql.data_dir`.
    pub data_dir: PathBuf,
    /// `postgresql.bin_dir` (default `/usr/lib/postgresql/15/bin` when it exists, else `PATH`).
    pub bin_dir: PathBuf,
    /// `postgresql.pgpass` (default: `pgpass.<name>` beside the data directory).
    pub pgpass: PathBuf,
    /// Where the agent connects: `unix_socket_directories`' first entry when
    /// `postgresql.use_unix_socket` is true, else the first listen host (`127.0.0.1` for `*`/`0.0.0.0`).
    pub local_host: String,
    /// `postgresql.authentication.superuser`.
    pub superuser: Credentials,
    /// `postgresql.authentication.replication`.
    pub replication: Credentials,
    /// `postgresql.authentication.rewind`.
    pub rewind: Option<Credentials>,
    /// `postgresql.parameters` (local).
    pub parameters: BTreeMap<String, GucValue>,
    /// `postgresql.pg_hba`.
    pub pg_hba: Option<Vec<String>>,
    /// `postgresql.basebackup` as pg_basebackup arguments.
    pub basebackup_args: Vec<String>,
    /// `postgresql.callbacks`.
    pub callbacks: BTreeMap<String, String>,
    /// `postgresql.create_replica_methods` we support (`basebackup`, `pgbackrest`), in order.
    pub create_replica_methods: Vec<String>,
}

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

/// `watchdog` (Patroni's section). The device is held by the fence process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// `mode`: off, automatic or required.
    pub mode: crate::ha::WatchdogMode,
    /// `device`, default `/dev/watchdog`.
    pub device: PathBuf,
    /// `safety_margin` in seconds (default 5); `None` for -1 (the timeout is ttl / 2).
    pub safety_margin: Option<u64>,
    /// `driver: testing`: Patroni's test driver, which writes the timeout into the device
    /// file (`Ctimeout=N`) instead of an ioctl, so a plain file or a FIFO can stand in.
    pub testing: bool,
}

/// `fence` (hapg's own section): the process that stops PostgreSQL when the leader's
/// authority runs out and the agent did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceConfig {
    /// `enabled` (default true).
    pub enabled: bool,
    /// `socket`: where the fence listens (default `<data_dir>.fence.sock` beside the data
    /// directory).
    pub socket: PathBuf,
    /// `binary`: the `ha-fence` program (default: next to `ha-agent`).
    pub binary: Option<PathBuf>,
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

/// The cluster's dynamic configuration (the `config` key, Patroni's "dynamic configuration
/// settings"). Reading is lenient: a bad value is reported and its default used, so garbage in
/// etcd cannot stop an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicConfig {
    /// Lease TTL, seconds (default 30).
    pub ttl: u64,
    /// Seconds between cycles (default 10).
    pub loop_wait: u64,
    /// Seconds etcd and PostgreSQL operations are retried (default 10).
    pub retry_timeout: u64,
    /// Bytes (default 1048576).
    pub maximum_lag_on_failover: u64,
    /// Seconds (default 300); also read from Patroni's old name `master_start_timeout`.
    pub primary_start_timeout: u64,
    /// `postgresql.use_pg_rewind` (default false in Patroni; our bootstrap examples set true).
    pub use_pg_rewind: bool,
    /// `postgresql.use_slots` (default true).
    pub use_slots: bool,
    /// `member_slots_ttl`, seconds (default 1800).
    pub member_slots_ttl: u64,
    /// `ignore_slots`: slots the leader's clean-up leaves alone.
    pub ignore_slots: Vec<crate::ha::slots::IgnoreSlot>,
    /// `pause`: maintenance mode.
    pub pause: bool,
    /// `failsafe_mode` (default false).
    pub failsafe_mode: bool,
    /// `synchronous_mode` (default off).
    pub synchronous_mode: crate::ha::SyncMode,
    /// `synchronous_mode_strict` (default false).
    pub synchronous_mode_strict: bool,
    /// `synchronous_node_count` (default 1, at least 1).
    pub synchronous_node_count: u64,
    /// `maximum_lag_on_syncnode` in bytes; `None` for -1 (the default: unlimited).
    pub maximum_lag_on_syncnode: Option<u64>,
    /// `postgresql.parameters`.
    pub parameters: BTreeMap<String, GucValue>,
    /// The whole value as JSON (for `GET /config` and `hactl show-config`).
    pub raw: serde_json::Value,
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
