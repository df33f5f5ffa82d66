//! Which physical replication slots the leader keeps (with `use_slots`): slot retention.
//!
//! Rule: the leader keeps a slot for every other member in the cluster now, and for a member
//! that disappeared (its member key expired: agent stopped, node down) for
//! [`MEMBER_SLOTS_TTL`] after it was last seen (Patroni's `member_slots_ttl` default, 30 min),
//! so that a replica restarted within it resumes streaming from its slot instead of needing
//! WAL the leader already recycled. Never a slot for the leader itself. After that time the
//! slot is dropped, so a member gone for good does not make the leader keep WAL forever.

use std::collections::BTreeMap;

use super::{MemberName, Millis};

/// How long a member that disappeared keeps its slot on the leader.
pub const MEMBER_SLOTS_TTL: Millis = Millis::secs(1800);

/// Updates `last_seen` (member -> when last in the cluster) with the `members` present now,
/// drops members not seen within [`MEMBER_SLOTS_TTL`] and `me`, and returns the slots to keep
/// (sorted).
pub fn retained(
    last_seen: &mut BTreeMap<MemberName, Millis>,
    members: &[MemberName],
    me: &MemberName,
    now: Millis,
) -> Vec<MemberName> {
    for m in members {
        last_seen.insert(m.clone(), now);
    }
    last_seen.retain(|m, seen| now.since(*seen) < MEMBER_SLOTS_TTL && m != me);
    last_seen.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> MemberName {
        MemberName::new(s)
    }

    #[test]
    fn present_members_keep_a_slot_and_the_leader_none() {
        let mut seen = BTreeMap::new();
        let kept = retained(&mut seen, &[n("b"), n("a"), n("me")], &n("me"), Millis(0));
        assert_eq!(kept, vec![n("a"), n("b")]);
    }

    #[test]
    fn a_member_that_left_keeps_its_slot_for_member_slots_ttl() {
        let mut seen = BTreeMap::new();
        retained(&mut seen, &[n("a"), n("b")], &n("me"), Millis(0));
        let almost = Millis(MEMBER_SLOTS_TTL.0 - 1);
        assert_eq!(
            retained(&mut seen, &[n("a")], &n("me"), almost),
            vec![n("a"), n("b")]
        );
        assert_eq!(
            retained(&mut seen, &[n("a")], &n("me"), MEMBER_SLOTS_TTL),
            vec![n("a")]
        );
    }

    #[test]
    fn a_member_back_in_time_is_kept_again_from_then() {
        let mut seen = BTreeMap::new();
        retained(&mut seen, &[n("b")], &n("me"), Millis(0));
        retained(&mut seen, &[n("b")], &n("me"), Millis(1_000_000));
        let later = Millis(1_000_000 + MEMBER_SLOTS_TTL.0 - 1);
        assert_eq!(retained(&mut seen, &[], &n("me"), later), vec![n("b")]);
    }
}
