//! `hactl edit-config`: change the cluster's dynamic configuration as patronictl does:
//! `-s key=value` (dotted keys nest; values are YAML scalars, so `5` is a number and `true`
//! a boolean; an empty value deletes), `-p name=value` for `postgresql.parameters`,
//! `--apply FILE|-` (merged), `--replace FILE|-`, or `$EDITOR` on the YAML. Shows a unified
//! diff, then, unlike patronictl, validates the result with the agent's own rules (a `ttl`
//! breaking `loop_wait + 2 * retry_timeout <= ttl` is refused and nothing is written), asks
//! (unless `--force`), and writes with a compare-and-set on the key's revision, so a change
//! made by someone else meanwhile is never overwritten.

use std::io::{IsTerminal, Read};

use ha_agent::api::control::merge_patch;
use ha_agent::config::DynamicConfig;
use ha_agent::dcs::{CasOutcome, Dcs};
use serde_json::{Map, Value};

use crate::cmd::{Ctx, say};
use crate::config::parse_yaml;
use crate::error::{failed, usage};
use crate::prompt;
use crate::yaml;

/// `edit-config` options (patronictl's).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cluster name (default: the configured one).
    pub cluster_name: Option<String>,
    /// Do not show the changes.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set a value: KEY=VALUE (dotted keys nest; an empty VALUE deletes the key).
    #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Set a PostgreSQL parameter: NAME=VALUE (postgresql.parameters.NAME).
    #[arg(short = 'p', long = "pg", value_name = "NAME=VALUE")]
    pub pg: Vec<String>,
    /// Merge the YAML in FILE (- for stdin) into the configuration.
    #[arg(long, value_name = "FILE")]
    pub apply: Option<String>,
    /// Replace the configuration with the YAML in FILE (- for stdin).
    #[arg(long, value_name = "FILE")]
    pub replace: Option<String>,
    /// Apply without asking.
    #[arg(long)]
    pub force: bool,
}

/// A `-s` value read as YAML (PyYAML's `safe_load`: `5` → 5, `on` → true, empty → null).
pub fn yaml_value(text: &str) -> anyhow::Result<Value> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    parse_yaml(text).map_err(|e| usage(format!("{text:?} is not a YAML value: {e:#}")))
}

/// Applies `KEY=VALUE` pairs as patronictl's `apply_config_changes`: dotted keys nest (below
/// `postgresql.parameters` the rest of the key is one parameter name, dots included), a null
/// value deletes, and mappings left empty are removed.
pub fn apply_pairs(data: &mut Value, pairs: &[String]) -> anyhow::Result<()> {
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(usage(format!(
                "Invalid parameter setting {pair}: expected KEY=VALUE"
            )));
        };
        let path: Vec<&str> = key.trim().split('.').collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(usage(format!(
                "Invalid parameter setting {pair}: empty key"
            )));
        }
        if !data.is_object() {
            *data = Value::Object(Map::new());
        }
        if let Value::Object(m) = data {
            set_path(m, &path, yaml_value(value)?, &[]);
        }
    }
    Ok(())
}

fn set_path(config: &mut Map<String, Value>, path: &[&str], value: Value, prefix: &[&str]) {
    let joined;
    let path: Vec<&str> = if prefix == ["postgresql", "parameters"] {
        joined = path.join(".");
        vec![joined.as_str()]
    } else {
        path.to_vec()
    };
    let Some((key, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        if value.is_null() {
            config.remove(*key);
        } else {
            config.insert(key.to_string(), value);
        }
        return;
    }
    let entry = config
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    let mut prefix = prefix.to_vec();
    prefix.push(key);
    if let Value::Object(inner) = entry {
        set_path(inner, rest, value, &prefix);
        if inner.is_empty() {
            config.remove(*key);
        }
    }
}

/// Reads YAML from FILE or stdin (`-`); the top level must be a mapping.
fn read_yaml_source(name: &str) -> anyhow::Result<Value> {
    let text = if name == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(name).map_err(|e| usage(format!("cannot read {name}: {e}")))?
    };
    let v = parse_yaml(&text).map_err(|e| usage(format!("{name}: invalid YAML: {e:#}")))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(usage(format!(
            "{name}: the configuration must be a YAML mapping"
        )))
    }
}

/// The unified diff patronictl shows (plain, without a pager).
pub fn diff(before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header("", "")
        .to_string()
}

fn editor(before: &str, cluster: &str) -> anyhow::Result<(String, Value)> {
    if !std::io::stdin().is_terminal() {
        return Err(usage(
            "edit-config opens an editor, but stdin is not a terminal: use -s/-p, --apply or --replace",
        ));
    }
    let cmd = std::env::var("EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| {
            ["editor", "vi"]
                .into_iter()
                .find(|e| which(e))
                .map(str::to_string)
        })
        .ok_or_else(|| {
            usage("EDITOR environment variable is not set. editor or vi are not available")
        })?;
    let file = tempfile::Builder::new()
        .prefix(&format!("{}-config-", cluster.replace('/', "_")))
        .suffix(".yaml")
        .tempfile()?;
    std::fs::write(file.path(), before)?;
    let mut parts = cmd.split_whitespace();
    let program = parts.next().unwrap_or("vi");
    let status = std::process::Command::new(program)
        .args(parts)
        .arg(file.path())
        .status()
        .map_err(|e| failed(format!("cannot run the editor {program}: {e}")))?;
    if !status.success() {
        return Err(failed(format!("Editor exited with {status}")));
    }
    let after = std::fs::read_to_string(file.path())?;
    let value = parse_yaml(&after)
        .map_err(|e| failed(format!("the edited text is not valid YAML: {e:#}")))?;
    Ok((after, value))
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// Runs `hactl edit-config`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    if a.apply.as_deref() == Some("-") && a.replace.as_deref() == Some("-") {
        return Err(usage("--apply - and --replace - cannot both read stdin"));
    }
    let o = ctx.open(a.cluster_name.as_deref()).await?;
    let scope = o.dcs.scope.clone();
    let c = o.dcs.cluster().await?;
    let Some(current) = c.config.clone() else {
        return Err(failed(format!(
            "The config key does not exist in the cluster {scope}"
        )));
    };
    let before = yaml::dump(&current.value);
    let mut changed = current.value.clone();
    let mut after: Option<String> = None;
    if let Some(f) = &a.replace {
        changed = read_yaml_source(f)?;
        after = Some(yaml::dump(&changed));
    }
    if let Some(f) = &a.apply {
        let patch = read_yaml_source(f)?;
        merge_patch(&mut changed, &patch);
        after = Some(yaml::dump(&changed));
    }
    if !a.set.is_empty() || !a.pg.is_empty() {
        let pairs: Vec<String> = a
            .set
            .iter()
            .cloned()
            .chain(
                a.pg.iter()
                    .map(|p| format!("postgresql.parameters.{}", p.trim_start())),
            )
            .collect();
        apply_pairs(&mut changed, &pairs)?;
        after = Some(yaml::dump(&changed));
    }
    let after = match after {
        Some(t) => t,
        None => {
            let (text, value) = editor(&before, &scope)?;
            changed = value;
            text
        }
    };
    if changed == current.value {
        if !a.quiet {
            say("Not changed");
        }
        return Ok(());
    }
    if !a.quiet {
        print!("{}", diff(&before, &after));
    }
    DynamicConfig::validate(&changed)
        .map_err(|why| failed(format!("invalid configuration, nothing was written: {why}")))?;
    let from_stdin = a.apply.as_deref() == Some("-") || a.replace.as_deref() == Some("-");
    if !a.force {
        if from_stdin {
            return Err(usage(
                "Use --force option to apply changes (the new configuration came from stdin)",
            ));
        }
        prompt::require_terminal("hactl edit-config without --force")?;
        if !prompt::confirm("Apply these changes?")? {
            return Ok(());
        }
    }
    match o.dcs.dcs.write_config(&changed, current.revision).await {
        Ok(CasOutcome::Applied) => {
            say("Configuration changed");
            Ok(())
        }
        Ok(CasOutcome::Lost) => Err(failed(
            "Config modification aborted due to concurrent changes: someone changed the configuration after it was read; run edit-config again",
        )),
        Err(e) => Err(failed(format!("writing the config key failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(v: &mut Value, pairs: &[&str]) {
        let pairs: Vec<String> = pairs.iter().map(|s| s.to_string()).collect();
        apply_pairs(v, &pairs).unwrap();
    }

    #[test]
    fn set_pairs_are_yaml_scalars_and_nest() {
        let mut v = json!({"ttl": 30, "postgresql": {"use_slots": true}});
        apply(
            &mut v,
            &[
                "loop_wait=5",
                "pause=true",
                "postgresql.use_slots=false",
                "postgresql.parameters.max_connections=200",
                "postgresql.parameters.auto_explain.log_min_duration=1s",
                "synchronous_mode=on",
                "name=x y",
                "ttl=",
            ],
        );
        assert_eq!(
            v,
            json!({
                "loop_wait": 5,
                "pause": true,
                "synchronous_mode": true,
                "name": "x y",
                "postgresql": {"use_slots": false, "parameters": {
                    "max_connections": 200, "auto_explain.log_min_duration": "1s"}}
            })
        );
    }

    #[test]
    fn deleting_the_last_key_removes_the_empty_mapping() {
        let mut v = json!({"postgresql": {"parameters": {"a": 1}}, "x": 1});
        apply(&mut v, &["postgresql.parameters.a="]);
        assert_eq!(v, json!({"x": 1}));
    }

    #[test]
    fn bad_pairs_are_usage_errors() {
        let mut v = json!({});
        let e = apply_pairs(&mut v, &["novalue".to_string()]).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
        assert!(apply_pairs(&mut v, &["a..b=1".to_string()]).is_err());
    }

    #[test]
    fn diff_is_unified() {
        let d = diff("a: 1\nb: 2\n", "a: 1\nb: 3\n");
        assert!(d.contains("-b: 2\n+b: 3\n"), "{d}");
        assert!(d.starts_with("--- \n+++ \n@@"), "{d}");
    }
}
