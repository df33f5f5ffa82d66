//! `LocalPostgres`'s physical replication slots: one per other member on a primary, named
//! as Patroni names them (`slot_name`).
//!
//! Invariants: slot changes run only on a primary, active slots are never dropped, and an
//! unchanged set of slots costs one query.

use std::collections::{BTreeMap, BTreeSet};

use super::local::LocalPostgres;
use super::query::{Failure, quote_literal};
use super::replication::SHORT;
use super::{PgError, Result};
use crate::ha::MemberName;
use crate::ha::slots::{IgnoreSlot, SlotInfo, SlotKind, ignored};

/// The replication slot name Patroni uses for member `name`: lower case, every character
/// outside `[a-z0-9_]` replaced by `_`, at most 63 bytes.
pub fn slot_name(name: &str) -> String {
    let mut s: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(63);
    s
}

/// What to change so that the physical slots are exactly `want`: (create, drop). Active
/// slots are never dropped.
pub fn slot_changes(
    want: &BTreeSet<String>,
    existing: &BTreeMap<String, bool>,
    ignore: &[IgnoreSlot],
) -> (Vec<String>, Vec<String>) {
    let create = want
        .iter()
        .filter(|w| !existing.contains_key(*w))
        .cloned()
        .collect();
    let drop = existing
        .iter()
        .filter(|(name, active)| !want.contains(*name) && !**active)
        .filter(|(name, _)| {
            let slot = SlotInfo {
                name,
                kind: SlotKind::Physical,
                database: None,
                plugin: None,
            };
            !ignored(ignore, &slot)
        })
        .map(|(name, _)| name.clone())
        .collect();
    (create, drop)
}

impl LocalPostgres {
    pub(super) async fn do_sync_slots(
        &self,
        members: &[MemberName],
        ignore: &[IgnoreSlot],
    ) -> Result<()> {
        let s = self.settings();
        let want: BTreeSet<String> = members
            .iter()
            .filter(|m| m.as_str() != s.member)
            .map(|m| slot_name(m.as_str()))
            .collect();
        let sql_err = |f: Failure| PgError::Sql {
            what: "replication slots",
            detail: f.to_string(),
        };
        let rows = self
            .shared_query(
                "SELECT pg_catalog.pg_is_in_recovery(), s.slot_name, s.active \
                 FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_replication_slots s \
                 ON s.slot_type = 'physical'",
                SHORT,
            )
            .await
            .map_err(sql_err)?;
        if rows
            .first()
            .and_then(|r| r.first())
            .cloned()
            .flatten()
            .as_deref()
            != Some("f")
        {
            return Ok(()); // a replica keeps no slots for others
        }
        let existing: BTreeMap<String, bool> = rows
            .iter()
            .filter_map(|r| {
                let name = r.get(1).cloned().flatten()?;
                Some((name, r.get(2).cloned().flatten().as_deref() == Some("t")))
            })
            .collect();
        let (create, drop) = slot_changes(&want, &existing, ignore);
        for name in create {
            tracing::info!(slot = %name, "creating replication slot");
            self.shared_query(
                &format!(
                    "SELECT pg_catalog.pg_create_physical_replication_slot({}, true)",
                    quote_literal(&name)
                ),
                SHORT,
            )
            .await
            .map_err(sql_err)?;
        }
        for name in drop {
            tracing::info!(slot = %name, "dropping replication slot");
            self.shared_query(
                &format!(
                    "SELECT pg_catalog.pg_drop_replication_slot(slot_name) \
                     FROM pg_catalog.pg_replication_slots WHERE slot_name = {} AND NOT active",
                    quote_literal(&name)
                ),
                SHORT,
            )
            .await
            .map_err(sql_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_like_patroni() {
        assert_eq!(slot_name("Node-1.a"), "node_1_a");
    }

    #[test]
    fn slots_are_created_and_inactive_strangers_dropped() {
        let want: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        let existing = BTreeMap::from([
            ("b".to_string(), true),
            ("old".to_string(), false),
            ("busy".to_string(), true),
        ]);
        assert_eq!(
            slot_changes(&want, &existing, &[]),
            (vec!["a".to_string()], vec!["old".to_string()])
        );
        let same = BTreeMap::from([("a".to_string(), false), ("b".to_string(), true)]);
        assert_eq!(slot_changes(&want, &same, &[]), (vec![], vec![]));
    }

    #[test]
    fn ignore_slots_keeps_an_inactive_stranger() {
        let want: BTreeSet<String> = ["a".to_string()].into();
        let existing =
            BTreeMap::from([("archiver".to_string(), false), ("old".to_string(), false)]);
        let keep = IgnoreSlot {
            name: Some("archiver".into()),
            ..IgnoreSlot::default()
        };
        assert_eq!(
            slot_changes(&want, &existing, &[keep]),
            (vec!["a".to_string()], vec!["old".to_string()])
        );
    }
}
