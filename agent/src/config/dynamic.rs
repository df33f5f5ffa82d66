//! Reading the cluster's dynamic configuration (the `config` key, or `bootstrap.dcs`).
//!
//! One reader, two modes. Lenient (`DynamicConfig::from_json`, used on what etcd holds): a bad
//! value is a warning and its default is used, so garbage in etcd cannot stop an agent.
//! Strict (`DynamicConfig::validate` and the file's `bootstrap.dcs`): the first bad value is
//! an error naming its key. Both accept Patroni's spellings: numbers as digit strings,
//! booleans as `on/off/yes/no/true/false`, `master_start_timeout` for `primary_start_timeout`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::params::{AGENT_OWNED, check_dcs_value, read_map};
use super::raw::{bool_of, int_of, kind_of};
use super::{DynamicConfig, Warning};

/// A problem with one key (dotted, relative to the dynamic configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Issue {
    pub key: String,
    pub reason: String,
}

impl Issue {
    pub(super) fn new(key: &str, reason: impl Into<String>) -> Self {
        Issue {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
    /// `key: reason` (`unknown key <key> ignored` for an unknown key).
    pub fn line(&self) -> String {
        render(&self.key, &self.reason)
    }
}

/// The reason given for a key nobody knows.
pub(super) const UNKNOWN: &str = "unknown key ignored";

/// One warning line about `key`.
pub(super) fn render(key: &str, reason: &str) -> String {
    if reason == UNKNOWN {
        format!("unknown key {key} ignored")
    } else {
        format!("{key}: {reason}")
    }
}

/// Upper bound for the timing settings: etcd keeps lease TTLs in int64 seconds and we keep
/// milliseconds in u64; anything near this is a typo anyway.
const MAX_SECS: i64 = i32::MAX as i64;

/// Top-level keys Patroni knows and we accept without acting on them.
const QUIET_KEYS: &[&str] = &[
    "max_timelines_history",
    "primary_stop_timeout",
    "master_stop_timeout",
    "check_timeline",
];

/// `postgresql.*` keys Patroni knows and we accept without acting on them.
const QUIET_PG_KEYS: &[&str] = &[
    "pg_hba",
    "remove_data_directory_on_rewind_failure",
    "remove_data_directory_on_diverged_timelines",
    "pg_ctl_timeout",
    "use_unix_socket",
    "use_unix_socket_repl",
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

pub(super) struct Reader {
    pub(super) strict: bool,
    warnings: Vec<Issue>,
}

impl Reader {
    /// A bad value: the error (strict) or a warning (lenient; the caller keeps the default).
    pub(super) fn problem(&mut self, issue: Issue) -> Result<(), Issue> {
        if self.strict {
            Err(issue)
        } else {
            self.warnings.push(issue);
            Ok(())
        }
    }

    pub(super) fn note(&mut self, key: &str, reason: &str) {
        self.warnings.push(Issue::new(key, reason));
    }

    pub(super) fn int(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        min: i64,
        max: i64,
        default: u64,
    ) -> Result<u64, Issue> {
        let Some(v) = obj.get(key).filter(|v| !v.is_null()) else {
            return Ok(default);
        };
        let reason = match int_of(v) {
            Some(i) if i < min => format!("{i} is too small (minimum {min})"),
            Some(i) if i > max => format!("{i} is too large (maximum {max})"),
            // invariant: min >= 0, so i is not negative here
            Some(i) => return Ok(u64::try_from(i).unwrap_or(default)),
            None => format!("expected a whole number, got {}", kind_of(v)),
        };
        let reason = defaulted(self.strict, reason, &default.to_string());
        self.problem(Issue::new(key, reason))?;
        Ok(default)
    }

    fn secs(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        min: i64,
        default: u64,
    ) -> Result<u64, Issue> {
        self.int(obj, key, min, MAX_SECS, default)
    }

    /// `obj[key]` as a boolean; `shown` is the key's dotted name for messages.
    pub(super) fn bool(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        shown: &str,
        default: bool,
    ) -> Result<bool, Issue> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match bool_of(v) {
                Some(b) => Ok(b),
                None => {
                    let reason = format!("expected a boolean, got {}", kind_of(v));
                    let reason = defaulted(self.strict, reason, &default.to_string());
                    self.problem(Issue::new(shown, reason))?;
                    Ok(default)
                }
            },
        }
    }

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

    fn postgresql(&mut self, pg: &Map<String, Value>, dc: &mut DynamicConfig) -> Result<(), Issue> {
        dc.use_pg_rewind = self.bool(
            pg,
            "use_pg_rewind",
            "postgresql.use_pg_rewind",
            dc.use_pg_rewind,
        )?;
        dc.use_slots = self.bool(pg, "use_slots", "postgresql.use_slots", dc.use_slots)?;
        for key in ["pg_ident", "recovery_conf"] {
            if is_set(pg.get(key)) {
                self.note(&format!("postgresql.{key}"), "not supported yet");
            }
        }
        for key in pg.keys() {
            let known = matches!(
                key.as_str(),
                "use_pg_rewind" | "use_slots" | "parameters" | "pg_ident" | "recovery_conf"
            ) || QUIET_PG_KEYS.contains(&key.as_str());
            if !known {
                self.note(&format!("postgresql.{key}"), UNKNOWN);
            }
        }
        match pg.get("parameters") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Object(params)) => self.parameters(params, dc),
            Some(other) => self.problem(Issue::new(
                "postgresql.parameters",
                format!("expected a mapping, got {}", kind_of(other)),
            )),
        }
    }

    fn parameters(
        &mut self,
        params: &Map<String, Value>,
        dc: &mut DynamicConfig,
    ) -> Result<(), Issue> {
        // Read one at a time so that, leniently, one bad value only loses itself.
        for (name, v) in params {
            let key = format!("postgresql.parameters.{name}");
            let single: Map<String, Value> = [(name.clone(), v.clone())].into_iter().collect();
            let g = match read_map(&single) {
                Ok(mut m) => m.pop_first().map(|(_, g)| g),
                Err((_, reason)) => {
                    self.problem(Issue::new(&key, ignored(self.strict, reason)))?;
                    None
                }
            };
            let Some(g) = g else { continue };
            let lname = name.to_lowercase();
            if AGENT_OWNED.contains(&lname.as_str()) {
                self.note(&key, "ignored: the agent sets this itself");
                continue;
            }
            if let Err(reason) = check_dcs_value(&lname, &g) {
                self.problem(Issue::new(&key, ignored(self.strict, reason)))?;
                continue;
            }
            if dc.parameters.insert(lname, g).is_some() {
                self.problem(Issue::new(
                    &key,
                    "set twice (parameter names are case-insensitive)",
                ))?;
            }
        }
        Ok(())
    }
}

/// Leniently, the reason says what is used instead.
fn defaulted(strict: bool, reason: String, used: &str) -> String {
    if strict {
        reason
    } else {
        format!("{reason}; using {used}")
    }
}

fn ignored(strict: bool, reason: String) -> String {
    if strict {
        reason
    } else {
        format!("{reason}; ignored")
    }
}

/// Present and not null, false, or empty.
fn is_set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}
