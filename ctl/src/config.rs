//! Where hactl finds the cluster: the agent's YAML (`-c`, `HACTL_CONFIG`,
//! `PATRONICTL_CONFIG_FILE`, or patronictl's default `~/.config/patroni/patronictl.yaml`),
//! and/or `--dcs-url etcd3://host:2379[,host2:2379][/namespace]` with `--scope`.
//!
//! The agent's own loader (`Config::load`, with `PATRONI_*` overrides) is tried first. A file
//! it rejects (a patronictl-only file has no `postgresql` section, or names a data directory
//! that does not exist on this machine) is read leniently instead: only `scope`, `namespace`,
//! `etcd3`, `restapi.authentication` and `ctl` matter to hactl. Nothing here connects to
//! anything.
//!
//! This file resolves the settings; `config/etcd.rs` reads where etcd is (a file's `etcd3`
//! section leniently, and `--dcs-url`).

mod etcd;

use std::path::{Path, PathBuf};

use anyhow::Context;
use ha_agent::config::Config;
use ha_agent::dcs::EtcdSettings;
use serde_json::Value;

use crate::error::usage;
use etcd::{etcd3, parse_dcs_url};

/// The command line's view of where the cluster is (global options).
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// `-c/--config-file`.
    pub config_file: Option<PathBuf>,
    /// `--dcs-url`.
    pub dcs_url: Option<String>,
    /// `--scope`.
    pub scope: Option<String>,
    /// `--username` for the REST API.
    pub username: Option<String>,
    /// `--password` for the REST API.
    pub password: Option<String>,
    /// `-k/--insecure`: do not verify the REST API's certificate.
    pub insecure: bool,
}

/// Everything hactl needs to reach one cluster.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Cluster name, if known (a positional CLUSTER argument may give it instead).
    pub scope: Option<String>,
    /// Key namespace (`/service/`).
    pub namespace: String,
    /// etcd endpoints and credentials.
    pub etcd: EtcdSettings,
    /// Basic auth for the REST API's mutating endpoints.
    pub api_auth: Option<(String, String)>,
    /// CA bundle for an https REST API (`ctl.cacert` or `restapi.cafile`).
    pub api_cacert: Option<PathBuf>,
    /// Skip certificate verification of the REST API (with a client certificate: the chain
    /// is still checked, only the host name is not, as patronictl does).
    pub insecure: bool,
    /// Client certificate and key for the REST API (`ctl.certfile`, `ctl.keyfile`), for an
    /// API running `verify_client: optional|required`.
    pub api_identity: Option<(PathBuf, PathBuf)>,
    /// `ctl.keyfile_password`: passphrase of an encrypted `ctl.keyfile`.
    pub api_key_password: Option<ha_agent::keyfile::Secret>,
}

impl Settings {
    /// The cluster name: `explicit` (a positional argument) or the configured scope.
    pub fn scope(&self, explicit: Option<&str>) -> anyhow::Result<String> {
        explicit
            .map(str::to_string)
            .or_else(|| self.scope.clone())
            .ok_or_else(|| {
                usage("no cluster name: give it as an argument, with --scope, or in the config file's scope")
            })
    }
}

/// patronictl's default configuration file.
fn default_config_file() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let p = Path::new(&home).join(".config/patroni/patronictl.yaml");
    p.exists().then_some(p)
}

/// Resolves `src` (plus the environment) into settings.
pub fn resolve(src: &Source) -> anyhow::Result<Settings> {
    let path = src
        .config_file
        .clone()
        .or_else(|| std::env::var_os("PATRONICTL_CONFIG_FILE").map(PathBuf::from))
        .or_else(default_config_file);
    let dcs_url = src
        .dcs_url
        .clone()
        .or_else(|| std::env::var("DCS_URL").ok().filter(|s| !s.is_empty()));
    let mut settings = match (&path, &dcs_url) {
        (Some(p), _) => from_file(p, dcs_url.is_some())?,
        (None, Some(_)) => Settings {
            scope: None,
            namespace: "/service/".into(),
            etcd: EtcdSettings::default(),
            api_auth: None,
            api_cacert: None,
            insecure: false,
            api_identity: None,
            api_key_password: None,
        },
        (None, None) => {
            return Err(usage(
                "no configuration: pass -c <agent yml> (or set HACTL_CONFIG), or --dcs-url etcd3://host:2379 with --scope NAME",
            ));
        }
    };
    if let Some(url) = &dcs_url {
        let (endpoints, namespace) = parse_dcs_url(url)?;
        settings.etcd = EtcdSettings {
            endpoints,
            ..settings.etcd
        };
        if let Some(ns) = namespace {
            settings.namespace = ns;
        }
    }
    if let Some(s) = &src.scope {
        settings.scope = Some(s.clone());
    }
    if let Some(u) = &src.username {
        settings.api_auth = Some((u.clone(), src.password.clone().unwrap_or_default()));
    } else if let (Some(p), Some((u, _))) = (&src.password, &settings.api_auth) {
        settings.api_auth = Some((u.clone(), p.clone()));
    }
    settings.insecure |= src.insecure;
    Ok(settings)
}

/// Reads a configuration file: the agent's loader first, then leniently.
fn from_file(path: &Path, have_dcs_url: bool) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read {}: {e}: check the -c/--config-file parameter",
            path.display()
        ))
    })?;
    let tree = parse_yaml(&text)
        .with_context(|| format!("{}: invalid YAML", path.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
    let ctl = tree.get("ctl");
    let ctl_auth = ctl.and_then(|c| c.get("authentication")).and_then(auth_of);
    let api_cacert = ctl
        .and_then(|c| c.get("cacert"))
        .or_else(|| tree.get("restapi").and_then(|r| r.get("cafile")))
        .and_then(Value::as_str)
        .map(PathBuf::from);
    let insecure = ctl
        .and_then(|c| c.get("insecure"))
        .and_then(|v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => Some(matches!(
                s.to_ascii_lowercase().as_str(),
                "on" | "true" | "yes" | "1"
            )),
            _ => None,
        })
        .unwrap_or(false);
    let ctl_file = |k: &str| {
        ctl.and_then(|c| c.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    let api_key_password = ctl
        .and_then(|c| c.get("keyfile_password"))
        .and_then(scalar_string)
        .map(ha_agent::keyfile::Secret::new);
    let api_identity = ctl_file("certfile").map(|c| {
        let k = ctl_file("keyfile").unwrap_or_else(|| c.clone());
        (c, k)
    });
    match Config::load(path) {
        Ok((cfg, _warnings)) => Ok(Settings {
            scope: Some(cfg.scope.clone()),
            namespace: cfg.namespace.clone(),
            etcd: cfg.etcd.clone(),
            api_auth: ctl_auth.or_else(|| {
                cfg.restapi
                    .authentication
                    .as_ref()
                    .map(|c| (c.username.clone(), c.password.clone().unwrap_or_default()))
            }),
            api_cacert,
            insecure,
            api_identity,
            api_key_password,
        }),
        Err(agent_err) => {
            let etcd = match tree.get("etcd3") {
                Some(e) => {
                    etcd3(e).map_err(|why| usage(format!("{}: etcd3: {why}", path.display())))?
                }
                None if have_dcs_url => EtcdSettings::default(),
                None => {
                    return Err(usage(format!(
                        "{agent_err}; hactl needs at least scope and an etcd3 section (or --dcs-url)"
                    )));
                }
            };
            let api_auth = ctl_auth.or_else(|| {
                tree.get("restapi")
                    .and_then(|r| r.get("authentication"))
                    .and_then(auth_of)
            });
            Ok(Settings {
                scope: tree.get("scope").and_then(scalar_string),
                namespace: tree
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("/service/")
                    .to_string(),
                etcd,
                api_auth,
                api_cacert,
                insecure,
                api_identity,
                api_key_password,
            })
        }
    }
}

/// YAML text into a JSON tree, reading YAML 1.1 scalars as PyYAML does.
pub fn parse_yaml(text: &str) -> anyhow::Result<Value> {
    let opts = serde_saphyr::options! { legacy_octal_numbers: true, with_snippet: false };
    let v: Value = serde_saphyr::from_str_with_options(text, opts)?;
    Ok(v)
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn auth_of(v: &Value) -> Option<(String, String)> {
    let user = v.get("username").and_then(scalar_string)?;
    let pass = v
        .get("password")
        .and_then(scalar_string)
        .unwrap_or_default();
    Some((user, pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patronictl_only_file_is_read_leniently() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctl.yml");
        std::fs::write(
            &p,
            "scope: demo\nnamespace: /ns/\netcd3:\n  host: 127.0.0.1:2379\nctl:\n  authentication:\n    username: admin\n    password: secret\n",
        )
        .unwrap();
        let s = from_file(&p, false).unwrap();
        assert_eq!(s.scope.as_deref(), Some("demo"));
        assert_eq!(s.namespace, "/ns/");
        assert_eq!(s.etcd.endpoints, ["http://127.0.0.1:2379"]);
        assert_eq!(s.api_auth, Some(("admin".into(), "secret".into())));
    }
}
