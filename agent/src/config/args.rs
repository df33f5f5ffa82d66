//! `bootstrap.initdb` and `postgresql.basebackup` as command-line arguments, in Patroni's
//! shapes (`process_user_options`): a list of flags (`data-checksums`) and one-key mappings
//! (`{encoding: UTF8}`), or one mapping of options.
//!
//! Options the agent sets itself are refused, so that two conflicting values never reach
//! the program.

use serde_json::Value;

use super::raw::kind_of;

/// initdb options the agent passes itself.
pub(super) const INITDB_OWNED: &[&str] = &[
    "pgdata",
    "nosync",
    "pwfile",
    "sync-only",
    "version",
    "username",
];

/// pg_basebackup options the agent passes itself.
pub(super) const BASEBACKUP_OWNED: &[&str] = &[
    "pgdata",
    "format",
    "wal-method",
    "write-recovery-conf",
    "version",
    "dbname",
    "host",
    "port",
    "username",
];

/// Turns the option list into `--flag` / `--key=value` arguments; `Err(reason)` names the
/// offending entry.
pub(super) fn tool_args(v: &Value, owned: &[&str]) -> Result<Vec<String>, String> {
    let check = |name: &str| -> Result<(), String> {
        if name.is_empty() {
            Err("an option name is empty".into())
        } else if owned.contains(&name) {
            Err(format!("option {name:?} is set by the agent itself"))
        } else {
            Ok(())
        }
    };
    let pair = |k: &str, v: &Value| -> Result<String, String> {
        check(k)?;
        match v {
            Value::String(s) => Ok(format!("--{k}={s}")),
            Value::Number(n) => Ok(format!("--{k}={n}")),
            other => Err(format!(
                "option {k:?}: expected a string value, got {}",
                kind_of(other)
            )),
        }
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => map.iter().map(|(k, v)| pair(k, v)).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(flag) => {
                    check(flag)?;
                    Ok(format!("--{flag}"))
                }
                Value::Object(m) if m.len() == 1 => {
                    let (k, v) = m.iter().next().ok_or("empty option")?;
                    pair(k, v)
                }
                Value::Object(_) => {
                    Err("each mapping in the list must have exactly one key".into())
                }
                other => Err(format!(
                    "expected an option name or a one-key mapping, got {}",
                    kind_of(other)
                )),
            })
            .collect(),
        other => Err(format!(
            "expected a list of options or a mapping, got {}",
            kind_of(other)
        )),
    }
}
