//! The slot settings of the dynamic configuration: `ignore_slots` and `member_slots_ttl`
//! (Patroni's formats; the rules they feed are in `ha::slots`).
//!
//! - `ignore_slots`: a list of mappings with any of `name`, `type` (`physical` or `logical`),
//!   `database`, `plugin`; an entry with none of them, an unknown attribute or a bad type is a
//!   problem naming `ignore_slots` (refused when written; found in etcd, the previous list is
//!   kept, so one bad write never lets the leader drop a slot it was told to keep).
//! - `member_slots_ttl`: seconds as a number, or a string with a unit (`30min`, `1h`, `90s`,
//!   `1d`, `500ms` rounded down to seconds), as Patroni accepts; 0 drops a member's slot as
//!   soon as its member key is gone.

use serde_json::{Map, Value};

use super::DynamicConfig;
use super::dynamic_reader::{Issue, Reader};
use super::raw::kind_of;
use crate::ha::slots::{IgnoreSlot, SlotKind};

impl Reader {
    pub(super) fn slots(
        &mut self,
        obj: &Map<String, Value>,
        dc: &mut DynamicConfig,
    ) -> Result<(), Issue> {
        if let Some(v) = obj.get("ignore_slots").filter(|v| !v.is_null()) {
            match ignore_slots(v) {
                Ok(list) => dc.ignore_slots = list,
                Err(reason) => self.problem(Issue::new("ignore_slots", reason))?,
            }
        }
        if let Some(v) = obj.get("member_slots_ttl").filter(|v| !v.is_null()) {
            match duration_secs(v) {
                Some(s) => dc.member_slots_ttl = s,
                None => self.problem(Issue::new(
                    "member_slots_ttl",
                    format!(
                        "expected seconds or a duration such as \"30min\", got {}",
                        kind_of(v)
                    ),
                ))?,
            }
        }
        Ok(())
    }
}

fn ignore_slots(v: &Value) -> Result<Vec<IgnoreSlot>, String> {
    let Value::Array(items) = v else {
        return Err(format!("expected a list of mappings, got {}", kind_of(v)));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| entry(item).map_err(|e| format!("entry {}: {e}", i + 1)))
        .collect()
}

fn entry(item: &Value) -> Result<IgnoreSlot, String> {
    let Value::Object(m) = item else {
        return Err(format!("expected a mapping, got {}", kind_of(item)));
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("{key}: expected a string, got {}", kind_of(other))),
        }
    };
    if let Some(k) = m
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "type" | "database" | "plugin"))
    {
        return Err(format!(
            "unknown attribute {k} (name, type, database, plugin)"
        ));
    }
    let kind = match text("type")?.as_deref() {
        None => None,
        Some("physical") => Some(SlotKind::Physical),
        Some("logical") => Some(SlotKind::Logical),
        Some(other) => return Err(format!("type: expected physical or logical, got {other:?}")),
    };
    let e = IgnoreSlot {
        name: text("name")?,
        kind,
        database: text("database")?,
        plugin: text("plugin")?,
    };
    if e == IgnoreSlot::default() {
        return Err("an entry needs at least one of name, type, database, plugin".into());
    }
    Ok(e)
}

/// Seconds from a number or a string with a unit (Patroni's `parse_int(value, 's')`).
fn duration_secs(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: u64 = num.parse().ok()?;
            let factor_ms: u64 = match unit.trim() {
                "" | "s" => 1000,
                "ms" => 1,
                "min" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return None,
            };
            Some(n.checked_mul(factor_ms)? / 1000)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn patroni_formats_are_read() {
        let list = ignore_slots(&json!([
            {"name": "archiver", "type": "physical"},
            {"database": "app", "plugin": "pgoutput"}
        ]))
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].kind, Some(SlotKind::Physical));
        assert_eq!(list[1].plugin.as_deref(), Some("pgoutput"));
        assert_eq!(duration_secs(&json!(600)), Some(600));
        assert_eq!(duration_secs(&json!("30min")), Some(1800));
        assert_eq!(duration_secs(&json!("1h")), Some(3600));
        assert_eq!(duration_secs(&json!("1500ms")), Some(1));
        assert_eq!(duration_secs(&json!("0")), Some(0));
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let err = |v: Value| ignore_slots(&v).unwrap_err();
        assert!(err(json!("archiver")).contains("expected a list"));
        assert!(err(json!([{}])).contains("entry 1: an entry needs"));
        assert!(err(json!([{"name": "a", "kind": "x"}])).contains("unknown attribute kind"));
        assert!(err(json!([{"type": "both"}])).contains("physical or logical"));
        assert!(err(json!([{"name": 3}])).contains("name: expected a string"));
        assert_eq!(duration_secs(&json!("30 fortnights")), None);
        assert_eq!(duration_secs(&json!(-5)), None);
        assert_eq!(duration_secs(&json!(true)), None);
    }
}
