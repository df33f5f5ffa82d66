//! From text to [`Config`]: parse the YAML into a JSON tree, merge the `PATRONI_*`
//! overrides over it, deserialize into [`RawConfig`] (collecting unknown keys as warnings and
//! naming the key of a type error), then validate.
//!
//! Invariants: nothing here touches the file system (`Config::load` reads the file, and
//! validation only checks that the data directory's parent exists). Every error names the
//! file, or `environment` when the value came from a `PATRONI_*` variable.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::ctx::Ctx;
use super::raw::RawConfig;
use super::{Config, ConfigError, Result, Warning, env, validate};

/// YAML text -> JSON tree, with PyYAML's reading of YAML 1.1 scalars (`on`/`off`/`yes`/`no`
/// are booleans, `0770` is octal) so that Patroni files mean the same here.
pub(super) fn parse_yaml(path: &Path, text: &str) -> Result<Map<String, Value>> {
    let opts = serde_saphyr::options! { legacy_octal_numbers: true, with_snippet: false };
    let value: Value =
        serde_saphyr::from_str_with_options(text, opts).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    match value {
        Value::Object(m) => Ok(m),
        // An empty file (or only comments): every required key is then reported missing.
        Value::Null => Ok(Map::new()),
        other => Err(ConfigError::Syntax {
            path: path.to_owned(),
            detail: format!(
                "the top level must be a mapping, got {}",
                super::raw::kind_of(&other)
            ),
        }),
    }
}

/// The whole pipeline behind `Config::from_yaml`.
pub(super) fn from_yaml(
    path: &Path,
    text: &str,
    environ: &BTreeMap<String, String>,
) -> Result<(Config, Vec<Warning>)> {
    let mut tree = parse_yaml(path, text)?;
    let overlay = env::overlay(environ)?;
    env::deep_merge(&mut tree, overlay.tree);
    let mut ctx = Ctx {
        path,
        env: overlay.sources,
        warnings: Vec::new(),
    };
    check_dcs_kind(&tree, &mut ctx)?;

    let mut ignored: Vec<String> = Vec::new();
    let raw: RawConfig = {
        let mut on_ignored = |p: serde_ignored::Path<'_>| ignored.push(dotted(&p));
        let de = serde_ignored::Deserializer::new(Value::Object(tree), &mut on_ignored);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ctx.invalid(&key, e.into_inner())
        })?
    };
    for key in ignored {
        let from = ctx
            .source(&key)
            .map(|v| format!(" (set by {v})"))
            .unwrap_or_default();
        let line = if DYNAMIC_TOP_LEVEL.contains(&key.as_str()) {
            format!(
                "{key}: ignored at the top level: it is a dynamic setting; put it under \
                 bootstrap.dcs or change it with hactl edit-config{from}"
            )
        } else {
            format!(
                "{}{from}",
                super::dynamic_reader::render(&key, super::dynamic_reader::UNKNOWN)
            )
        };
        ctx.warnings.push(Warning(line));
    }
    let config = validate::config(raw, &mut ctx)?;
    Ok((config, ctx.warnings))
}

/// Dynamic settings Patroni ignores at the top level of the file (they live in the DCS).
const DYNAMIC_TOP_LEVEL: &[&str] = &[
    "ttl",
    "loop_wait",
    "retry_timeout",
    "maximum_lag_on_failover",
    "primary_start_timeout",
    "master_start_timeout",
    "synchronous_mode",
    "synchronous_mode_strict",
    "failsafe_mode",
];

/// serde_ignored's path without its `?` markers for `Option`s.
fn dotted(p: &serde_ignored::Path<'_>) -> String {
    p.to_string()
        .split('.')
        .filter(|s| *s != "?")
        .collect::<Vec<_>>()
        .join(".")
}

/// Other DCS sections: without `etcd3` we cannot run at all; with it, they are ignored.
fn check_dcs_kind(tree: &Map<String, Value>, ctx: &mut Ctx<'_>) -> Result<()> {
    if tree.contains_key("citus") {
        return Err(ctx.invalid("citus", "Citus clusters are not supported"));
    }
    let others = [
        "etcd",
        "consul",
        "zookeeper",
        "exhibitor",
        "kubernetes",
        "raft",
    ];
    let present: Vec<&str> = others
        .into_iter()
        .filter(|k| tree.contains_key(*k))
        .collect();
    if tree.contains_key("etcd3") {
        for k in present {
            ctx.warn(k, "ignored: only etcd3 is used");
        }
        Ok(())
    } else if let Some(first) = present.first() {
        let hint = if *first == "etcd" {
            "; for etcd 3.x servers use an etcd3 section (the v3 API)"
        } else {
            ""
        };
        Err(ctx.invalid(first, format!("only etcd3 is supported{hint}")))
    } else {
        Ok(())
    }
}
