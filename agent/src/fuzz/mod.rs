//! Fuzz targets, driven by proptest: every parser of input the agent does not control must
//! return a value or an error for any input, never panic. Targets: the YAML configuration
//! loader with its `PATRONI_*` overlay (`config.rs`), every etcd value parser and the cluster
//! built from raw keys (`records.rs`), and every REST request body and query string through the
//! real router (`api.rs`).
//!
//! Each target mixes arbitrary text (bytes, any Unicode) with structured generators that
//! produce near-valid input (the right keys with values of every type), which is where parsers
//! break. `cargo test -p ha-agent fuzz::` runs a short round of each (256 cases, or
//! `PROPTEST_CASES`); the README gives the longer command. Every input that ever failed is
//! kept as a named regression test next to its target.

mod api;
mod config;
mod records;

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Cases per target: `PROPTEST_CASES`, else `default`.
pub(crate) fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any JSON value, nested up to a few levels (also YAML: JSON is a YAML subset).
pub(crate) fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("on"),
            Just("off"),
            Just("true"),
            Just("-1"),
            Just("1e400"),
            Just("99999999999999999999"),
            Just("10.0.0.0/8"),
            Just("127.0.0.1:8008"),
            Just("postgres://h:1/x"),
            Just("2026-11-22T15:00:00+01:00"),
            Just(""),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object with some of `keys` set to arbitrary values (and maybe a stranger key).
pub(crate) fn object_with(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((prop::sample::select(keys), any_json()), 0..keys.len() + 2),
        prop::option::of(("\\PC{0,8}", any_json())),
    )
        .prop_map(|(pairs, extra)| {
            let mut m = Map::new();
            for (k, v) in pairs {
                m.insert(k.to_string(), v);
            }
            if let Some((k, v)) = extra {
                m.insert(k, v);
            }
            Value::Object(m)
        })
}
