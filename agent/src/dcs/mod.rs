//! The cluster's state in etcd: `trait Dcs` and what it returns.
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

pub mod etcd;
pub mod keys;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod records;

use std::future::Future;

use crate::ha::{self, Lsn, MemberName, Revision};

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

/// A value with the `mod_revision` of its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The parsed value.
    pub value: T,
    /// The key's mod_revision.
    pub revision: i64,
}

/// The `leader` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderEntry {
    /// Holder's member name.
    pub name: String,
    /// mod_revision.
    pub revision: i64,
    /// Lease id the key is attached to (0: none).
    pub lease: i64,
}

/// One `members/<name>` key.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberEntry {
    /// Member name (the key's last segment).
    pub name: String,
    /// The parsed record.
    pub record: MemberRecord,
    /// mod_revision.
    pub revision: i64,
    /// Lease id.
    pub lease: i64,
}

/// Everything under the cluster prefix, parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cluster {
    /// `initialize`.
    pub initialize: Option<String>,
    /// `config` as JSON (validated by `config::DynamicConfig`).
    pub config: Option<Versioned<serde_json::Value>>,
    /// `leader`.
    pub leader: Option<LeaderEntry>,
    /// `members/*`, sorted by name.
    pub members: Vec<MemberEntry>,
    /// `failover`, absent when missing or `{}`.
    pub failover: Option<Versioned<FailoverRecord>>,
    /// `sync`.
    pub sync: Option<Versioned<SyncRecord>>,
    /// `history`.
    pub history: Option<Versioned<Vec<HistoryRecord>>>,
    /// `status`.
    pub status: Option<StatusRecord>,
    /// `failsafe`: member name -> REST API URL, written by the leader in failsafe mode.
    pub failsafe: Option<std::collections::BTreeMap<String, String>>,
    /// `config` exists but is not a JSON object: its mod_revision (the leader replaces it).
    pub config_garbage: Option<i64>,
    /// `backup` (hapg's own key): schedule claims and results (`crate::backup::record`).
    pub backup: Option<Versioned<crate::backup::record::BackupRecord>>,
    /// `backup-members/<name>`: where each member's PostgreSQL is, for backups from a replica.
    pub backup_members: std::collections::BTreeMap<String, crate::backup::record::BackupMember>,
}

impl Cluster {
    /// Builds the cluster from raw key-values under `keys.prefix()`. Values that do not parse
    /// are logged (with the key and why) and skipped.
    pub fn from_kvs<'a>(keys: &Keys, kvs: impl IntoIterator<Item = RawKv<'a>>) -> Cluster {
        let mut c = Cluster::default();
        for kv in kvs {
            let Some(rel) = keys.relative(kv.key) else {
                continue;
            };
            let text = String::from_utf8_lossy(kv.value);
            let bad = |why: &dyn std::fmt::Display| {
                tracing::warn!(key = kv.key, value = %text, "ignoring invalid value in etcd: {why}");
            };
            match rel {
                "initialize" => c.initialize = Some(text.trim().to_string()),
                "leader" => {
                    c.leader = Some(LeaderEntry {
                        name: text.trim().to_string(),
                        revision: kv.mod_revision,
                        lease: kv.lease,
                    });
                }
                "config" => match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) if v.is_object() => {
                        c.config = Some(Versioned {
                            value: v,
                            revision: kv.mod_revision,
                        });
                    }
                    Ok(_) => {
                        bad(&"not a JSON object");
                        c.config_garbage = Some(kv.mod_revision);
                    }
                    Err(e) => {
                        bad(&e);
                        c.config_garbage = Some(kv.mod_revision);
                    }
                },
                "failover" => {
                    if text.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<FailoverRecord>(&text) {
                        Ok(f) if f.is_empty() => {}
                        Ok(f) => {
                            c.failover = Some(Versioned {
                                value: f,
                                revision: kv.mod_revision,
                            });
                        }
                        Err(e) => bad(&e),
                    }
                }
                "sync" => match serde_json::from_str::<SyncRecord>(&text) {
                    Ok(s) => {
                        c.sync = Some(Versioned {
                            value: s,
                            revision: kv.mod_revision,
                        });
                    }
                    Err(e) => bad(&e),
                },
                "history" => match serde_json::from_str::<Vec<HistoryRecord>>(&text) {
                    Ok(h) => {
                        c.history = Some(Versioned {
                            value: h,
                            revision: kv.mod_revision,
                        });
                    }
                    Err(e) => bad(&e),
                },
                "status" => match serde_json::from_str::<StatusRecord>(&text) {
                    Ok(s) => c.status = Some(s),
                    Err(e) => bad(&e),
                },
                "failsafe" => match serde_json::from_str(&text) {
                    Ok(m) => c.failsafe = Some(m),
                    Err(e) => bad(&e),
                },
                "backup" => {
                    c.backup = Some(Versioned {
                        value: crate::backup::record::BackupRecord::parse(&text),
                        revision: kv.mod_revision,
                    });
                }
                other => {
                    if let Some(name) = other.strip_prefix("backup-members/") {
                        if let Ok(m) = serde_json::from_str(&text) {
                            c.backup_members.insert(name.to_string(), m);
                        }
                        continue;
                    }
                    if let Some(name) = other.strip_prefix("members/") {
                        if name.is_empty() || name.contains('/') {
                            continue;
                        }
                        match serde_json::from_str::<MemberRecord>(&text) {
                            Ok(record) => c.members.push(MemberEntry {
                                name: name.to_string(),
                                record,
                                revision: kv.mod_revision,
                                lease: kv.lease,
                            }),
                            Err(e) => bad(&e),
                        }
                    }
                }
            }
        }
        c.members.sort_by(|a, b| a.name.cmp(&b.name));
        c
    }

    /// The member record of `name`.
    pub fn member(&self, name: &str) -> Option<&MemberEntry> {
        self.members.iter().find(|m| m.name == name)
    }

    /// `initialize` holds a valid system identifier that some members' data directories do
    /// not have: a description of the conflict (for `/cluster`, `hactl list`, the metrics).
    pub fn system_id_conflict(&self) -> Option<String> {
        let init = self
            .initialize
            .as_deref()
            .filter(|i| ha::keys::is_system_id(i))?;
        let others: Vec<String> = self
            .members
            .iter()
            .filter_map(|m| {
                let s = m.record.database_system_identifier.as_deref()?;
                (s != init).then(|| format!("{} runs {s}", m.name))
            })
            .collect();
        (!others.is_empty()).then(|| {
            format!(
                "system ID conflict: initialize says {init} but {}; resolve with hactl fix-initialize",
                others.join(", ")
            )
        })
    }

    /// The leader's name, if the key is held.
    pub fn leader_name(&self) -> Option<&str> {
        self.leader.as_ref().map(|l| l.name.as_str())
    }

    /// The view the HA core decides on, for the member whose current lease is `our_lease`
    /// (0: none).
    pub fn view(&self, our_lease: i64) -> ha::ClusterView {
        let members = self
            .members
            .iter()
            .map(|m| ha::MemberView {
                name: MemberName::new(&m.name),
                role: match m.record.normalized_role() {
                    "primary" | "standby_leader" => ha::PgRole::Primary,
                    "replica" => ha::PgRole::Replica,
                    _ => ha::PgRole::Unknown,
                },
                running: matches!(m.record.state.as_str(), "running" | "streaming"),
                conn: m.record.conn_target(),
                timeline: m.record.timeline,
                lsn: m.record.xlog_location.map(Lsn),
                nofailover: m.record.nofailover(),
                streaming: m.record.replication_state.as_deref() == Some("streaming"),
                nosync: m.record.nosync(),
            })
            .collect();
        let failover = self.failover.as_ref().map(|f| ha::FailoverRequest {
            leader: f
                .value
                .leader
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(MemberName::new),
            candidate: f
                .value
                .member
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(MemberName::new),
            // An unreadable time is treated as "now"; the REST API refuses to write one.
            scheduled_at_ms: f.value.scheduled_at_ms().ok().flatten(),
            revision: Revision(f.revision),
        });
        ha::ClusterView {
            initialize: self.initialize.clone(),
            leader: self.leader.as_ref().map(|l| ha::LeaderKey {
                holder: MemberName::new(&l.name),
                revision: Revision(l.revision),
                lease: match l.lease {
                    0 => ha::KeyLease::None,
                    id if id == our_lease => ha::KeyLease::Ours,
                    _ => ha::KeyLease::Other,
                },
            }),
            members,
            failover,
            optime: self.status.as_ref().map(|s| Lsn(s.optime)),
            history: self
                .history
                .as_ref()
                .map(|h| {
                    h.value
                        .iter()
                        .map(|e| ha::TimelineSwitch {
                            timeline: e.timeline,
                            switch_lsn: Lsn(e.switch_lsn),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            has_config: self.config.is_some(),
            failsafe: self
                .failsafe
                .as_ref()
                .map(|m| m.keys().map(MemberName::new).collect()),
            config_garbage: self.config_garbage.map(Revision),
            sync: self.sync.as_ref().map(|s| ha::SyncKey {
                leader: s
                    .value
                    .leader
                    .as_deref()
                    .filter(|l| !l.is_empty())
                    .map(MemberName::new),
                standbys: s
                    .value
                    .standbys()
                    .into_iter()
                    .map(MemberName::new)
                    .collect(),
                // Patroni reads `quorum` only when a leader is named.
                quorum: match s.value.leader.as_deref() {
                    Some(l) if !l.is_empty() => s.value.quorum.unwrap_or(0) as usize,
                    _ => 0,
                },
                revision: Revision(s.revision),
            }),
        }
    }
}

/// One key-value as read from etcd.
#[derive(Debug, Clone, Copy)]
pub struct RawKv<'a> {
    /// Full key.
    pub key: &'a str,
    /// Value bytes.
    pub value: &'a [u8],
    /// mod_revision.
    pub mod_revision: i64,
    /// Lease id (0: none).
    pub lease: i64,
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
