//! SQL towards PostgreSQL: the one-round-trip status query and its interpretation, error
//! classification, and quoting (sessions themselves are in `session.rs`, re-exported here).
//!
//! Invariants: the status query is a single simple-protocol statement (one round trip, no
//! prepare) that is safe on a primary and on a replica (`pg_current_wal_lsn()` only behind
//! `CASE WHEN NOT pg_is_in_recovery()`). Interpretation is pure and unit-tested. No statement
//! built here carries a password except role creation, which the caller runs with statement
//! logging off.

use tokio_postgres::error::SqlState;

pub use super::session::{ConnectError, Session, Target, local_config, remote_config};
use super::{PgDetails, ReplicationRow};
use crate::ha::{Lsn, PgRole, RunningPg};

/// Why a connection or query failed, as `status()` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server runs but does not take connections yet (or refuses them while it starts
    /// or stops).
    Starting(String),
    /// Anything else: auth failure, broken connection, unexpected error.
    Unknown(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Starting(why) => write!(f, "not accepting connections yet: {why}"),
            Failure::Unknown(why) => f.write_str(why),
        }
    }
}

/// Sorts a failed connection attempt (see [`classify`]); unusable TLS settings are `Unknown`.
pub fn classify_connect(err: &ConnectError) -> Failure {
    match err {
        ConnectError::Pg(e) => classify(e),
        ConnectError::Tls(why) => Failure::Unknown(format!("TLS settings: {why}")),
    }
}

/// Sorts a tokio-postgres error into `Starting` or `Unknown`.
pub fn classify(err: &tokio_postgres::Error) -> Failure {
    let text = error_chain(err);
    if err.code() == Some(&SqlState::CANNOT_CONNECT_NOW) {
        return Failure::Starting(text);
    }
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            )
        {
            return Failure::Starting(text);
        }
        source = e.source();
    }
    Failure::Unknown(text)
}

/// The error and its sources on one line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        source = e.source();
    }
    out
}

/// One round trip for everything `status()` reports.
pub const STATUS_SQL: &str = "\
SELECT r.rec,
 (pg_catalog.pg_control_system()).system_identifier,
 CASE WHEN r.rec THEN NULL ELSE pg_catalog.pg_current_wal_lsn() END,
 CASE WHEN r.rec THEN NULL ELSE ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name(
   pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
 pg_catalog.pg_last_wal_receive_lsn(),
 pg_catalog.pg_last_wal_replay_lsn(),
 w.status,
 w.received_tli,
 (pg_catalog.pg_control_checkpoint()).timeline_id,
 pg_catalog.current_setting('server_version_num'),
 pg_catalog.to_char(pg_catalog.pg_postmaster_start_time(), 'YYYY-MM-DD HH24:MI:SS.USTZH:TZM'),
 pg_catalog.to_char(pg_catalog.pg_last_xact_replay_timestamp(), 'YYYY-MM-DD HH24:MI:SS.USTZH:TZM'),
 CASE WHEN r.rec THEN pg_catalog.pg_is_wal_replay_paused() ELSE false END,
 (SELECT pg_catalog.bool_or(pending_restart) FROM pg_catalog.pg_settings),
 CASE WHEN r.rec THEN NULL ELSE (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
   'usename', usename, 'application_name', application_name,
   'client_addr', pg_catalog.host(client_addr), 'state', state,
   'sync_state', sync_state, 'sync_priority', sync_priority, 'flush_lsn', flush_lsn)
   ORDER BY application_name)
   FROM pg_catalog.pg_stat_replication) END,
 CASE WHEN r.rec THEN NULL ELSE pg_catalog.current_setting('synchronous_standby_names') END
FROM (SELECT pg_catalog.pg_is_in_recovery() AS rec) r
LEFT JOIN pg_catalog.pg_stat_get_wal_receiver() w ON true";

/// `STATUS_SQL`'s row as the core's `RunningPg` and the API's details.
pub fn interpret(cols: &[Option<String>]) -> Result<(RunningPg, PgDetails), String> {
    let col = |i: usize| cols.get(i).and_then(|c| c.as_deref());
    let lsn = |i: usize| -> Result<Option<Lsn>, String> {
        col(i)
            .map(|t| Lsn::parse(t).ok_or_else(|| format!("bad lsn {t:?} in column {i}")))
            .transpose()
    };
    let int = |i: usize| -> Result<Option<i64>, String> {
        col(i)
            .map(|t| {
                t.parse()
                    .map_err(|_| format!("bad number {t:?} in column {i}"))
            })
            .transpose()
    };
    let in_recovery = col(0) == Some("t");
    let sysid = col(1).ok_or("no system identifier")?.to_string();
    let receive = lsn(4)?;
    let replay = lsn(5)?;
    let receiver_state = col(6).map(str::to_string);
    let tli = |v: Option<i64>| v.and_then(|t| u32::try_from(t).ok()).filter(|t| *t > 0);
    let replication = match col(14) {
        Some(json) => serde_json::from_str::<Vec<RawReplicationRow>>(json)
            .map_err(|e| format!("bad replication rows: {e}"))?
            .into_iter()
            .map(RawReplicationRow::into_row)
            .collect(),
        None => Vec::new(),
    };
    let details = PgDetails {
        server_version: int(9)?.and_then(|v| i32::try_from(v).ok()),
        postmaster_start_time: col(10).map(str::to_string),
        receive_lsn: receive.map(|l| l.0),
        replay_lsn: replay.map(|l| l.0),
        replayed_timestamp: col(11).map(str::to_string),
        replay_paused: col(12) == Some("t"),
        receiver_state: receiver_state.clone(),
        replication,
        pending_restart: col(13) == Some("t"),
        postmaster_pid: None,
        sync_standby_names: col(15).map(str::to_string),
    };
    let running = if in_recovery {
        let top = receive.max(replay).unwrap_or_default();
        RunningPg {
            role: PgRole::Replica,
            sysid,
            timeline: tli(int(7)?)
                .or(tli(int(8)?))
                .ok_or("replica without a timeline")?,
            lsn: top,
            replay_lsn: replay.unwrap_or_default(),
            streaming: receiver_state.as_deref() == Some("streaming"),
        }
    } else {
        let current = lsn(2)?.ok_or("primary without a current lsn")?;
        RunningPg {
            role: PgRole::Primary,
            sysid,
            timeline: tli(int(3)?).ok_or("primary without a timeline")?,
            lsn: current,
            replay_lsn: current,
            streaming: false,
        }
    };
    Ok((running, details))
}

/// A `pg_stat_replication` row as the status query's JSON has it (columns may be null).
#[derive(serde::Deserialize)]
struct RawReplicationRow {
    usename: Option<String>,
    application_name: Option<String>,
    client_addr: Option<String>,
    state: Option<String>,
    sync_state: Option<String>,
    sync_priority: Option<i32>,
    #[serde(default)]
    flush_lsn: Option<String>,
}

impl RawReplicationRow {
    fn into_row(self) -> ReplicationRow {
        ReplicationRow {
            usename: self.usename.unwrap_or_default(),
            application_name: self.application_name.unwrap_or_default(),
            client_addr: self.client_addr,
            state: self.state.unwrap_or_default(),
            sync_state: self.sync_state.unwrap_or_default(),
            sync_priority: self.sync_priority.unwrap_or_default(),
            flush_lsn: self.flush_lsn.as_deref().and_then(Lsn::parse).map(|l| l.0),
        }
    }
}

/// An SQL identifier, double-quoted.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// An SQL string literal, correct whatever `standard_conforming_strings` says.
pub fn quote_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|c| c.map(str::to_string)).collect()
    }

    #[test]
    fn a_primary_row_reports_current_lsn_timeline_and_standbys() {
        let cols = row(&[
            Some("f"),
            Some("7305421836442811234"),
            Some("0/3000148"),
            Some("2"),
            None,
            None,
            None,
            None,
            Some("1"),
            Some("150018"),
            Some("2026-11-22 14:43:49.641261+00:00"),
            None,
            Some("f"),
            Some("f"),
            Some(
                r#"[{"usename":"replicator","application_name":"node2","client_addr":"127.0.0.1","state":"streaming","sync_state":"async","sync_priority":0}]"#,
            ),
        ]);
        let (pg, d) = interpret(&cols).unwrap();
        assert_eq!(
            pg,
            RunningPg {
                role: PgRole::Primary,
                sysid: "7305421836442811234".into(),
                timeline: 2,
                lsn: Lsn(0x3000148),
                replay_lsn: Lsn(0x3000148),
                streaming: false,
            }
        );
        assert_eq!(d.server_version, Some(150018));
        assert_eq!(d.replication.len(), 1);
        assert_eq!(d.replication[0].application_name, "node2");
        assert_eq!(d.replication[0].client_addr.as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn a_replica_row_takes_the_later_lsn_and_the_receiver_timeline() {
        let cols = row(&[
            Some("t"),
            Some("1"),
            None,
            None,
            Some("0/5000000"),
            Some("0/4000000"),
            Some("streaming"),
            Some("3"),
            Some("2"),
            Some("150018"),
            None,
            Some("2026-11-22 14:43:49.641261+00:00"),
            Some("t"),
            Some("t"),
            None,
        ]);
        let (pg, d) = interpret(&cols).unwrap();
        assert_eq!(pg.role, PgRole::Replica);
        assert_eq!(pg.timeline, 3);
        assert_eq!(pg.lsn, Lsn(0x5000000));
        assert_eq!(pg.replay_lsn, Lsn(0x4000000));
        assert!(pg.streaming);
        assert!(d.replay_paused && d.pending_restart);
        assert_eq!(d.receive_lsn, Some(0x5000000));
    }

    #[test]
    fn a_replica_without_receiver_uses_the_checkpoint_timeline() {
        let mut cols = row(&[Some("t"), Some("1"), None, None, None, Some("0/4000000")]);
        cols.extend(row(&[None, Some("0"), Some("4"), Some("150018")]));
        let (pg, _) = interpret(&cols).unwrap();
        assert_eq!(pg.timeline, 4);
        assert_eq!(pg.lsn, Lsn(0x4000000));
        assert!(!pg.streaming);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(interpret(&[]).is_err());
        assert!(interpret(&row(&[Some("f"), Some("1"), Some("zz")])).is_err());
    }

    #[test]
    fn quoting_survives_quotes_and_backslashes() {
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\'b"), "E'a\\\\''b'");
    }
}
