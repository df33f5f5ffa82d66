//! The `tags` and `log` sections: small, member-local settings.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ctx::Ctx;
use super::raw::{RawLog, bool_of, int_of, kind_of};
use super::{LogConfig, Result, Tags};

/// Validates `tags` (booleans and `failover_priority` read like Patroni).
pub(super) fn tags(raw: BTreeMap<String, Value>, ctx: &mut Ctx<'_>) -> Result<Tags> {
    let flag = |ctx: &Ctx<'_>, name: &str| -> Result<Option<bool>> {
        match raw.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => bool_of(v).map(Some).ok_or_else(|| {
                ctx.invalid(
                    &format!("tags.{name}"),
                    format!("expected a boolean, got {}", kind_of(v)),
                )
            }),
        }
    };
    let nofailover = flag(ctx, "nofailover")?;
    let priority = match raw.get("failover_priority") {
        None | Some(Value::Null) => None,
        Some(v) => match int_of(v) {
            Some(p) if p >= 0 => Some(p),
            _ => {
                return Err(ctx.invalid(
                    "tags.failover_priority",
                    format!("expected an integer >= 0, got {}", kind_of(v)),
                ));
            }
        },
    };
    // Patroni: an explicit nofailover wins over failover_priority; without it, priority 0
    // means nofailover.
    match (nofailover, priority) {
        (Some(true), Some(p)) if p > 0 => ctx.warn(
            "tags.failover_priority",
            format!("{p} conflicts with nofailover: true; nofailover wins"),
        ),
        (Some(false), Some(0)) => ctx.warn(
            "tags.failover_priority",
            "0 conflicts with nofailover: false; nofailover wins",
        ),
        _ => {}
    }
    let nofailover = nofailover.unwrap_or(priority == Some(0));
    for (name, what) in [
        ("replicatefrom", "cascading replication"),
        ("nostream", "replicas without streaming"),
    ] {
        if raw.contains_key(name) {
            ctx.warn(
                &format!("tags.{name}"),
                format!("not supported yet ({what}); this member streams from the leader"),
            );
        }
    }
    let tags = Tags {
        nofailover,
        failover_priority: if nofailover { 0 } else { priority.unwrap_or(1) },
        noloadbalance: flag(ctx, "noloadbalance")?.unwrap_or(false),
        clonefrom: flag(ctx, "clonefrom")?.unwrap_or(false),
        nosync: flag(ctx, "nosync")?.unwrap_or(false),
        raw: BTreeMap::new(),
    };
    if tags.clonefrom {
        // Published (other tools read it), but new replicas still copy from the leader.
        ctx.warn(
            "tags.clonefrom",
            "not supported yet (cloning from a tagged member); replicas clone from the leader",
        );
    }
    // Published like Patroni's member record: the boolean tags only when they are on.
    let raw = raw
        .into_iter()
        .filter(|(k, v)| {
            !matches!(
                k.as_str(),
                "nofailover" | "noloadbalance" | "clonefrom" | "nosync"
            ) || bool_of(v) == Some(true)
        })
        .collect();
    Ok(Tags { raw, ..tags })
}

/// Validates `log`: the level as a tracing directive, JSON or text output.
pub(super) fn log(raw: RawLog, ctx: &mut Ctx<'_>) -> Result<LogConfig> {
    let level = match raw.level.as_deref() {
        None => None,
        Some(l) => Some(
            match l.to_ascii_uppercase().as_str() {
                "DEBUG" => "debug",
                "INFO" => "info",
                "WARNING" | "WARN" => "warn",
                "ERROR" | "CRITICAL" | "FATAL" => "error",
                _ => {
                    return Err(ctx.invalid(
                        "log.level",
                        format!("{l:?} is not DEBUG, INFO, WARNING, ERROR or CRITICAL"),
                    ));
                }
            }
            .to_owned(),
        ),
    };
    let json = match raw.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("plain") => matches!(&raw.format, Some(Value::String(f)) if f == "json"),
        Some("json") => true,
        Some(other) => {
            return Err(ctx.invalid("log.type", format!("{other:?} is not plain or json")));
        }
    };
    if raw.dir.is_some() {
        ctx.warn("log.dir", "not supported yet; the agent logs to stderr");
    }
    Ok(LogConfig { level, json })
}
