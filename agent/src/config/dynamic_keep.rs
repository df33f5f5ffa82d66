//! Reading the cluster's `config` key over the configuration in force: a key whose value in
//! etcd cannot be used keeps the value it had (it does not fall back to Patroni's default,
//! which would change a running cluster's timing because of one bad write), while a key that
//! is absent takes its default as usual.

use serde_json::Value;

use super::dynamic::read;
use super::{DynamicConfig, Warning};

/// Lenient reading of `value` over `base`; the warnings say which previous values were kept.
pub(super) fn over(value: &Value, base: &DynamicConfig) -> (DynamicConfig, Vec<Warning>) {
    let (mut dc, issues) = match read(value, false) {
        Ok(r) => r,
        // invariant: lenient reading turns every problem into a warning
        Err(issue) => (DynamicConfig::default(), vec![issue]),
    };
    dc.raw = value.clone();
    let warnings = issues
        .iter()
        .map(|i| match keep(&mut dc, base, &i.key) {
            Some(kept) => {
                let reason = i.reason.split("; using ").next().unwrap_or(&i.reason);
                Warning(format!(
                    "{}: {reason}; keeping the previous value {kept}",
                    i.key
                ))
            }
            None => Warning(i.line()),
        })
        .collect();
    (dc, warnings)
}

/// Copies what `key` governs from `base`; returns the kept value for the message.
fn keep(dc: &mut DynamicConfig, base: &DynamicConfig, key: &str) -> Option<String> {
    match key {
        "(top level)" => {
            let raw = std::mem::take(&mut dc.raw);
            *dc = base.clone();
            dc.raw = raw;
            Some("(the whole configuration)".into())
        }
        "ttl" | "loop_wait" | "retry_timeout" => {
            (dc.ttl, dc.loop_wait, dc.retry_timeout) =
                (base.ttl, base.loop_wait, base.retry_timeout);
            Some(format!(
                "(ttl {}, loop_wait {}, retry_timeout {})",
                base.ttl, base.loop_wait, base.retry_timeout
            ))
        }
        "maximum_lag_on_failover" => {
            dc.maximum_lag_on_failover = base.maximum_lag_on_failover;
            Some(base.maximum_lag_on_failover.to_string())
        }
        "primary_start_timeout" | "master_start_timeout" => {
            dc.primary_start_timeout = base.primary_start_timeout;
            Some(base.primary_start_timeout.to_string())
        }
        "ignore_slots" => {
            dc.ignore_slots = base.ignore_slots.clone();
            Some(format!("({} entries)", base.ignore_slots.len()))
        }
        "member_slots_ttl" => {
            dc.member_slots_ttl = base.member_slots_ttl;
            Some(base.member_slots_ttl.to_string())
        }
        "pause" => {
            dc.pause = base.pause;
            Some(base.pause.to_string())
        }
        "failsafe_mode" => {
            dc.failsafe_mode = base.failsafe_mode;
            Some(base.failsafe_mode.to_string())
        }
        "synchronous_mode" => {
            dc.synchronous_mode = base.synchronous_mode;
            Some(base.synchronous_mode.as_str().to_string())
        }
        "synchronous_mode_strict" => {
            dc.synchronous_mode_strict = base.synchronous_mode_strict;
            Some(base.synchronous_mode_strict.to_string())
        }
        "synchronous_node_count" => {
            dc.synchronous_node_count = base.synchronous_node_count;
            Some(base.synchronous_node_count.to_string())
        }
        "maximum_lag_on_syncnode" => {
            dc.maximum_lag_on_syncnode = base.maximum_lag_on_syncnode;
            Some(
                base.maximum_lag_on_syncnode
                    .map_or("-1".into(), |v| v.to_string()),
            )
        }
        "postgresql" => {
            (dc.use_pg_rewind, dc.use_slots, dc.parameters) =
                (base.use_pg_rewind, base.use_slots, base.parameters.clone());
            Some("(postgresql settings)".into())
        }
        "postgresql.use_pg_rewind" => {
            dc.use_pg_rewind = base.use_pg_rewind;
            Some(base.use_pg_rewind.to_string())
        }
        "postgresql.use_slots" => {
            dc.use_slots = base.use_slots;
            Some(base.use_slots.to_string())
        }
        k => {
            let name = k.strip_prefix("postgresql.parameters.")?;
            let prev = base.parameters.get(name)?;
            dc.parameters.insert(name.to_string(), prev.clone());
            Some(prev.to_plain())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_bad_value_keeps_the_value_in_force_and_an_absent_one_takes_the_default() {
        let (base, _) = over(
            &json!({"ttl": 20, "loop_wait": 5, "retry_timeout": 5, "maximum_lag_on_failover": 5}),
            &DynamicConfig::default(),
        );
        assert_eq!((base.ttl, base.loop_wait), (20, 5));
        let (dc, w) = over(
            &json!({"ttl": 1, "loop_wait": 5, "retry_timeout": 5}),
            &base,
        );
        assert_eq!((dc.ttl, dc.loop_wait, dc.retry_timeout), (20, 5, 5));
        assert_eq!(dc.maximum_lag_on_failover, 1_048_576, "absent: default");
        assert!(
            w.iter()
                .any(|w| w.0.starts_with("ttl: ") && w.0.contains("keeping the previous value")),
            "{w:?}"
        );
        let (dc, _) = over(&json!("garbage"), &base);
        assert_eq!(dc.ttl, 20);
        let (dc, _) = over(
            &json!({"ttl": "x", "loop_wait": 5, "retry_timeout": 5}),
            &base,
        );
        assert_eq!(dc.ttl, 20);
    }
}
