//! The `postgresql` section of the dynamic configuration: `use_pg_rewind`, `use_slots` and
//! `parameters` (each parameter read on its own, so that leniently a bad value only loses
//! itself; agent-owned ones are ignored).

use serde_json::{Map, Value};

use super::DynamicConfig;
use super::dynamic_reader::{Issue, Reader, UNKNOWN, ignored, is_set};
use super::params::{AGENT_OWNED, check_dcs_value, read_map};
use super::raw::kind_of;

/// `postgresql.*` keys Patroni knows and we accept without acting on them.
const QUIET_PG_KEYS: &[&str] = &[
    "pg_hba",
    "remove_data_directory_on_rewind_failure",
    "remove_data_directory_on_diverged_timelines",
    "pg_ctl_timeout",
    "use_unix_socket",
    "use_unix_socket_repl",
];

impl Reader {
    pub(super) fn postgresql(
        &mut self,
        pg: &Map<String, Value>,
        dc: &mut DynamicConfig,
    ) -> Result<(), Issue> {
        dc.use_pg_rewind = self.bool(
            pg,
            "use_pg_rewind",
            "postgresql.use_pg_rewind",
            dc.use_pg_rewind,
        )?;
        dc.use_slots = self.bool(pg, "use_slots", "postgresql.use_slots", dc.use_slots)?;
        for key in ["pg_ident", "recovery_conf"] {
            if is_set(pg.get(key)) {
                self.note(&format!("postgresql.{key}"), "not supported yet");
            }
        }
        for key in pg.keys() {
            let known = matches!(
                key.as_str(),
                "use_pg_rewind" | "use_slots" | "parameters" | "pg_ident" | "recovery_conf"
            ) || QUIET_PG_KEYS.contains(&key.as_str());
            if !known {
                self.note(&format!("postgresql.{key}"), UNKNOWN);
            }
        }
        match pg.get("parameters") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Object(params)) => self.parameters(params, dc),
            Some(other) => self.problem(Issue::new(
                "postgresql.parameters",
                format!("expected a mapping, got {}", kind_of(other)),
            )),
        }
    }

    fn parameters(
        &mut self,
        params: &Map<String, Value>,
        dc: &mut DynamicConfig,
    ) -> Result<(), Issue> {
        // Read one at a time so that, leniently, one bad value only loses itself.
        for (name, v) in params {
            let key = format!("postgresql.parameters.{name}");
            let single: Map<String, Value> = [(name.clone(), v.clone())].into_iter().collect();
            let g = match read_map(&single) {
                Ok(mut m) => m.pop_first().map(|(_, g)| g),
                Err((_, reason)) => {
                    self.problem(Issue::new(&key, ignored(self.strict, reason)))?;
                    None
                }
            };
            let Some(g) = g else { continue };
            let lname = name.to_lowercase();
            if AGENT_OWNED.contains(&lname.as_str()) {
                self.note(&key, "ignored: the agent sets this itself");
                continue;
            }
            if let Err(reason) = check_dcs_value(&lname, &g) {
                self.problem(Issue::new(&key, ignored(self.strict, reason)))?;
                continue;
            }
            if dc.parameters.insert(lname, g).is_some() {
                self.problem(Issue::new(
                    &key,
                    "set twice (parameter names are case-insensitive)",
                ))?;
            }
        }
        Ok(())
    }
}
