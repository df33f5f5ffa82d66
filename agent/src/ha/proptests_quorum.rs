//! Property tests of quorum mode (`quorum.rs`, `quorum_vote.rs`).
//!
//! - The planner never leaves the invariant: from any state, each step it emits (the key
//!   write judged with the confirmations observed, the change of the setting alone) lands in
//!   a state where any quorum the key allows meets every set that can acknowledge a commit;
//!   and it reaches the target within a few cycles when the eligible members confirm.
//! - Never promote a member that may miss an acknowledged commit: a commit acknowledged by
//!   the leader and `n` members of `S`, a key with `|V ∪ S| <= q + n`, members answering
//!   truthfully, not at all, or from before the leader lost the key (an older position);
//!   whoever `decide` promotes holds the commit.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::builders::*;
use super::quorum::{QuorumState, Step, is_safe, plan};
use super::*;

/// A `synchronous_standby_names` value over the test's member names.
pub(super) fn arb_sync_names() -> impl Strategy<Value = SyncStandbyNames> {
    (
        0usize..5,
        prop::collection::btree_set(super::proptests::arb_name(), 0..3),
        0usize..3,
    )
        .prop_map(|(kind, names, count)| {
            let names: Vec<MemberName> = names.into_iter().collect();
            let count = count.min(names.len()).max(usize::from(!names.is_empty()));
            match (kind, names.is_empty()) {
                (0, _) => SyncStandbyNames::Off,
                (1, _) | (_, true) => SyncStandbyNames::Any,
                (2, _) => SyncStandbyNames::First { count, names },
                _ => SyncStandbyNames::Quorum { count, names },
            }
        })
}

fn arb_state(universe: usize) -> impl Strategy<Value = QuorumState> {
    let full = (1u32 << universe) - 1;
    (
        0u32..=full,
        0usize..=universe,
        0u32..=full,
        0usize..=universe,
    )
        .prop_map(|(voters, quorum, sync, numsync)| QuorumState {
            quorum: quorum.min(voters.count_ones().saturating_sub(1) as usize),
            voters,
            numsync: if sync == 0 {
                0
            } else {
                numsync.clamp(1, sync.count_ones() as usize)
            },
            sync,
        })
}

fn target_of(active: u32, wanted: usize) -> QuorumState {
    let n = wanted.min(active.count_ones() as usize);
    QuorumState {
        quorum: active.count_ones() as usize - n,
        voters: active,
        numsync: n,
        sync: active,
    }
}

/// Applies `steps`, checking each against the invariant; `None` if one breaks it.
fn apply(mut s: QuorumState, steps: &[Step], confirmed: usize) -> Option<QuorumState> {
    let mut names_changed = false;
    for step in steps {
        match step {
            Step::Key(k) => {
                if names_changed {
                    return None;
                }
                s.quorum = k.quorum;
                s.voters = k.voters;
                if !is_safe(&s, confirmed) {
                    return None;
                }
            }
            Step::Names(n) => {
                if names_changed {
                    return None;
                }
                names_changed = true;
                s.numsync = n.numsync;
                s.sync = n.sync;
                if !is_safe(&s, usize::MAX) {
                    return None;
                }
            }
        }
    }
    Some(s)
}

/// A commit at LSN 1000 acknowledged by the leader `pg1` and `n` members of `S`; the key
/// with voters `V` and quorum `q` keeps the invariant. Members answer with their true
/// positions, or not at all.
fn arb_takeover() -> impl Strategy<Value = (Observation, HaConfig, u64)> {
    let others = ["pg2", "pg3", "pg4"];
    (
        arb_state(3).prop_filter("invariant", |s| s.voters != 0 && is_safe(s, usize::MAX)),
        prop::collection::vec((0u64..1200, any::<bool>(), prop::option::of(0u64..1000)), 3),
        any::<u32>(),
        0usize..3,
        (any::<bool>(), 1000u64..1300),
        prop_oneof![Just(SyncMode::Quorum), Just(SyncMode::On)],
    )
        .prop_map(
            move |(s, members, ackers, me, (leader_answers, leader_lsn), mode)| {
                // `n` members of S acknowledged the commit.
                let in_s: Vec<usize> = (0..3).filter(|i| s.sync & (1 << i) != 0).collect();
                let mut acked = Vec::new();
                for k in 0..in_s.len() {
                    let i = in_s[(k + ackers as usize) % in_s.len()];
                    if acked.len() < s.numsync {
                        acked.push(i);
                    }
                }
                let lsn = |i: usize| {
                    let (l, _, _) = members[i];
                    if acked.contains(&i) {
                        1000 + l % 200
                    } else {
                        l
                    }
                };
                let names = |mask: u32| -> Vec<MemberName> {
                    (0..3)
                        .filter(|i| mask & (1 << i) != 0)
                        .map(|i| name(others[i]))
                        .collect()
                };
                let mut n = node(others[me])
                    .cluster(|v| {
                        v.add(member("pg1", PgRole::Replica, 1000));
                        for (i, o) in others.iter().enumerate() {
                            v.add(member(o, PgRole::Replica, lsn(i)));
                        }
                        v.sync = Some(SyncKey {
                            leader: Some(name("pg1")),
                            standbys: names(s.voters),
                            quorum: s.quorum,
                            revision: Revision(5),
                        });
                    })
                    .replica(lsn(me))
                    .config(|c| {
                        c.synchronous_mode = mode;
                        c.maximum_lag_on_failover = u64::MAX;
                    });
                // An answer from before the old leader lost the key may show an older
                // position (`stale`), and says so.
                let mut peers: Vec<PeerStatus> = (0..3)
                    .filter(|i| *i != me && members[*i].1)
                    .map(|i| match members[i].2 {
                        Some(old) => PeerStatus {
                            leader_seen: LeaderSeen::Held(name("pg1")),
                            ..peer(others[i], old.min(lsn(i)))
                        },
                        None => peer(others[i], lsn(i)),
                    })
                    .collect();
                if leader_answers {
                    peers.push(peer("pg1", leader_lsn));
                }
                n = n.peers(peers);
                if mode == SyncMode::On {
                    // With mode on, the rule is the quorum one only for a key written in quorum mode.
                    if let DcsView::Reachable(v) = &mut n.obs.dcs
                        && let Some(k) = &mut v.sync
                    {
                        k.quorum = k.quorum.max(1).min(k.standbys.len().saturating_sub(1));
                    }
                }
                (n.obs, n.cfg, lsn(me))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Every step the planner emits keeps the invariant, key write before the setting.
    #[test]
    fn the_planner_never_leaves_the_invariant(
        cur in arb_state(4),
        active in 0u32..16,
        wanted in 1usize..4,
        confirmed in 0usize..5,
    ) {
        let target = target_of(active, wanted);
        let steps = plan(cur, target, confirmed, active, 4);
        prop_assert!(apply(cur, &steps, confirmed).is_some(), "{cur:?} -> {steps:?}");
    }

    /// From any state (even one breaking the invariant, as a hand-edited key may), the
    /// target is reached within a few cycles when the eligible members confirm each new
    /// setting by the next cycle.
    #[test]
    fn the_planner_reaches_the_target(
        cur in arb_state(4),
        active in 0u32..16,
        wanted in 1usize..4,
    ) {
        let target = target_of(active, wanted);
        let mut s = cur;
        let mut confirmed = (s.sync & active).count_ones() as usize;
        for _ in 0..6 {
            let steps = plan(s, target, confirmed, active, 4);
            s = apply(s, &steps, confirmed).ok_or_else(|| TestCaseError::fail("unsafe"))?;
            confirmed = (s.sync & active).count_ones() as usize;
        }
        prop_assert_eq!(s, target);
    }

    /// Never promote a member that may miss an acknowledged commit.
    #[test]
    fn never_promotes_a_member_that_may_miss_an_acknowledged_commit(
        (obs, cfg, my_lsn) in arb_takeover()
    ) {
        let d = decide(&obs, &cfg);
        if d.actions.contains(&Action::Promote) {
            prop_assert!(my_lsn >= 1000, "promoted at {my_lsn}: {d:?}");
        }
    }
}

/// `pg1` leads in quorum mode; `pg2`..`pg4` stream from it or not; the key (ours or
/// another leader's), the setting in force and the confirmed standbys are arbitrary.
fn arb_leading() -> impl Strategy<Value = (Observation, HaConfig)> {
    let names = || prop::collection::vec(prop_oneof![Just("pg2"), Just("pg3"), Just("pg4")], 0..4);
    (
        names(),
        prop::option::of((any::<bool>(), names(), 0usize..3)),
        prop::option::of(arb_sync_names()),
        names(),
        (1usize..4, any::<bool>(), prop::option::of(0u64..200)),
        prop::collection::vec(0u64..200, 3),
    )
        .prop_map(
            |(streaming, k, names, confirmed, (count, strict, lag), lsns)| {
                let list = |v: &[&str]| -> Vec<MemberName> {
                    let mut v: Vec<MemberName> = v.iter().map(|n| name(n)).collect();
                    v.sort();
                    v.dedup();
                    v
                };
                let mut n = node("pg1")
                    .cluster(|v| {
                        v.leader("pg1");
                        v.add(member("pg1", PgRole::Primary, 200));
                        for (i, o) in ["pg2", "pg3", "pg4"].iter().enumerate() {
                            v.add(member(o, PgRole::Replica, lsns[i]));
                        }
                        v.sync = k.map(|(ours, voters, quorum)| SyncKey {
                            leader: Some(name(if ours { "pg1" } else { "pg0" })),
                            standbys: list(&voters),
                            quorum,
                            revision: Revision(5),
                        });
                    })
                    .primary(200)
                    .config(|c| {
                        c.synchronous_mode = SyncMode::Quorum;
                        c.synchronous_node_count = count;
                        c.synchronous_mode_strict = strict;
                        c.maximum_lag_on_syncnode = lag;
                    });
                n.obs.streaming_replicas = list(&streaming);
                n.obs.sync_names = names;
                n.obs.sync_replicas = list(&confirmed);
                (n.obs, n.cfg)
            },
        )
}

/// The invariant over names (`quorum::is_safe` over sets).
fn safe_names(
    quorum: usize,
    voters: &BTreeSet<MemberName>,
    numsync: usize,
    sync: &BTreeSet<MemberName>,
    confirmed: usize,
) -> bool {
    voters.is_empty()
        || (quorum < voters.len() && voters.union(sync).count() <= quorum + numsync.min(confirmed))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// In quorum mode, the leader's key writes and settings, in batch order, keep the
    /// invariant: a key write judged with the standbys confirmed under the setting in force
    /// (none once the batch changed it: no key write follows a change of the setting), a
    /// change of the setting judged against the key.
    #[test]
    fn the_leaders_batch_keeps_the_invariant((obs, cfg) in arb_leading()) {
        let d = decide(&obs, &cfg);
        let DcsView::Reachable(view) = &obs.dcs else { return Ok(()) };
        let ours = view.sync.as_ref().filter(|k| k.leader.as_ref() == Some(&obs.me));
        let set = |v: &[MemberName]| -> BTreeSet<MemberName> {
            v.iter().filter(|n| **n != obs.me).cloned().collect()
        };
        let mut quorum = ours.map_or(0, |k| k.quorum);
        let mut voters = ours.map_or_else(BTreeSet::new, |k| set(&k.standbys));
        let in_force = obs.sync_names.clone().unwrap_or(SyncStandbyNames::Off);
        let (n, listed) = in_force.count_and_names();
        let mut sync = set(&listed);
        let mut numsync = n.min(sync.len());
        let confirmed = set(&obs.sync_replicas).intersection(&sync).count();
        let mut changed = false;
        for a in &d.actions {
            match a {
                Action::WriteSyncKey { standbys, quorum: q, .. } => {
                    prop_assert!(!changed, "key write after a new setting: {d:?}");
                    quorum = *q;
                    voters = set(standbys);
                    prop_assert!(safe_names(quorum, &voters, numsync, &sync, confirmed), "{obs:?}\n{d:?}");
                }
                Action::SetSyncStandbyNames(names) => {
                    let (n, listed) = names.count_and_names();
                    let same = (n, set(&listed)) == (numsync, sync.clone());
                    changed = true;
                    numsync = n;
                    sync = set(&listed);
                    // `FIRST n` rewritten as `ANY n` over the same names changes nothing.
                    prop_assert!(same || safe_names(quorum, &voters, numsync, &sync, usize::MAX), "{obs:?}\n{d:?}");
                }
                _ => {}
            }
        }
    }
}
