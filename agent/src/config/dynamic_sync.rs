//! The synchronous replication settings of the dynamic configuration: `synchronous_mode`,
//! `synchronous_mode_strict`, `synchronous_node_count`, `maximum_lag_on_syncnode`.
//!
//! `synchronous_mode` is a boolean (Patroni's spellings: `true`, `on`, `yes`, ...) or
//! `quorum` (any case). Anything else is refused by name when validated strictly (`PATCH
//! /config`, `hactl edit-config`, `bootstrap.dcs`) and read as `false` with a warning when
//! found in etcd.

use serde_json::{Map, Value};

use super::DynamicConfig;
use super::dynamic_reader::{Issue, Reader};
use super::raw::{bool_of, int_of, kind_of};
use crate::ha::SyncMode;

impl Reader {
    pub(super) fn synchronous(
        &mut self,
        obj: &Map<String, Value>,
        dc: &mut DynamicConfig,
    ) -> Result<(), Issue> {
        match obj.get("synchronous_mode") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.eq_ignore_ascii_case("quorum") => {
                dc.synchronous_mode = SyncMode::Quorum;
            }
            Some(v) => match bool_of(v) {
                Some(true) => dc.synchronous_mode = SyncMode::On,
                Some(false) => dc.synchronous_mode = SyncMode::Off,
                None => self.problem(Issue::new(
                    "synchronous_mode",
                    format!(
                        "expected a boolean or \"quorum\", got {}{}",
                        kind_of(v),
                        if self.strict { "" } else { "; using false" }
                    ),
                ))?,
            },
        }
        dc.synchronous_mode_strict = self.bool(
            obj,
            "synchronous_mode_strict",
            "synchronous_mode_strict",
            dc.synchronous_mode_strict,
        )?;
        dc.synchronous_node_count = self.int(
            obj,
            "synchronous_node_count",
            1,
            1024,
            dc.synchronous_node_count,
        )?;
        match obj.get("maximum_lag_on_syncnode") {
            None | Some(Value::Null) => {}
            Some(v) => match int_of(v) {
                // Patroni: 0 or below disables the check.
                Some(i) if i <= 0 => dc.maximum_lag_on_syncnode = None,
                Some(i) => dc.maximum_lag_on_syncnode = u64::try_from(i).ok(),
                None => self.problem(Issue::new(
                    "maximum_lag_on_syncnode",
                    format!(
                        "expected a whole number (-1: unlimited), got {}{}",
                        kind_of(v),
                        if self.strict { "" } else { "; using -1" }
                    ),
                ))?,
            },
        }
        Ok(())
    }
}
