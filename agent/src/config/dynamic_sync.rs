//! The synchronous replication settings of the dynamic configuration: `synchronous_mode`,
//! `synchronous_mode_strict`, `synchronous_node_count`, `maximum_lag_on_syncnode`.
//!
//! `synchronous_mode: quorum` is not implemented. Strictly (`PATCH /config`, `hactl
//! edit-config`, `bootstrap.dcs`) it is refused by name. Found in etcd (written by hand or by
//! another tool) it is read as `synchronous_mode: on` with a warning: the safe reading, since
//! `FIRST n` with failover only to a named standby never loses a commit quorum mode would keep.

use serde_json::{Map, Value};

use super::DynamicConfig;
use super::dynamic::{Issue, Reader};
use super::raw::{bool_of, int_of, kind_of};
use crate::ha::SyncMode;

/// Why `synchronous_mode: quorum` is refused.
pub(super) const QUORUM_REFUSED: &str =
    "quorum is not supported by hapg yet; use true (FIRST n synchronous standbys) or false";

impl Reader {
    pub(super) fn synchronous(
        &mut self,
        obj: &Map<String, Value>,
        dc: &mut DynamicConfig,
    ) -> Result<(), Issue> {
        match obj.get("synchronous_mode") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.eq_ignore_ascii_case("quorum") => {
                if self.strict {
                    return Err(Issue::new("synchronous_mode", QUORUM_REFUSED));
                }
                self.note(
                    "synchronous_mode",
                    "quorum is not supported; running synchronous_mode: true (FIRST n) instead",
                );
                dc.synchronous_mode = SyncMode::On;
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
