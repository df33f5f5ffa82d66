//! PostgreSQL parameters: reading them into [`GucValue`]s and merging them as Patroni does
//! (`ConfigHandler.CMDLINE_OPTIONS`, `Config._build_effective_configuration`).
//!
//! Merge order: Patroni's defaults for the settings it manages, then the cluster's dynamic
//! `postgresql.parameters`, then the local file's, except the settings Patroni only takes
//! from the DCS (they must match on every member or replicas refuse to start). Finally
//! `hot_standby` is on, `wal_log_hints` on under `use_pg_rewind`, and the settings the agent
//! writes itself (addresses, recovery) are removed. Names are lower-cased: PostgreSQL's
//! names are case-insensitive and two spellings must not both reach `postgresql.conf`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::raw::{kind_of, parse_bool_str};
use crate::pg::GucValue;

/// Settings Patroni takes only from the cluster's dynamic configuration.
pub(super) const DCS_ONLY: &[&str] = &[
    "max_connections",
    "max_locks_per_transaction",
    "max_worker_processes",
    "max_prepared_transactions",
    "wal_level",
    "track_commit_timestamp",
    "max_wal_senders",
    "max_replication_slots",
    "wal_keep_segments",
    "wal_keep_size",
    "wal_log_hints",
];

/// Settings the agent writes itself (from `postgresql.listen`, `scope`, its own pg_hba and
/// recovery configuration); a value in `parameters` is ignored.
pub(super) const AGENT_OWNED: &[&str] = &[
    "listen_addresses",
    "port",
    "cluster_name",
    "hba_file",
    "ident_file",
    "primary_conninfo",
    "primary_slot_name",
    "restore_command",
    "archive_cleanup_command",
    "recovery_end_command",
    "recovery_min_apply_delay",
    "recovery_target",
    "recovery_target_lsn",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_xid",
    "recovery_target_inclusive",
    "recovery_target_timeline",
    "recovery_target_action",
    "promote_trigger_file",
    "synchronous_standby_names",
];

/// Patroni's defaults for the settings it manages (`wal_keep_size` is derived separately).
fn defaults() -> BTreeMap<String, GucValue> {
    use GucValue::{Bool, Int, Str};
    [
        ("max_connections", Int(100)),
        ("max_locks_per_transaction", Int(64)),
        ("max_worker_processes", Int(8)),
        ("max_prepared_transactions", Int(0)),
        ("wal_level", Str("replica".into())),
        ("track_commit_timestamp", Bool(false)),
        ("max_wal_senders", Int(10)),
        ("max_replication_slots", Int(10)),
        ("hot_standby", Bool(true)),
        ("wal_log_hints", Bool(true)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Patroni's `wal_keep_segments` default; `wal_keep_size` defaults to 8 * 16 MB = 128MB.
const DEFAULT_WAL_KEEP_SEGMENTS: i64 = 8;

/// Reads a `parameters` mapping. `Err((name, reason))` for a value that is not a scalar or a
/// name written twice in different case.
pub(super) fn read_map(
    map: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, GucValue>, (String, String)> {
    let mut out = BTreeMap::new();
    for (name, v) in map {
        let g = GucValue::from_json(v).ok_or_else(|| {
            (
                name.clone(),
                format!("expected a string, number or boolean, got {}", kind_of(v)),
            )
        })?;
        if out.insert(name.to_lowercase(), g).is_some() {
            return Err((
                name.clone(),
                "set twice (parameter names are case-insensitive)".into(),
            ));
        }
    }
    Ok(out)
}

/// Patroni's validator for a setting it manages, applied to values from the DCS (Patroni
/// drops a value that fails it and keeps its default).
pub(super) fn check_dcs_value(name: &str, v: &GucValue) -> Result<(), String> {
    let min = match name {
        "max_connections" => 25,
        "max_wal_senders" => 3,
        "wal_keep_segments" => 1,
        "max_prepared_transactions" => 0,
        "max_locks_per_transaction" => 32,
        "max_replication_slots" => 4,
        "max_worker_processes" => 2,
        "wal_keep_size" => {
            return match size_mb(v) {
                Some(mb) if mb >= 16 => Ok(()),
                Some(mb) => Err(format!("{mb}MB is below the minimum 16MB")),
                None => Err(format!("{} is not a size", v.to_plain())),
            };
        }
        "wal_level" => {
            let s = v.to_plain().to_lowercase();
            return match s.as_str() {
                "hot_standby" | "replica" | "logical" => Ok(()),
                _ => Err(format!("{s:?} is not replica or logical")),
            };
        }
        "hot_standby" => {
            return match guc_bool(v) {
                Some(true) => Ok(()),
                _ => Err("must be on (replicas serve reads)".into()),
            };
        }
        "track_commit_timestamp" | "wal_log_hints" => {
            return guc_bool(v)
                .map(|_| ())
                .ok_or_else(|| format!("{} is not a boolean", v.to_plain()));
        }
        _ => return Ok(()),
    };
    match guc_int(v) {
        Some(i) if i >= min => Ok(()),
        Some(i) => Err(format!("{i} is below the minimum {min}")),
        None => Err(format!("{} is not an integer", v.to_plain())),
    }
}

fn guc_int(v: &GucValue) -> Option<i64> {
    match v {
        GucValue::Int(i) => Some(*i),
        GucValue::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn guc_bool(v: &GucValue) -> Option<bool> {
    match v {
        GucValue::Bool(b) => Some(*b),
        GucValue::Int(0) => Some(false),
        GucValue::Int(1) => Some(true),
        GucValue::Str(s) => parse_bool_str(s),
        _ => None,
    }
}

/// A size in MB: an integer (MB, PostgreSQL's unit for `wal_keep_size`) or `<n><unit>`.
fn size_mb(v: &GucValue) -> Option<i64> {
    let s = match v {
        GucValue::Int(i) => return Some(*i),
        GucValue::Str(s) => s.trim(),
        _ => return None,
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let factor_kb: i64 = match unit.trim() {
        "" | "MB" => 1024,
        "kB" => 1,
        "GB" => 1024 * 1024,
        "TB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    Some(n.saturating_mul(factor_kb) / 1024)
}

/// Why a local parameter is not used, or `None` when it is.
pub(super) fn local_ignored(name: &str, v: &GucValue) -> Option<&'static str> {
    if DCS_ONLY.contains(&name) {
        Some(
            "ignored: this setting is only taken from the dynamic configuration (bootstrap.dcs or hactl edit-config), as in Patroni",
        )
    } else if AGENT_OWNED.contains(&name) {
        Some("ignored: the agent sets this itself")
    } else if name == "hot_standby" && guc_bool(v) != Some(true) {
        Some("ignored: hot_standby is always on")
    } else {
        None
    }
}

/// The parameters PostgreSQL runs with (see the module doc for the order).
pub(super) fn merge(
    dynamic: &BTreeMap<String, GucValue>,
    local: &BTreeMap<String, GucValue>,
    use_pg_rewind: bool,
) -> BTreeMap<String, GucValue> {
    let mut out = defaults();
    for (k, v) in dynamic {
        if !AGENT_OWNED.contains(&k.as_str()) && check_dcs_value(k, v).is_ok() {
            out.insert(k.clone(), v.clone());
        }
    }
    // PostgreSQL 13 replaced wal_keep_segments (16 MB each) by wal_keep_size and refuses to
    // start with the old name, so it is converted, as Patroni does.
    let segments = out
        .remove("wal_keep_segments")
        .and_then(|v| guc_int(&v))
        .unwrap_or(DEFAULT_WAL_KEEP_SEGMENTS);
    out.entry("wal_keep_size".into())
        .or_insert_with(|| GucValue::Str(format!("{}MB", segments.saturating_mul(16))));
    if let Some(GucValue::Str(level)) = out.get("wal_level")
        && level.eq_ignore_ascii_case("hot_standby")
    {
        out.insert("wal_level".into(), GucValue::Str("replica".into()));
    }
    for (k, v) in local {
        if local_ignored(k, v).is_none() {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("hot_standby".into(), GucValue::Bool(true));
    if use_pg_rewind {
        out.insert("wal_log_hints".into(), GucValue::Bool(true));
    }
    for k in AGENT_OWNED {
        out.remove(*k);
    }
    out
}
