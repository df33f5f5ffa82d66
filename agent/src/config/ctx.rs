//! `Ctx`: where errors and warnings go while one file is validated, naming the file, or the
//! `PATRONI_*` variable that set the key.
//!
//! Its own module so that loading (`load.rs`) and the section validators (`validate.rs`,
//! `etcd3.rs`, ...) both depend on it, and validation does not depend on loading.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;

use super::{ConfigError, Warning};

/// Where errors and warnings go while one file is validated.
pub(super) struct Ctx<'a> {
    /// The file.
    pub path: &'a Path,
    /// Dotted key -> the `PATRONI_*` variable that set it.
    pub env: BTreeMap<String, String>,
    /// Collected warnings.
    pub warnings: Vec<Warning>,
}

impl Ctx<'_> {
    /// The variable that set `key` or one of its parents.
    pub(super) fn source(&self, key: &str) -> Option<&str> {
        self.env.iter().find_map(|(k, var)| {
            let hit = key == k || key.starts_with(&format!("{k}."));
            hit.then_some(var.as_str())
        })
    }

    /// An error about `key`.
    pub fn invalid(&self, key: &str, reason: impl Display) -> ConfigError {
        match self.source(key) {
            Some(var) => ConfigError::Invalid {
                path: "environment".into(),
                key: key.to_owned(),
                reason: format!("{reason} (set by {var})"),
            },
            None => ConfigError::Invalid {
                path: self.path.to_owned(),
                key: key.to_owned(),
                reason: reason.to_string(),
            },
        }
    }

    /// A warning about `key`.
    pub fn warn(&mut self, key: &str, msg: impl Display) {
        let from = self
            .source(key)
            .map(|v| format!(" (set by {v})"))
            .unwrap_or_default();
        let line = super::dynamic_reader::render(key, &msg.to_string());
        self.warnings.push(Warning(format!("{line}{from}")));
    }
}
