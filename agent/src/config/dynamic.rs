//! `DynamicConfig` and reading it: the cluster's dynamic configuration (the `config` key, or
//! `bootstrap.dcs`). Its entry points (`from_json`, `from_json_over`, `validate`) are in
//! `mod.rs`, so that `dynamic_keep.rs` depends on this file and not the other way round.
//!
//! One reader, two modes. Lenient (`DynamicConfig::from_json`, used on what etcd holds): a bad
//! value is a warning and its default is used, so garbage in etcd cannot stop an agent.
//! Strict (`DynamicConfig::validate` and the file's `bootstrap.dcs`): the first bad value is
//! an error naming its key. Both accept Patroni's spellings: numbers as digit strings,
//! booleans as `on/off/yes/no/true/false`, `master_start_timeout` for `primary_start_timeout`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Warning;
use super::dynamic_reader::{Issue, Reader, UNKNOWN, defaulted, is_set};
use super::raw::kind_of;
use crate::pg::GucValue;

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

/// Top-level keys Patroni knows and we accept without acting on them.
const QUIET_KEYS: &[&str] = &[
    "max_timelines_history",
    "primary_stop_timeout",
    "master_stop_timeout",
    "check_timeline",
];

impl Default for DynamicConfig {
    /// Patroni's defaults.
    fn default() -> Self {
        DynamicConfig {
            ttl: 30,
            loop_wait: 10,
            retry_timeout: 10,
            maximum_lag_on_failover: 1_048_576,
            primary_start_timeout: 300,
            use_pg_rewind: false,
            use_slots: true,
            member_slots_ttl: 1800,
            ignore_slots: Vec::new(),
            pause: false,
            failsafe_mode: false,
            synchronous_mode: crate::ha::SyncMode::Off,
            synchronous_mode_strict: false,
            synchronous_node_count: 1,
            maximum_lag_on_syncnode: None,
            parameters: BTreeMap::new(),
            raw: Value::Object(Map::new()),
        }
    }
}

/// Reads `value`. Strict: the first problem is the error. Lenient: problems are warnings
/// (`Err` never happens). Remarks about unsupported features are warnings in both modes.
pub(super) fn read(value: &Value, strict: bool) -> Result<(DynamicConfig, Vec<Issue>), Issue> {
    let mut r = Reader {
        strict,
        warnings: Vec::new(),
    };
    let mut dc = DynamicConfig {
        raw: value.clone(),
        ..DynamicConfig::default()
    };
    let obj = match value {
        Value::Object(m) => m,
        other => {
            let reason = format!("expected a JSON object, got {}", kind_of(other));
            r.problem(Issue::new(
                "(top level)",
                defaulted(strict, reason, "defaults"),
            ))?;
            return Ok((dc, r.warnings));
        }
    };
    dc.ttl = r.secs(obj, "ttl", 2, dc.ttl)?;
    dc.loop_wait = r.secs(obj, "loop_wait", 1, dc.loop_wait)?;
    dc.retry_timeout = r.secs(obj, "retry_timeout", 1, dc.retry_timeout)?;
    dc.maximum_lag_on_failover = r.int(
        obj,
        "maximum_lag_on_failover",
        0,
        i64::MAX,
        dc.maximum_lag_on_failover,
    )?;
    let start_key = if obj
        .get("primary_start_timeout")
        .is_some_and(|v| !v.is_null())
    {
        "primary_start_timeout"
    } else {
        "master_start_timeout"
    };
    dc.primary_start_timeout = r.secs(obj, start_key, 0, dc.primary_start_timeout)?;
    dc.pause = r.bool(obj, "pause", "pause", dc.pause)?;
    dc.failsafe_mode = r.bool(obj, "failsafe_mode", "failsafe_mode", dc.failsafe_mode)?;
    r.timing(&mut dc)?;
    r.synchronous(obj, &mut dc)?;
    r.slots(obj, &mut dc)?;
    r.unsupported(obj)?;
    match obj.get("postgresql") {
        None | Some(Value::Null) => {}
        Some(Value::Object(pg)) => r.postgresql(pg, &mut dc)?,
        Some(other) => {
            let reason = format!("expected a mapping, got {}", kind_of(other));
            r.problem(Issue::new(
                "postgresql",
                defaulted(strict, reason, "defaults"),
            ))?;
        }
    }
    Ok((dc, r.warnings))
}

/// Lenient reading with the warnings formatted for the log.
pub(super) fn from_json(value: &Value) -> (DynamicConfig, Vec<Warning>) {
    match read(value, false) {
        Ok((dc, issues)) => (dc, issues.iter().map(|i| Warning(i.line())).collect()),
        // invariant: lenient reading turns every problem into a warning
        Err(issue) => (DynamicConfig::default(), vec![Warning(issue.line())]),
    }
}

impl Reader {
    /// `loop_wait + 2 * retry_timeout <= ttl`: a leader that cannot renew demotes before its
    /// lease can expire only if this holds.
    fn timing(&mut self, dc: &mut DynamicConfig) -> Result<(), Issue> {
        let need = dc
            .loop_wait
            .saturating_add(dc.retry_timeout.saturating_mul(2));
        // The demotion point must also leave room for a renewal attempt (`ha::timing`).
        let ha = crate::ha::HaConfig {
            ttl: crate::ha::Millis::secs(dc.ttl),
            loop_wait: crate::ha::Millis::secs(dc.loop_wait),
            watchdog: crate::ha::WatchdogMode::Off,
            ..crate::ha::HaConfig::default()
        };
        let reason = match crate::ha::timing::unsafe_timing(&ha) {
            _ if need > dc.ttl => format!(
                "{} is too small: loop_wait ({}) + 2 * retry_timeout ({}) must not exceed ttl",
                dc.ttl, dc.loop_wait, dc.retry_timeout
            ),
            Some(why) => format!("{} is too small: {why}", dc.ttl),
            None => return Ok(()),
        };
        let d = DynamicConfig::default();
        let used = format!(
            "ttl {}, loop_wait {}, retry_timeout {}",
            d.ttl, d.loop_wait, d.retry_timeout
        );
        self.problem(Issue::new("ttl", defaulted(self.strict, reason, &used)))?;
        (dc.ttl, dc.loop_wait, dc.retry_timeout) = (d.ttl, d.loop_wait, d.retry_timeout);
        Ok(())
    }

    /// Features we read but do not implement yet: a warning when they are switched on.
    fn unsupported(&mut self, obj: &Map<String, Value>) -> Result<(), Issue> {
        if is_set(obj.get("standby_cluster")) {
            self.note(
                "standby_cluster",
                "not supported yet; this cluster runs as an ordinary primary cluster",
            );
        }
        if is_set(obj.get("slots")) {
            // Refused where it is written (a cluster relying on permanent slots would lose them
            // at the next failover); found in etcd, a warning.
            let reason = "permanent replication slots are not supported yet: refused, since \
                          a cluster relying on them would lose them at the next failover";
            if self.strict {
                return Err(Issue::new("slots", reason));
            }
            self.note("slots", "permanent replication slots are not supported yet");
        }
        for key in obj.keys() {
            let known = matches!(
                key.as_str(),
                "ttl"
                    | "loop_wait"
                    | "retry_timeout"
                    | "maximum_lag_on_failover"
                    | "primary_start_timeout"
                    | "master_start_timeout"
                    | "pause"
                    | "postgresql"
                    | "synchronous_mode"
                    | "synchronous_mode_strict"
                    | "synchronous_node_count"
                    | "maximum_lag_on_syncnode"
                    | "failsafe_mode"
                    | "standby_cluster"
                    | "slots"
                    | "ignore_slots"
                    | "member_slots_ttl"
            ) || QUIET_KEYS.contains(&key.as_str());
            if !known {
                self.note(key, UNKNOWN);
            }
        }
        Ok(())
    }
}
