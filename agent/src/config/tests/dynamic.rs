//! The dynamic configuration: lenient reading of what etcd holds, strict checking of what
//! is about to be written.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::config::DynamicConfig;
use crate::pg::GucValue;

/// The `config` value Patroni 4.1.5 wrote (patroni-reference/etcd-keys.txt).
fn patroni_written() -> Value {
    json!({"ttl":30,"loop_wait":10,"retry_timeout":10,"maximum_lag_on_failover":1048576,"synchronous_mode":false,
        "postgresql":{"use_pg_rewind":true,"use_slots":true,"parameters":{"wal_level":"replica","hot_standby":"on",
        "max_wal_senders":10,"max_replication_slots":10,"wal_keep_size":"256MB","shared_buffers":"64MB","max_connections":100}}})
}

#[test]
fn the_value_patroni_writes_reads_cleanly_both_ways() {
    let v = patroni_written();
    let (d, warnings) = DynamicConfig::from_json(&v);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        (
            d.ttl,
            d.loop_wait,
            d.retry_timeout,
            d.maximum_lag_on_failover
        ),
        (30, 10, 10, 1_048_576)
    );
    assert_eq!(d.primary_start_timeout, 300);
    assert!(d.use_pg_rewind && d.use_slots && !d.pause);
    assert_eq!(d.parameters.len(), 7);
    assert_eq!(d.parameters["wal_keep_size"], GucValue::Str("256MB".into()));
    assert_eq!(d.raw, v);
    assert_eq!(DynamicConfig::validate(&v), Ok(d));
}

#[test]
fn lenient_reading_replaces_a_bad_value_by_its_default_and_names_it() {
    let (d, w) =
        DynamicConfig::from_json(&json!({"ttl": "abc", "loop_wait": 5, "retry_timeout": 5,
        "maximum_lag_on_failover": -1, "pause": "perhaps"}));
    assert_eq!((d.ttl, d.loop_wait, d.retry_timeout), (30, 5, 5));
    assert_eq!(d.maximum_lag_on_failover, 1_048_576);
    assert!(!d.pause);
    let w: Vec<_> = w.into_iter().map(|w| w.0).collect();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w[0].starts_with("ttl: expected a whole number") && w[0].ends_with("; using 30"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("maximum_lag_on_failover: -1 is too small"),
        "{w:?}"
    );
    assert!(w[2].starts_with("pause: expected a boolean"), "{w:?}");
}

#[test]
fn lenient_reading_of_a_non_object_gives_defaults_and_a_warning() {
    for v in [json!(null), json!([1]), json!("ttl: 30"), json!(7)] {
        let (d, w) = DynamicConfig::from_json(&v);
        assert_eq!(
            DynamicConfig {
                raw: v.clone(),
                ..DynamicConfig::default()
            },
            d
        );
        assert_eq!(w.len(), 1, "{v}: {w:?}");
        assert!(DynamicConfig::validate(&v).is_err());
    }
}

#[test]
fn lenient_reading_falls_back_to_default_timing_when_the_rule_is_broken() {
    let (d, w) =
        DynamicConfig::from_json(&json!({"ttl": 15, "loop_wait": 10, "retry_timeout": 10}));
    assert_eq!((d.ttl, d.loop_wait, d.retry_timeout), (30, 10, 10));
    assert_eq!(w.len(), 1);
    assert!(w[0].0.starts_with("ttl: 15 is too small"), "{w:?}");
}

#[test]
fn lenient_reading_drops_only_the_bad_parameters() {
    let (d, w) = DynamicConfig::from_json(&json!({"postgresql": {"parameters": {
        "shared_buffers": "128MB", "work_mem": [1], "max_connections": 10, "wal_level": "minimal",
        "listen_addresses": "*", "hot_standby": "off", "Wal_Log_Hints": "off"}}}));
    assert_eq!(
        d.parameters.keys().collect::<Vec<_>>(),
        ["shared_buffers", "wal_log_hints"],
        "names are lower-cased"
    );
    let w: Vec<_> = w.into_iter().map(|w| w.0).collect();
    for key in [
        "work_mem",
        "max_connections",
        "wal_level",
        "listen_addresses",
        "hot_standby",
    ] {
        assert!(
            w.iter()
                .any(|l| l.starts_with(&format!("postgresql.parameters.{key}: "))),
            "{key}: {w:?}"
        );
    }
    assert_eq!(w.len(), 5, "{w:?}");
}

#[test]
fn patroni_spellings_are_accepted() {
    let (d, w) = DynamicConfig::from_json(
        &json!({"ttl": "40", "master_start_timeout": 60, "pause": "on",
        "postgresql": {"use_pg_rewind": "yes", "use_slots": "off"}}),
    );
    assert!(w.is_empty(), "{w:?}");
    assert_eq!((d.ttl, d.primary_start_timeout), (40, 60));
    assert!(d.pause && d.use_pg_rewind && !d.use_slots);
    let (d, _) =
        DynamicConfig::from_json(&json!({"primary_start_timeout": 0, "master_start_timeout": 60}));
    assert_eq!(d.primary_start_timeout, 0, "the new name wins");
}

#[test]
fn strict_validation_names_the_key_of_the_first_problem() {
    assert_eq!(
        DynamicConfig::validate(&json!({"ttl": 5})),
        Err(
            "ttl: 5 is too small: loop_wait (10) + 2 * retry_timeout (10) must not exceed ttl"
                .to_owned()
        )
    );
    let cases = [
        (json!({"ttl": 1}), "ttl: 1 is too small (minimum 2)"),
        (
            json!({"loop_wait": 0}),
            "loop_wait: 0 is too small (minimum 1)",
        ),
        (
            json!({"loop_wait": true}),
            "loop_wait: expected a whole number, got boolean true",
        ),
        (
            json!({"retry_timeout": 2.5}),
            "retry_timeout: expected a whole number, got number 2.5",
        ),
        (
            json!({"ttl": 4_000_000_000_i64}),
            "ttl: 4000000000 is too large (maximum 2147483647)",
        ),
        (
            json!({"pause": "sometimes"}),
            "pause: expected a boolean, got string \"sometimes\"",
        ),
        (
            json!({"synchronous_mode": 2}),
            "synchronous_mode: expected a boolean or \"quorum\", got number 2",
        ),
        (
            json!({"postgresql": []}),
            "postgresql: expected a mapping, got a list",
        ),
        (
            json!({"postgresql": {"use_slots": "maybe"}}),
            "postgresql.use_slots: expected a boolean, got string \"maybe\"",
        ),
        (
            json!({"postgresql": {"parameters": {"x": {"a": 1}}}}),
            "postgresql.parameters.x: expected a string, number or boolean, got a mapping",
        ),
        (
            json!({"postgresql": {"parameters": {"max_wal_senders": 2}}}),
            "postgresql.parameters.max_wal_senders: 2 is below the minimum 3",
        ),
        (
            json!({"postgresql": {"parameters": {"wal_keep_size": "8MB"}}}),
            "postgresql.parameters.wal_keep_size: 8MB is below the minimum 16MB",
        ),
    ];
    for (v, want) in cases {
        assert_eq!(DynamicConfig::validate(&v), Err(want.to_owned()), "{v}");
    }
}

#[test]
fn strict_validation_accepts_string_numbers_and_unsupported_features() {
    let d = DynamicConfig::validate(&json!({"ttl": "60", "loop_wait": 20, "retry_timeout": "20",
        "synchronous_mode": "on", "failsafe_mode": true, "unknown": 1,
        "postgresql": {"parameters": {"wal_keep_size": "1GB", "max_connections": "200"}}}))
    .expect("valid");
    assert_eq!((d.ttl, d.loop_wait, d.retry_timeout), (60, 20, 20));
    assert_eq!(d.parameters["max_connections"], GucValue::Str("200".into()));
    assert_eq!(d.synchronous_mode, crate::ha::SyncMode::On);
}

#[test]
fn synchronous_settings_are_read_and_bad_ones_refused_by_name() {
    let d = DynamicConfig::validate(&json!({"synchronous_mode": true,
        "synchronous_mode_strict": "on", "synchronous_node_count": 2,
        "maximum_lag_on_syncnode": 1000}))
    .expect("valid");
    assert_eq!(d.synchronous_mode, crate::ha::SyncMode::On);
    assert!(d.synchronous_mode_strict);
    assert_eq!(d.synchronous_node_count, 2);
    assert_eq!(d.maximum_lag_on_syncnode, Some(1000));
    let d = DynamicConfig::validate(&json!({"maximum_lag_on_syncnode": -1})).expect("valid");
    assert_eq!(d.maximum_lag_on_syncnode, None);
    let d = DynamicConfig::validate(&json!({"synchronous_mode": "off"})).expect("valid");
    assert_eq!(d.synchronous_mode, crate::ha::SyncMode::Off);
    for (v, want) in [
        (
            json!({"synchronous_mode": "sometimes"}),
            "synchronous_mode: expected a boolean or \"quorum\", got string \"sometimes\"",
        ),
        (
            json!({"synchronous_node_count": 0}),
            "synchronous_node_count: 0 is too small (minimum 1)",
        ),
        (
            json!({"synchronous_node_count": "two"}),
            "synchronous_node_count: expected a whole number, got string \"two\"",
        ),
        (
            json!({"synchronous_mode_strict": 3}),
            "synchronous_mode_strict: expected a boolean, got number 3",
        ),
        (
            json!({"maximum_lag_on_syncnode": "far"}),
            "maximum_lag_on_syncnode: expected a whole number (-1: unlimited), got string \"far\"",
        ),
    ] {
        assert_eq!(DynamicConfig::validate(&v), Err(want.to_owned()), "{v}");
    }
    // quorum, in any case, strictly and found in etcd.
    for v in ["quorum", "QUORUM"] {
        let d = DynamicConfig::validate(&json!({"synchronous_mode": v})).expect("valid");
        assert_eq!(d.synchronous_mode, crate::ha::SyncMode::Quorum);
        let (d, w) = DynamicConfig::from_json(&json!({"synchronous_mode": v}));
        assert_eq!(d.synchronous_mode, crate::ha::SyncMode::Quorum);
        assert!(w.is_empty(), "{w:?}");
    }
}

#[test]
fn defaults_are_patronis() {
    let d = DynamicConfig::default();
    assert_eq!(
        (
            d.ttl,
            d.loop_wait,
            d.retry_timeout,
            d.maximum_lag_on_failover,
            d.primary_start_timeout
        ),
        (30, 10, 10, 1_048_576, 300)
    );
    assert!(!d.use_pg_rewind && d.use_slots && !d.pause && d.parameters.is_empty());
    assert_eq!(DynamicConfig::from_json(&json!({})), (d, vec![]));
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("on".to_owned()),
            Just("30".to_owned()),
            Just("quorum".to_owned()),
            ".{0,6}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let key = prop_oneof![
            Just("ttl"),
            Just("loop_wait"),
            Just("retry_timeout"),
            Just("pause"),
            Just("postgresql"),
            Just("parameters"),
            Just("use_slots"),
            Just("synchronous_mode"),
            Just("max_connections"),
            Just("wal_keep_size"),
            Just("wal_keep_segments"),
            Just("standby_cluster"),
            Just("x"),
        ]
        .prop_map(str::to_owned);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Garbage in etcd never stops an agent: lenient reading never panics and always keeps
    /// the timing rule; a value that validates strictly reads leniently to the same result.
    #[test]
    fn lenient_reading_is_total_and_keeps_the_timing_rule(v in arb_json()) {
        let (d, _) = DynamicConfig::from_json(&v);
        prop_assert!(d.loop_wait + 2 * d.retry_timeout <= d.ttl);
        prop_assert!(d.ttl >= 2 && d.loop_wait >= 1);
        if let Ok(strict) = DynamicConfig::validate(&v) {
            prop_assert_eq!(strict, d);
        }
    }
}
