//! The validated sections of the configuration file that [`Config`](super::Config) holds:
//! `restapi`, `ctl`, `bootstrap`, `tags`, `log`, `postgresql`, `watchdog` and `fence` (the
//! `backup` section has its own file, `backup.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::allowlist;
use crate::pg::{Credentials, GucValue};

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

/// `postgresql` (local part; the dynamic part comes from
/// [`DynamicConfig`](super::DynamicConfig)).
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
