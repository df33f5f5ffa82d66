//! The cluster as read from etcd: `Cluster` (every key under the prefix, parsed) and its
//! parts, built from raw key-values by `Cluster::from_kvs`, with the readings the agent, the
//! REST API and `hactl` share. Garbage in a key is logged and skipped, never an error for the
//! whole cluster (Patroni's contract). No I/O here: `etcd.rs` and `memory.rs` supply the
//! key-values.

use crate::ha::{self, Lsn, MemberName, Revision};

use super::keys::Keys;
use super::records::{FailoverRecord, HistoryRecord, MemberRecord, StatusRecord, SyncRecord};

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
