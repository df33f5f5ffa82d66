//! The reader behind the dynamic configuration: `Issue` (a problem with one key), and
//! `Reader`, which reads typed values strictly (the first problem is the error) or leniently
//! (problems are warnings, the default is kept). The sections it reads are in `dynamic.rs`
//! (top level), `dynamic_pg.rs`, `dynamic_slots.rs` and `dynamic_sync.rs`.

use serde_json::{Map, Value};

use super::raw::{bool_of, int_of, kind_of};

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

pub(super) struct Reader {
    pub(super) strict: bool,
    pub(super) warnings: Vec<Issue>,
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

    pub(super) fn secs(
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
}

/// Leniently, the reason says what is used instead.
pub(super) fn defaulted(strict: bool, reason: String, used: &str) -> String {
    if strict {
        reason
    } else {
        format!("{reason}; using {used}")
    }
}

pub(super) fn ignored(strict: bool, reason: String) -> String {
    if strict {
        reason
    } else {
        format!("{reason}; ignored")
    }
}

/// Present and not null, false, or empty.
pub(super) fn is_set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}
