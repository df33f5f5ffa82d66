//! The cluster's `backup` key (hapg's own, under the cluster prefix; Patroni ignores it): the
//! last schedule slot claimed, a pending on-demand request, the backup running, and the last
//! and last good results. Every write is a compare-and-set on the key's mod_revision.
//!
//! Also `backup-members/<name>`: where each member's PostgreSQL is (data directory, port,
//! socket), so that the leader can name a replica as pgBackRest's `pg2` when backing up from
//! it.

use serde::{Deserialize, Serialize};

use crate::ha::backup::BackupKind;

/// The value of the `backup` key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BackupRecord {
    /// The latest schedule slot claimed (Unix seconds): never run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// A backup asked for with `hactl backup`, not started yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<BackupRequest>,
    /// The backup running now (or that ran when its leader died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<BackupOutcome>,
    /// The last backup that finished, good or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<BackupOutcome>,
    /// The last backup that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_good: Option<BackupOutcome>,
}

/// An on-demand request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRequest {
    /// Chosen by the requester, reported back in `last.request`.
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: BackupKind,
    /// When asked (Unix seconds).
    pub at: u64,
}

/// One backup, running or finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupOutcome {
    /// The leader that ran it.
    pub member: String,
    /// Where the files came from (a replica's name, or the leader's).
    pub source: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: BackupKind,
    /// The schedule slot, for a scheduled backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// The request id, for an on-demand backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Start (Unix seconds).
    pub started: u64,
    /// End (Unix seconds), once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<u64>,
    /// It succeeded.
    #[serde(default)]
    pub ok: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// pgBackRest's label of the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Size of the database in the backup (bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Size in the repository (bytes, compressed, only what this backup added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_size: Option<u64>,
}

impl BackupOutcome {
    /// Seconds it took, once finished.
    pub fn duration(&self) -> Option<u64> {
        self.finished.map(|f| f.saturating_sub(self.started))
    }
}

impl BackupRecord {
    /// Reads the key's value; garbage reads as an empty record (the next claim replaces it).
    pub fn parse(text: &str) -> BackupRecord {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// `degraded` reason for `/cluster` and `hactl list`: the last backup failed.
    pub fn problem(&self) -> Option<String> {
        let last = self.last.as_ref()?;
        (!last.ok).then(|| {
            format!(
                "last backup failed ({} {}: {})",
                last.kind,
                last.member,
                last.error.as_deref().unwrap_or("unknown error")
            )
        })
    }

    /// One line for `hactl list`'s footer.
    pub fn summary(&self, now: u64) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(g) = &self.last_good {
            let age = now.saturating_sub(g.finished.unwrap_or(g.started));
            parts.push(format!(
                "last good backup: {} {} {}s ago from {}",
                g.kind,
                g.label.as_deref().unwrap_or("?"),
                age,
                g.source
            ));
        }
        if let Some(p) = self.problem() {
            parts.push(p);
        }
        if let Some(r) = &self.running {
            parts.push(format!("running: {} on {}", r.kind, r.member));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The value of `backup-members/<name>`: where that member's PostgreSQL is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupMember {
    /// Data directory.
    pub data_dir: String,
    /// Port.
    pub port: u16,
    /// Unix socket directory, if the agent uses one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// Which machine it is on (`<hostname> <kernel boot id>`, [`super::runner::host_id`]).
    /// pgBackRest reads a standby's files through its local path, so only a member on the
    /// leader's own machine can be a backup-standby source; a record without it (an older
    /// agent) is taken for another machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ok: bool) -> BackupOutcome {
        BackupOutcome {
            member: "pg1".into(),
            source: "pg2".into(),
            kind: BackupKind::Full,
            slot: Some(60),
            request: None,
            started: 100,
            finished: Some(130),
            ok,
            error: (!ok).then(|| "repo gone".to_string()),
            label: ok.then(|| "20261203-140000F".to_string()),
            size: Some(1),
            repo_size: Some(1),
        }
    }

    #[test]
    fn a_failed_last_backup_is_a_problem_and_a_good_one_is_not() {
        let mut r = BackupRecord {
            last: Some(outcome(false)),
            last_good: Some(outcome(true)),
            ..Default::default()
        };
        assert_eq!(
            r.problem().as_deref(),
            Some("last backup failed (full pg1: repo gone)")
        );
        assert!(r.summary(200).unwrap().contains("70s ago from pg2"));
        r.last = Some(outcome(true));
        assert_eq!(r.problem(), None);
    }

    #[test]
    fn garbage_reads_as_empty_and_a_record_round_trips() {
        assert_eq!(BackupRecord::parse("{"), BackupRecord::default());
        let r = BackupRecord {
            slot: Some(60),
            last: Some(outcome(true)),
            ..Default::default()
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"type\":\"full\""), "{text}");
        assert_eq!(BackupRecord::parse(&text), r);
    }
}
