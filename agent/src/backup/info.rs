//! `pgbackrest info --output=json`, read into the rows `hactl backups` prints and the runner
//! records (label, type, start and stop, sizes, WAL range, source member).
//!
//! Reading is lenient: fields pgBackRest leaves out read as absent, so a newer pgBackRest
//! still lists. Only the first stanza of the output is used (the agent names one).

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
struct RawStanza {
    #[serde(default)]
    name: String,
    #[serde(default)]
    backup: Vec<RawBackup>,
    #[serde(default)]
    status: Option<RawStatus>,
}

#[derive(Debug, Default, Deserialize)]
struct RawStatus {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Default, Deserialize)]
struct RawBackup {
    #[serde(default)]
    label: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    timestamp: RawRange<i64>,
    #[serde(default)]
    archive: RawRange<String>,
    #[serde(default)]
    lsn: RawRange<String>,
    #[serde(default)]
    info: RawInfo,
    #[serde(default)]
    annotation: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    error: Option<bool>,
    #[serde(default)]
    prior: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRange<T> {
    #[serde(default)]
    start: Option<T>,
    #[serde(default)]
    stop: Option<T>,
}

#[derive(Debug, Default, Deserialize)]
struct RawInfo {
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    repository: Option<RawRepoInfo>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRepoInfo {
    #[serde(default)]
    delta: Option<u64>,
}

/// The stanza as `pgbackrest info` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StanzaInfo {
    /// Stanza name.
    pub stanza: String,
    /// pgBackRest's status code (0: ok).
    pub status_code: i64,
    /// Its message (`ok`, `no valid backups`, `missing stanza path`, ...).
    pub status: String,
    /// Backups, oldest first.
    pub backups: Vec<BackupInfo>,
}

/// One backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupInfo {
    /// Label, e.g. `20261203-144000F_20261203-150000I`.
    pub label: String,
    /// `full`, `diff` or `incr`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Start (Unix seconds).
    pub start: Option<i64>,
    /// Stop (Unix seconds).
    pub stop: Option<i64>,
    /// Database size (bytes).
    pub size: Option<u64>,
    /// What this backup added to the repository (bytes).
    pub repo_size: Option<u64>,
    /// First WAL segment needed.
    pub wal_start: Option<String>,
    /// Last WAL segment needed.
    pub wal_stop: Option<String>,
    /// Start LSN.
    pub lsn_start: Option<String>,
    /// Stop LSN.
    pub lsn_stop: Option<String>,
    /// The backup this one depends on.
    pub prior: Option<String>,
    /// The member that ran it (annotation `hapg-member`).
    pub member: Option<String>,
    /// Where the files came from (annotation `hapg-source`).
    pub source: Option<String>,
    /// pgBackRest found page checksum errors.
    pub error: bool,
}

/// Reads `pgbackrest info --output=json`.
pub fn parse(json: &str) -> Result<StanzaInfo, String> {
    let stanzas: Vec<RawStanza> =
        serde_json::from_str(json).map_err(|e| format!("unreadable pgbackrest info: {e}"))?;
    let s = stanzas.into_iter().next().unwrap_or_default();
    let status = s.status.unwrap_or_default();
    let annotation = |b: &RawBackup, k: &str| {
        b.annotation
            .as_ref()
            .and_then(|a| a.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Ok(StanzaInfo {
        stanza: s.name,
        status_code: status.code,
        status: status.message,
        backups: s
            .backup
            .iter()
            .map(|b| BackupInfo {
                label: b.label.clone(),
                kind: b.kind.clone(),
                start: b.timestamp.start,
                stop: b.timestamp.stop,
                size: b.info.size,
                repo_size: b.info.repository.as_ref().and_then(|r| r.delta),
                wal_start: b.archive.start.clone(),
                wal_stop: b.archive.stop.clone(),
                lsn_start: b.lsn.start.clone(),
                lsn_stop: b.lsn.stop.clone(),
                prior: b.prior.clone(),
                member: annotation(b, "hapg-member"),
                source: annotation(b, "hapg-source"),
                error: b.error.unwrap_or(false),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"[{"archive":[{"id":"15-1","max":"000000010000000000000006","min":"000000010000000000000001"}],
      "backup":[{"annotation":{"hapg-member":"node1","hapg-source":"node2"},
        "archive":{"start":"000000010000000000000003","stop":"000000010000000000000003"},
        "database":{"id":1,"repo-key":1},"error":false,
        "info":{"delta":23000000,"repository":{"delta":3000000,"size":3000000},"size":23000000},
        "label":"20261203-144000F","lsn":{"start":"0/3000028","stop":"0/3000100"},
        "prior":null,"reference":null,"timestamp":{"start":1796309000,"stop":1796309004},"type":"full"}],
      "cipher":"none","name":"demo","status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]"#;

    #[test]
    fn info_json_gives_label_type_times_sizes_wal_range_and_source() {
        let s = parse(SAMPLE).unwrap();
        assert_eq!(s.stanza, "demo");
        assert_eq!(s.status, "ok");
        let b = &s.backups[0];
        assert_eq!(b.label, "20261203-144000F");
        assert_eq!(b.kind, "full");
        assert_eq!((b.start, b.stop), (Some(1796309000), Some(1796309004)));
        assert_eq!((b.size, b.repo_size), (Some(23000000), Some(3000000)));
        assert_eq!(b.wal_start.as_deref(), Some("000000010000000000000003"));
        assert_eq!(b.source.as_deref(), Some("node2"));
        assert_eq!(b.member.as_deref(), Some("node1"));
    }

    #[test]
    fn a_missing_stanza_reads_as_its_status() {
        let s = parse(
            r#"[{"backup":[],"name":"x","status":{"code":1,"message":"missing stanza path"}}]"#,
        )
        .unwrap();
        assert_eq!((s.status_code, s.backups.len()), (1, 0));
        assert!(parse("not json").is_err());
    }
}
