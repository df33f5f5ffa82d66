//! The cluster's state in etcd: `trait Dcs` and what it returns (`Cluster`, in `cluster.rs`).
//!
//! The trait covers exactly what the agent, the REST API and `hactl` need (read the cluster,
//! acquire/renew/release the leader lease, publish our member record, the compare-and-set
//! writes on `initialize`, `config`, `failover`), not generic key-value access.
//!
//! Contract (Patroni's etcd3 semantics):
//! - a lost compare-and-set is an *outcome* (`CasOutcome::Lost`), not an error;
//! - `DcsError` means etcd could not be reached or answered something unusable;
//! - garbage in a key is logged and survived: a member record that does not parse is skipped,
//!   a bad `config` or `history` reads as absent, never as an error for the whole cluster;
//! - one lease per agent, TTL = ttl, carrying `leader` (when held) and `members/<name>`.

mod cluster;
pub mod etcd;
pub mod keys;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod records;

use std::future::Future;

pub use cluster::{Cluster, LeaderEntry, MemberEntry, RawKv, Versioned};
pub use keys::Keys;
pub use records::{FailoverRecord, HistoryRecord, MemberRecord, StatusRecord, SyncRecord};

/// etcd could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DcsError {
    /// No answer, a timeout, or an error status from etcd.
    #[error("etcd {op} failed: {detail}")]
    Unavailable {
        /// What we tried (`range`, `txn`, `lease keepalive`, ...).
        op: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// A value we must write could not be encoded, or a setting is unusable.
    #[error("etcd {what}: {detail}")]
    Invalid {
        /// What was wrong.
        what: &'static str,
        /// Details.
        detail: String,
    },
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, DcsError>;

/// Outcome of a compare-and-set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// The compare held and the write happened.
    Applied,
    /// The compare failed; nothing was written.
    Lost,
}

/// What a `failover` write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverExpect {
    /// No pending request (the key is absent or `{}`): create-only.
    NoPending,
    /// The key is still at this mod_revision.
    Revision(i64),
}

/// How to reach etcd. `Debug` redacts the password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EtcdSettings {
    /// Endpoints with scheme, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// etcd user.
    pub username: Option<String>,
    /// etcd password.
    pub password: Option<String>,
    /// CA certificate file (PEM) for https endpoints.
    pub cacert: Option<std::path::PathBuf>,
    /// Client certificate file (PEM).
    pub cert: Option<std::path::PathBuf>,
    /// Client key file (PEM).
    pub key: Option<std::path::PathBuf>,
    /// Passphrase of an encrypted (PKCS#8) `key`.
    pub key_password: Option<crate::keyfile::Secret>,
}

impl std::fmt::Debug for EtcdSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSettings")
            .field("endpoints", &self.endpoints)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("cacert", &self.cacert)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("key_password", &self.key_password)
            .finish()
    }
}

/// The cluster's keys in etcd, as the agent, the API and `hactl` use them.
///
/// Implementations hold this member's lease; methods that write under "our lease" grant one
/// (with the TTL last given to `set_ttl`) when there is none.
pub trait Dcs: Send + Sync + 'static {
    /// The cluster now: from a watch-maintained cache while the watch is live, else one range
    /// read of the prefix.
    fn cluster(&self) -> impl Future<Output = Result<Cluster>> + Send;

    /// The cluster from the watch-maintained cache, without any request; `None` when the watch
    /// is not live. For the REST API's status pages, which must not wait on etcd.
    fn cached_cluster(&self) -> Option<Cluster>;

    /// Resolves when `leader`, `failover`, `initialize` or `config` changed (or the watch
    /// broke), so the agent reacts at once instead of after `loop_wait`.
    fn changed(&self) -> impl Future<Output = ()> + Send;

    /// TTL in seconds for our lease; a lease with another TTL is replaced at the next renewal.
    fn set_ttl(&self, ttl_secs: u64);

    /// Keeps our lease (and so `members/<me>`) alive, granting one if needed. `Lost` when the
    /// old lease had expired (everything under it is gone; a new lease is granted).
    fn keepalive(&self) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Creates `leader` = our name under our lease if absent (`create_revision == 0`).
    fn acquire_leader(&self) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Keeps our lease alive and makes sure `leader` is ours and attached to it (re-attaching
    /// a key we wrote under an older lease with a compare on its value). `Lost` when the lease
    /// had expired or the key is not ours.
    fn renew_leader(&self) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Deletes `leader` if it holds our name.
    fn release_leader(&self) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Puts our name under our lease into `leader` if its mod_revision is still `revision`
    /// (taking over a key that cannot be trusted), keeping the lease alive first as
    /// `acquire_leader` does.
    fn take_over_leader(&self, revision: i64) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Our current lease id (0: none), to tell keys under it from others.
    fn lease_id(&self) -> i64;

    /// Writes `members/<me>` under our lease.
    fn publish_member(&self, record: &MemberRecord) -> impl Future<Output = Result<()>> + Send;

    /// Creates `initialize` with an empty value if absent (the bootstrap race).
    fn claim_initialize(&self) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Writes the system identifier into `initialize`.
    fn write_initialize(&self, sysid: &str) -> impl Future<Output = Result<()>> + Send;

    /// Replaces `initialize` with `sysid` if it still holds `found` (a corrupt value).
    fn repair_initialize(
        &self,
        found: &str,
        sysid: &str,
    ) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Deletes `initialize` if it is still empty (a failed bootstrap).
    fn cancel_initialize(&self) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Creates `config` if absent.
    fn create_config(
        &self,
        config: &serde_json::Value,
    ) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Replaces `config` if its mod_revision is still `revision`.
    fn write_config(
        &self,
        config: &serde_json::Value,
        revision: i64,
    ) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Writes `status`.
    fn write_status(&self, status: &StatusRecord) -> impl Future<Output = Result<()>> + Send;

    /// Writes `history`.
    fn write_history(&self, history: &[HistoryRecord]) -> impl Future<Output = Result<()>> + Send;

    /// Writes `failsafe` (member name -> REST API URL).
    fn write_failsafe(
        &self,
        members: &std::collections::BTreeMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Writes a switchover/failover request.
    fn write_failover(
        &self,
        request: &FailoverRecord,
        expect: FailoverExpect,
    ) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Deletes `failover` if its mod_revision is still `revision`.
    fn clear_failover(&self, revision: i64) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Writes `sync`: create-only when `revision` is `None`, else if its mod_revision is
    /// still `revision`.
    fn write_sync(
        &self,
        sync: &SyncRecord,
        revision: Option<i64>,
    ) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Deletes `sync` if its mod_revision is still `revision`.
    fn delete_sync(&self, revision: i64) -> impl Future<Output = Result<CasOutcome>> + Send;

    /// Revokes our lease: `members/<me>` and, if attached, `leader` disappear at once.
    fn revoke_lease(&self) -> impl Future<Output = Result<()>> + Send;

    /// Deletes every key of the cluster (`hactl remove`).
    fn delete_cluster(&self) -> impl Future<Output = Result<()>> + Send;
}
