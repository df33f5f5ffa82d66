//! `GET /metrics`: Prometheus text with Patroni's metric names and `{scope, name}` labels, so
//! dashboards and alerts written for Patroni keep working. From the snapshot only.

use std::fmt::Write;

use crate::ha::{PgRole, PgState};
use crate::runtime::NodeSnapshot;

/// Patroni's `PostgresqlState` order, for `patroni_postgres_state`.
const STATES: [&str; 13] = [
    "initdb",
    "initdb failed",
    "custom bootstrap",
    "custom bootstrap failed",
    "creating replica",
    "running",
    "starting",
    "bootstrap starting",
    "start failed",
    "restarting",
    "restart failed",
    "stopping",
    "stopped",
];

/// The metrics text for `snap` (wall clock `now_secs` for the epoch-based gauges).
pub fn render(snap: &NodeSnapshot, now_secs: f64) -> String {
    let labels = format!(
        "{{scope=\"{}\",name=\"{}\"}}",
        escape(&snap.scope),
        escape(&snap.member)
    );
    let mut out = String::with_capacity(4096);
    let mut gauge = |name: &str, help: &str, kind: &str, value: String| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{labels} {value}");
    };
    let running = matches!(snap.pg.state, PgState::Running(_));
    let role = snap.pg.state.role();
    let b = |v: bool| if v { "1" } else { "0" }.to_string();
    gauge(
        "patroni_version",
        "Patroni semver without periods.",
        "gauge",
        version_number(),
    );
    gauge(
        "patroni_postgres_running",
        "Value is 1 if Postgres is running, 0 otherwise.",
        "gauge",
        b(running),
    );
    let start = snap
        .pg
        .details
        .postmaster_start_time
        .as_deref()
        .and_then(parse_pg_time)
        .unwrap_or(0.0);
    gauge(
        "patroni_postmaster_start_time",
        "Epoch seconds since Postgres started.",
        "gauge",
        format!("{start}"),
    );
    gauge(
        "patroni_primary",
        "Value is 1 if this node is the leader, 0 otherwise.",
        "gauge",
        b(running && role == PgRole::Primary && snap.holds_leader_key),
    );
    gauge(
        "patroni_master",
        "Value is 1 if this node is the leader, 0 otherwise.",
        "gauge",
        b(running && role == PgRole::Primary && snap.holds_leader_key),
    );
    gauge(
        "patroni_standby_leader",
        "Value is 1 if this node is the standby_leader, 0 otherwise.",
        "gauge",
        "0".into(),
    );
    gauge(
        "patroni_replica",
        "Value is 1 if this node is a replica, 0 otherwise.",
        "gauge",
        b(running && role == PgRole::Replica),
    );
    gauge(
        "patroni_sync_standby",
        "Value is 1 if this node is a sync standby replica, 0 otherwise.",
        "gauge",
        b(running && super::sync::snapshot_is_sync_standby(snap)),
    );
    gauge(
        "patroni_quorum_standby",
        "Value is 1 if this node is a quorum standby replica, 0 otherwise.",
        "gauge",
        b(running && super::sync::snapshot_is_quorum_standby(snap)),
    );
    let (loc, recv, replay) = match &snap.pg.state {
        PgState::Running(r) if r.role == PgRole::Primary => (r.lsn.0, 0, 0),
        PgState::Running(r) => (
            0,
            snap.pg.details.receive_lsn.unwrap_or(r.lsn.0),
            snap.pg.details.replay_lsn.unwrap_or(r.replay_lsn.0),
        ),
        _ => (0, 0, 0),
    };
    gauge(
        "patroni_xlog_location",
        "Current location of the Postgres transaction log, 0 if this node is not the leader.",
        "counter",
        loc.to_string(),
    );
    gauge(
        "patroni_xlog_received_location",
        "Current location of the received Postgres transaction log, 0 if this node is not a replica.",
        "counter",
        recv.to_string(),
    );
    gauge(
        "patroni_xlog_replayed_location",
        "Current location of the replayed Postgres transaction log, 0 if this node is not a replica.",
        "counter",
        replay.to_string(),
    );
    let replayed_ts = snap
        .pg
        .details
        .replayed_timestamp
        .as_deref()
        .and_then(parse_pg_time)
        .unwrap_or(0.0);
    gauge(
        "patroni_xlog_replayed_timestamp",
        "Current timestamp of the replayed Postgres transaction log, 0 if null.",
        "gauge",
        format!("{replayed_ts}"),
    );
    gauge(
        "patroni_xlog_paused",
        "Value is 1 if the Postgres xlog is paused, 0 otherwise.",
        "gauge",
        b(snap.pg.details.replay_paused),
    );
    let streaming = snap
        .pg
        .state
        .running()
        .is_some_and(|r| r.role == PgRole::Replica && r.streaming);
    let archive = snap
        .pg
        .state
        .running()
        .is_some_and(|r| r.role == PgRole::Replica && !r.streaming);
    gauge(
        "patroni_postgres_streaming",
        "Value is 1 if Postgres is streaming, 0 otherwise.",
        "gauge",
        b(streaming),
    );
    gauge(
        "patroni_postgres_in_archive_recovery",
        "Value is 1 if Postgres is replicating from archive, 0 otherwise.",
        "gauge",
        b(archive),
    );
    gauge(
        "patroni_postgres_server_version",
        "Version of Postgres (if running), 0 otherwise.",
        "gauge",
        snap.pg.details.server_version.unwrap_or(0).to_string(),
    );
    let unlocked = snap.cluster.as_ref().is_some_and(|c| c.leader.is_none());
    gauge(
        "patroni_cluster_unlocked",
        "Value is 1 if the cluster is unlocked, 0 if locked.",
        "gauge",
        b(unlocked),
    );
    gauge(
        "patroni_failsafe_mode_is_active",
        "Value is 1 if failsafe mode is active, 0 if inactive.",
        "gauge",
        b(snap.failsafe_active),
    );
    gauge(
        "patroni_failsafe_mode_enabled",
        "Value is 1 if failsafe_mode is enabled, 0 otherwise.",
        "gauge",
        b(snap.ha.failsafe_mode),
    );
    let failsafe_member = snap
        .cluster
        .as_ref()
        .and_then(|c| c.failsafe.as_ref())
        .is_some_and(|f| f.contains_key(&snap.member));
    gauge(
        "patroni_failsafe_member",
        "Value is 1 if this node is a member of failsafe, 0 otherwise.",
        "gauge",
        b(failsafe_member),
    );
    let conflict = snap
        .cluster
        .as_ref()
        .is_some_and(|c| c.system_id_conflict().is_some());
    gauge(
        "hapg_system_id_conflict",
        "Value is 1 if the initialize key names another system than some members' data, 0 otherwise.",
        "gauge",
        b(conflict),
    );
    let tl = snap.pg.state.running().map_or(0, |r| r.timeline);
    gauge(
        "patroni_postgres_timeline",
        "Postgres timeline of this node (if running), 0 otherwise.",
        "counter",
        tl.to_string(),
    );
    gauge(
        "patroni_dcs_last_seen",
        "Epoch timestamp when DCS was last contacted successfully by Patroni.",
        "gauge",
        snap.dcs_last_seen.unwrap_or(0).to_string(),
    );
    gauge(
        "patroni_pending_restart",
        "Value is 1 if the node needs a restart, 0 otherwise.",
        "gauge",
        b(snap.pg.details.pending_restart),
    );
    gauge(
        "patroni_is_paused",
        "Value is 1 if auto failover is disabled, 0 otherwise.",
        "gauge",
        b(snap.ha.pause),
    );
    let state_idx = STATES
        .iter()
        .position(|s| *s == snap.state)
        .map_or(-1, |i| i64::try_from(i).unwrap_or(-1));
    gauge(
        "patroni_postgres_state",
        "Numeric representation of Postgres state.",
        "gauge",
        state_idx.to_string(),
    );
    // hapg's own: backups (only with a `backup` record in etcd).
    if let Some(rec) = snap.cluster.as_ref().and_then(|c| c.backup.as_ref()) {
        let r = &rec.value;
        if let Some(g) = &r.last_good {
            let end = g.finished.unwrap_or(g.started) as f64;
            gauge(
                "hapg_backup_last_good_age_seconds",
                "Seconds since the last successful backup finished.",
                "gauge",
                format!("{}", (now_secs - end).max(0.0).round()),
            );
            gauge(
                "hapg_backup_last_good_size_bytes",
                "Database size in the last successful backup.",
                "gauge",
                g.size.unwrap_or(0).to_string(),
            );
            gauge(
                "hapg_backup_last_good_duration_seconds",
                "How long the last successful backup took.",
                "gauge",
                g.duration().unwrap_or(0).to_string(),
            );
        }
        gauge(
            "hapg_backup_last_failed",
            "Value is 1 if the last backup failed, 0 otherwise.",
            "gauge",
            b(r.last.as_ref().is_some_and(|l| !l.ok)),
        );
        gauge(
            "hapg_backup_running",
            "Value is 1 while a backup runs, 0 otherwise.",
            "gauge",
            b(r.running.is_some()),
        );
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Patroni reports its version as an integer without periods (4.1.5 -> 040105).
fn version_number() -> String {
    let parts: Vec<u32> = crate::VERSION
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    let n = parts.first().copied().unwrap_or(0) * 10000
        + parts.get(1).copied().unwrap_or(0) * 100
        + parts.get(2).copied().unwrap_or(0);
    format!("{n:06}")
}

/// `2026-11-22 14:43:49.641261+00:00` (PostgreSQL's timestamptz text) to epoch seconds.
fn parse_pg_time(s: &str) -> Option<f64> {
    let t = chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z").ok()?;
    Some(t.timestamp_micros() as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pg_times_parse() {
        assert_eq!(
            super::parse_pg_time("2026-11-22 14:43:49.5+00"),
            Some(1_795_358_629.5)
        );
        assert_eq!(
            super::parse_pg_time("2026-11-22 14:43:49.5+00:00"),
            Some(1_795_358_629.5)
        );
    }
}
