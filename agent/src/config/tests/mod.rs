//! Tests of the configuration module: loading Patroni files, environment overrides, each
//! validation rule, the dynamic configuration, and parameter merging. No processes; real
//! paths come from temporary directories.

mod backup;
mod dynamic;
mod env;
mod load;
mod merge;
mod rules;
mod rules_pg;
mod security;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Config, ConfigError, Warning};

/// The file name every test "loads".
pub(super) const FILE: &str = "/etc/hapg/node1.yml";

/// A temporary directory that holds the data directory's parent.
pub(super) struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// `<tmp>/main`: its parent exists.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("main")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A small valid configuration as JSON (YAML's subset), to be changed by a test.
    pub fn minimal(&self) -> Value {
        json!({
            "scope": "demo",
            "name": "node1",
            "restapi": {"listen": "127.0.0.1:8008"},
            "etcd3": {"hosts": "127.0.0.1:2379"},
            "postgresql": {
                "listen": "127.0.0.1:5432",
                "data_dir": self.data_dir(),
                "authentication": {"replication": {"username": "replicator", "password": "rep-pass"}}
            }
        })
    }
}

/// Loads YAML text without environment variables.
pub(super) fn load(text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
    Config::from_yaml(Path::new(FILE), text, &BTreeMap::new())
}

/// Loads YAML text with the given environment.
pub(super) fn load_env(
    text: &str,
    env: &[(&str, &str)],
) -> Result<(Config, Vec<Warning>), ConfigError> {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_yaml(Path::new(FILE), text, &env)
}

/// Loads a JSON value as the file's text.
pub(super) fn load_value(v: &Value) -> Result<(Config, Vec<Warning>), ConfigError> {
    load(&serde_json::to_string_pretty(v).expect("json"))
}

/// The config of a value that must load.
pub(super) fn ok(v: &Value) -> (Config, Vec<Warning>) {
    match load_value(v) {
        Ok(c) => c,
        Err(e) => panic!("expected the config to load, got: {e}"),
    }
}

/// The one-line error of a value that must not load; asserts it names `FILE` and `key`.
pub(super) fn rejected(v: &Value, key: &str) -> String {
    rejected_text(&serde_json::to_string_pretty(v).expect("json"), key)
}

/// As [`rejected`], for YAML text.
pub(super) fn rejected_text(text: &str, key: &str) -> String {
    let err = match load(text) {
        Ok(_) => panic!("expected an error about {key}, but the config loaded"),
        Err(e) => e,
    };
    let line = err.to_string();
    assert!(
        matches!(&err, ConfigError::Invalid { key: k, path, .. } if k == key && path == Path::new(FILE)),
        "expected an error about {key} in {FILE}, got: {line}"
    );
    assert!(
        line.starts_with(&format!("{FILE}: {key}: ")),
        "display: {line}"
    );
    assert!(!line.contains('\n'), "one line: {line}");
    line
}

/// The warning lines, for `contains` checks.
pub(super) fn lines(w: &[Warning]) -> Vec<String> {
    w.iter().map(|w| w.0.clone()).collect()
}

/// Sets `v[path...] = new` (creating objects on the way).
pub(super) fn set(v: &mut Value, path: &str, new: Value) {
    let mut node = v;
    for part in path.split('.') {
        node = &mut node[part];
    }
    *node = new;
}

/// Removes `v[path]`.
pub(super) fn remove(v: &mut Value, path: &str) {
    let (parent, last) = path.rsplit_once('.').map_or(("", path), |(p, l)| (p, l));
    let mut node = v;
    if !parent.is_empty() {
        for part in parent.split('.') {
            node = &mut node[part];
        }
    }
    node.as_object_mut().expect("object").remove(last);
}
