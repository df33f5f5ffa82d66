//! Quorum mode (`ha::quorum`, `ha::quorum_vote`): the order of the key and
//! `synchronous_standby_names`, who may take over, and what switchovers are refused.

use super::*;

pub(super) fn quorum(c: &mut HaConfig) {
    c.synchronous_mode = SyncMode::Quorum;
}

pub(super) fn key(leader: &str, voters: &[&str], q: usize) -> SyncKey {
    SyncKey {
        leader: Some(name(leader)),
        standbys: voters.iter().map(|n| name(n)).collect(),
        quorum: q,
        revision: Revision(5),
    }
}

pub(super) fn any(count: usize, names: &[&str]) -> SyncStandbyNames {
    SyncStandbyNames::Quorum {
        count,
        names: names.iter().map(|n| name(n)).collect(),
    }
}

pub(super) fn set(names: SyncStandbyNames) -> Action {
    Action::SetSyncStandbyNames(names)
}

pub(super) fn write_key(voters: &[&str], q: usize, revision: Option<i64>) -> Action {
    Action::WriteSyncKey {
        standbys: voters.iter().map(|n| name(n)).collect(),
        quorum: q,
        revision: revision.map(Revision),
    }
}

/// `pg1` leads, `pg2` and `pg3` stream from it; quorum mode, `synchronous_node_count` 1;
/// the key, the setting in force and the standbys confirmed under it as given.
pub(super) fn leading(k: Option<SyncKey>, names: SyncStandbyNames, confirmed: &[&str]) -> Node {
    let mut n = node("pg1")
        .cluster(|v| {
            three_nodes(v, Some("pg1"));
            v.sync = k;
        })
        .primary(100)
        .config(quorum);
    n.obs.sync_names = Some(names);
    n.obs.sync_replicas = confirmed.iter().map(|c| name(c)).collect();
    n
}

pub(super) fn streaming(mut n: Node, names: &[&str]) -> Node {
    n.obs.streaming_replicas = names.iter().map(|c| name(c)).collect();
    n
}

pub(super) fn renewed(extra: Vec<Action>) -> Vec<Action> {
    let mut a = vec![Action::RenewLease, slots(&["pg2", "pg3"])];
    a.extend(extra);
    a
}

#[test]
fn leader_orders_the_key_and_the_setting() {
    let steady = || key("pg1", &["pg2", "pg3"], 1);
    check([
        case("no key, nothing listed: claim the key with no voter, then ANY 1 (pg2,pg3)")
            .given(leading(None, SyncStandbyNames::Off, &[]))
            .want(
                renewed(vec![write_key(&[], 0, None), set(any(1, &["pg2", "pg3"]))]),
                Reason::LeaderRenewed,
            ),
        case("listed but not confirmed yet: the key waits")
            .given(leading(
                Some(key("pg1", &[], 0)),
                any(1, &["pg2", "pg3"]),
                &[],
            ))
            .want(renewed(vec![]), Reason::LeaderRenewed),
        case("both confirmed: the key names both voters, quorum 1")
            .given(leading(
                Some(key("pg1", &[], 0)),
                any(1, &["pg2", "pg3"]),
                &["pg2", "pg3"],
            ))
            .want(
                renewed(vec![write_key(&["pg2", "pg3"], 1, Some(5))]),
                Reason::LeaderRenewed,
            ),
        case("steady state: nothing written")
            .given(leading(
                Some(steady()),
                any(1, &["pg2", "pg3"]),
                &["pg2", "pg3"],
            ))
            .want(renewed(vec![]), Reason::LeaderRenewed),
        case("a voter stops streaming: PostgreSQL drops it first, the key still counts it")
            .given(streaming(
                leading(Some(steady()), any(1, &["pg2", "pg3"]), &["pg2", "pg3"]),
                &["pg2"],
            ))
            .want(renewed(vec![set(any(1, &["pg2"]))]), Reason::LeaderRenewed),
        case("then, pg2 confirmed under ANY 1 (pg2): the key drops pg3, quorum 0")
            .given(streaming(
                leading(Some(steady()), any(1, &["pg2"]), &["pg2"]),
                &["pg2"],
            ))
            .want(
                renewed(vec![write_key(&["pg2"], 0, Some(5))]),
                Reason::LeaderRenewed,
            ),
        case("a standby comes back: the key counts it first (quorum up), then PostgreSQL")
            .given(leading(
                Some(key("pg1", &["pg2"], 0)),
                any(1, &["pg2"]),
                &["pg2"],
            ))
            .want(
                renewed(vec![
                    write_key(&["pg2", "pg3"], 1, Some(5)),
                    set(any(1, &["pg2", "pg3"])),
                ]),
                Reason::LeaderRenewed,
            ),
        case("synchronous_node_count 2: PostgreSQL requires two first; quorum later")
            .given(
                leading(Some(steady()), any(1, &["pg2", "pg3"]), &["pg2", "pg3"])
                    .config(|c| c.synchronous_node_count = 2),
            )
            .want(
                renewed(vec![set(any(2, &["pg2", "pg3"]))]),
                Reason::LeaderRenewed,
            ),
        case("synchronous_node_count back to 1: quorum up first, then PostgreSQL")
            .given(leading(
                Some(key("pg1", &["pg2", "pg3"], 0)),
                any(2, &["pg2", "pg3"]),
                &["pg2", "pg3"],
            ))
            .want(
                renewed(vec![
                    write_key(&["pg2", "pg3"], 1, Some(5)),
                    set(any(1, &["pg2", "pg3"])),
                ]),
                Reason::LeaderRenewed,
            ),
        case("nobody eligible, not strict: the key names no voter, then asynchronous")
            .given(streaming(
                leading(Some(steady()), any(1, &["pg2", "pg3"]), &["pg2", "pg3"]),
                &[],
            ))
            .want(
                renewed(vec![write_key(&[], 0, Some(5)), set(SyncStandbyNames::Off)]),
                Reason::LeaderRenewed,
            ),
        case("nobody eligible, strict: PostgreSQL keeps its list, commits wait")
            .given(
                streaming(
                    leading(Some(steady()), any(1, &["pg2", "pg3"]), &["pg2", "pg3"]),
                    &[],
                )
                .config(|c| c.synchronous_mode_strict = true),
            )
            .want(renewed(vec![]), Reason::LeaderRenewed),
        case("nobody eligible, strict, nothing listed: '*'")
            .given(
                streaming(
                    leading(Some(key("pg1", &[], 0)), SyncStandbyNames::Off, &[]),
                    &[],
                )
                .config(|c| c.synchronous_mode_strict = true),
            )
            .want(
                renewed(vec![set(SyncStandbyNames::Any)]),
                Reason::LeaderRenewed,
            ),
        case("from synchronous mode on (FIRST 1 (pg2), key pg2): key first, then ANY")
            .given(leading(
                Some(key("pg1", &["pg2"], 0)),
                SyncStandbyNames::First {
                    count: 1,
                    names: vec![name("pg2")],
                },
                &["pg2"],
            ))
            .want(
                renewed(vec![
                    write_key(&["pg2", "pg3"], 1, Some(5)),
                    set(any(1, &["pg2", "pg3"])),
                ]),
                Reason::LeaderRenewed,
            ),
        case("to synchronous mode on: FIRST 1 (pg2), and the quorum key names no standby")
            .given(
                leading(Some(steady()), any(1, &["pg2", "pg3"]), &["pg2", "pg3"])
                    .config(|c| c.synchronous_mode = SyncMode::On),
            )
            .want(
                renewed(vec![
                    set(SyncStandbyNames::First {
                        count: 1,
                        names: vec![name("pg2")],
                    }),
                    Action::WriteSyncKey {
                        standbys: vec![],
                        quorum: 0,
                        revision: Some(Revision(5)),
                    },
                ]),
                Reason::LeaderRenewed,
            ),
    ]);
}

/// `pg1` (the old leader) is gone; `pg2` and `pg3` run as replicas; quorum mode.
fn vacant(me: &str, lsn: u64, k: SyncKey) -> Node {
    node(me)
        .cluster(|v| {
            three_nodes(v, None);
            v.sync = Some(k);
        })
        .replica(lsn)
        .config(quorum)
}

fn won(others: &[&str]) -> Vec<Action> {
    vec![
        Action::AcquireLease,
        write_key(&[], 0, Some(5)),
        set(SyncStandbyNames::Off),
        Action::Promote,
        slots(others),
    ]
}

#[test]
fn only_a_member_with_the_votes_takes_over() {
    let voters = || key("pg1", &["pg2", "pg3"], 1);
    let short = |votes| Ineligible::QuorumNotReached { votes, needed: 2 };
    check([
        case("a voter seeing another voter at or behind it takes over")
            .given(vacant("pg2", 100, voters()).peers([peer("pg3", 90)]))
            .want(won(&["pg1", "pg3"]), Reason::RacingForVacantLease),
        case("an answer from before the old leader lost the key is no vote")
            .given(vacant("pg2", 100, voters()).peers([PeerStatus {
                leader_seen: LeaderSeen::Held(name("pg1")),
                ..peer("pg3", 90)
            }]))
            .want([], Reason::NotRacing(short(1))),
        case("a voter seeing no other voter may miss a commit: it waits")
            .given(vacant("pg2", 100, voters()))
            .want([], Reason::NotRacing(short(1))),
        case("a voter behind another stands aside for it")
            .given(vacant("pg2", 100, voters()).peers([peer("pg3", 150)]))
            .want([], Reason::NotRacing(short(1))),
        case("a member outside the voters takes over with quorum + 1 votes")
            .given(vacant("pg3", 100, key("pg1", &["pg2"], 0)).peers([peer("pg2", 100)]))
            .want(won(&["pg1", "pg2"]), Reason::RacingForVacantLease),
        case("a member outside the voters seeing none of them waits")
            .given(vacant("pg3", 100, key("pg1", &["pg2"], 0)))
            .want(
                [],
                Reason::NotRacing(Ineligible::QuorumNotReached {
                    votes: 0,
                    needed: 1,
                }),
            ),
        case("after a switchover the old leader's answer is a vote")
            .given(
                vacant("pg2", 101, voters())
                    .cluster(|v| {
                        v.failover(Some("pg1"), Some("pg2"));
                        v.optime = Some(Lsn(100));
                    })
                    .peers([peer("pg1", 100)]),
            )
            .want(
                vec![
                    Action::AcquireLease,
                    write_key(&[], 0, Some(5)),
                    set(SyncStandbyNames::Off),
                    Action::Promote,
                    Action::ClearFailover {
                        revision: Revision(42),
                    },
                    slots(&["pg1", "pg3"]),
                ],
                Reason::RacingForVacantLease,
            ),
        case("a failover candidate without the votes does not take over")
            .given(vacant("pg2", 100, voters()).cluster(|v| {
                v.failover(None, Some("pg2"));
            }))
            .want([], Reason::NotRacing(short(1))),
        case("a failover candidate behind a voter lacks the votes: the voter takes over")
            .given(
                vacant("pg3", 150, voters())
                    .cluster(|v| {
                        v.failover(None, Some("pg2"));
                    })
                    .peers([peer("pg2", 100)]),
            )
            .want(
                vec![
                    Action::AcquireLease,
                    write_key(&[], 0, Some(5)),
                    set(SyncStandbyNames::Off),
                    Action::Promote,
                    Action::ClearFailover {
                        revision: Revision(42),
                    },
                    slots(&["pg1", "pg2"]),
                ],
                Reason::RacingForVacantLease,
            ),
        case("a failover candidate with the votes is waited for")
            .given(
                vacant("pg3", 100, voters())
                    .cluster(|v| {
                        v.failover(None, Some("pg2"));
                    })
                    .peers([peer("pg2", 100)]),
            )
            .want(
                [],
                Reason::NotRacing(Ineligible::OtherCandidate(name("pg2"))),
            ),
        case("within the first loop a switchover candidate that looks behind is waited for")
            .given(
                vacant("pg3", 100, voters())
                    .cluster(|v| {
                        v.failover(Some("pg1"), Some("pg2"));
                        v.optime = Some(Lsn(100));
                    })
                    .peers([peer("pg2", 99)])
                    .vacant_for(500),
            )
            .want(
                [],
                Reason::NotRacing(Ineligible::OtherCandidate(name("pg2"))),
            ),
        case("a key written in quorum mode keeps the quorum rule with mode on")
            .given(vacant("pg2", 100, voters()).config(|c| c.synchronous_mode = SyncMode::On))
            .want([], Reason::NotRacing(short(1))),
        case("holding the lease as a replica without the votes: hand it back")
            .given(vacant("pg3", 100, voters()).cluster(|v| {
                v.leader("pg3");
            }))
            .want([Action::ReleaseLease], Reason::CannotLead(short(1))),
    ]);
}
