//! Which physical replication slots the leader keeps (with `use_slots`): slot retention.
//!
//! Rules:
//! - the leader keeps a slot for every other member in the cluster now, and for a member that
//!   disappeared (its member key expired: agent stopped, node down) for `member_slots_ttl`
//!   after it was last seen (Patroni's setting, default [`MEMBER_SLOTS_TTL`], 30 min), so a
//!   replica restarted within it resumes streaming from its slot instead of needing WAL the
//!   leader already recycled. Never a slot for the leader itself. After that time the slot is
//!   dropped, so a member gone for good does not make the leader keep WAL forever;
//! - every other inactive physical slot is dropped, **except one that `ignore_slots` matches**
//!   (Patroni's rule: an entry matches a slot when every attribute it gives (`name`, `type`,
//!   `database`, `plugin`) equals the slot's); logical slots are never touched.

use std::collections::BTreeMap;

use super::{MemberName, Millis};

/// How long a member that disappeared keeps its slot on the leader, by default.
pub const MEMBER_SLOTS_TTL: Millis = Millis::secs(1800);

/// A replication slot's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// Streaming replication.
    Physical,
    /// Logical decoding.
    Logical,
}

/// One `ignore_slots` entry: the attributes it gives must all match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IgnoreSlot {
    /// `name`.
    pub name: Option<String>,
    /// `type`.
    pub kind: Option<SlotKind>,
    /// `database`.
    pub database: Option<String>,
    /// `plugin`.
    pub plugin: Option<String>,
}

/// A slot as PostgreSQL lists it.
#[derive(Debug, Clone, Copy)]
pub struct SlotInfo<'a> {
    /// `slot_name`.
    pub name: &'a str,
    /// `slot_type`.
    pub kind: SlotKind,
    /// `database` (logical slots).
    pub database: Option<&'a str>,
    /// `plugin` (logical slots).
    pub plugin: Option<&'a str>,
}

/// Whether `ignore_slots` protects `slot` from the leader's clean-up.
pub fn ignored(rules: &[IgnoreSlot], slot: &SlotInfo<'_>) -> bool {
    rules.iter().any(|r| {
        r.name.as_deref().is_none_or(|n| n == slot.name)
            && r.kind.is_none_or(|k| k == slot.kind)
            && r.database
                .as_deref()
                .is_none_or(|d| Some(d) == slot.database)
            && r.plugin.as_deref().is_none_or(|p| Some(p) == slot.plugin)
    })
}

/// Updates `last_seen` (member -> when last in the cluster) with the `members` present now,
/// drops members not seen within `ttl` (`member_slots_ttl`) and `me`, and returns the slots
/// to keep (sorted).
pub fn retained(
    last_seen: &mut BTreeMap<MemberName, Millis>,
    members: &[MemberName],
    me: &MemberName,
    now: Millis,
    ttl: Millis,
) -> Vec<MemberName> {
    for m in members {
        last_seen.insert(m.clone(), now);
    }
    last_seen.retain(|m, seen| (members.contains(m) || now.since(*seen) < ttl) && m != me);
    last_seen.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Millis = MEMBER_SLOTS_TTL;

    fn n(s: &str) -> MemberName {
        MemberName::new(s)
    }

    #[test]
    fn present_members_keep_a_slot_and_the_leader_none() {
        let mut seen = BTreeMap::new();
        let kept = retained(
            &mut seen,
            &[n("b"), n("a"), n("me")],
            &n("me"),
            Millis(0),
            TTL,
        );
        assert_eq!(kept, vec![n("a"), n("b")]);
    }

    #[test]
    fn a_member_that_left_keeps_its_slot_for_member_slots_ttl() {
        let mut seen = BTreeMap::new();
        retained(&mut seen, &[n("a"), n("b")], &n("me"), Millis(0), TTL);
        let almost = Millis(TTL.0 - 1);
        assert_eq!(
            retained(&mut seen, &[n("a")], &n("me"), almost, TTL),
            vec![n("a"), n("b")]
        );
        assert_eq!(
            retained(&mut seen, &[n("a")], &n("me"), TTL, TTL),
            vec![n("a")]
        );
    }

    #[test]
    fn a_member_back_in_time_is_kept_again_from_then() {
        let mut seen = BTreeMap::new();
        retained(&mut seen, &[n("b")], &n("me"), Millis(0), TTL);
        retained(&mut seen, &[n("b")], &n("me"), Millis(1_000_000), TTL);
        let later = Millis(1_000_000 + TTL.0 - 1);
        assert_eq!(retained(&mut seen, &[], &n("me"), later, TTL), vec![n("b")]);
    }

    #[test]
    fn member_slots_ttl_zero_drops_a_slot_as_soon_as_its_member_is_gone() {
        let mut seen = BTreeMap::new();
        retained(&mut seen, &[n("a"), n("b")], &n("me"), Millis(0), Millis(0));
        assert_eq!(
            retained(&mut seen, &[n("a")], &n("me"), Millis(0), Millis(0)),
            vec![n("a")]
        );
    }

    fn physical(name: &str) -> SlotInfo<'_> {
        SlotInfo {
            name,
            kind: SlotKind::Physical,
            database: None,
            plugin: None,
        }
    }

    #[test]
    fn ignore_slots_matches_on_every_attribute_an_entry_gives() {
        let by_name = IgnoreSlot {
            name: Some("archiver".into()),
            ..IgnoreSlot::default()
        };
        assert!(ignored(
            std::slice::from_ref(&by_name),
            &physical("archiver")
        ));
        assert!(!ignored(&[by_name], &physical("other")));
        let physical_only = IgnoreSlot {
            kind: Some(SlotKind::Physical),
            ..IgnoreSlot::default()
        };
        assert!(ignored(&[physical_only], &physical("anything")));
        let logical_db = IgnoreSlot {
            name: Some("cdc".into()),
            database: Some("app".into()),
            ..IgnoreSlot::default()
        };
        assert!(
            !ignored(std::slice::from_ref(&logical_db), &physical("cdc")),
            "a physical slot has no database"
        );
        let cdc = SlotInfo {
            name: "cdc",
            kind: SlotKind::Logical,
            database: Some("app"),
            plugin: Some("pgoutput"),
        };
        assert!(ignored(&[logical_db], &cdc));
        assert!(!ignored(&[], &physical("x")), "no entries, nothing ignored");
    }
}
