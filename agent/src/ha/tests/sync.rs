//! Synchronous replication (`ha::sync`): the leader's choice and order, who may take over.

use super::*;

fn on(c: &mut HaConfig) {
    c.synchronous_mode = SyncMode::On;
}

fn key(leader: &str, standbys: &[&str]) -> SyncKey {
    SyncKey {
        leader: Some(name(leader)),
        standbys: standbys.iter().map(|n| name(n)).collect(),
        quorum: 0,
        revision: Revision(5),
    }
}

fn first(names: &[&str]) -> Action {
    Action::SetSyncStandbyNames(SyncStandbyNames::First {
        count: names.len(),
        names: names.iter().map(|n| name(n)).collect(),
    })
}

fn names_first(names: &[&str]) -> SyncStandbyNames {
    SyncStandbyNames::First {
        count: names.len(),
        names: names.iter().map(|n| name(n)).collect(),
    }
}

fn write_key(standbys: &[&str], revision: Option<i64>) -> Action {
    Action::WriteSyncKey {
        standbys: standbys.iter().map(|n| name(n)).collect(),
        quorum: 0,
        revision: revision.map(Revision),
    }
}

/// `pg1` leads, `pg2` and `pg3` stream from it; synchronous mode on; the `sync` key as given.
fn leading(sync: Option<SyncKey>) -> Node {
    node("pg1")
        .cluster(|v| {
            three_nodes(v, Some("pg1"));
            v.sync = sync;
        })
        .primary(100)
        .config(on)
}

fn with(mut n: Node, f: impl FnOnce(&mut Observation)) -> Node {
    f(&mut n.obs);
    n
}

fn renewed(extra: Vec<Action>) -> Vec<Action> {
    let mut a = vec![Action::RenewLease, slots(&["pg2", "pg3"])];
    a.extend(extra);
    a
}

#[test]
fn leader_manages_synchronous_standbys() {
    check([
        case("sync on, no key yet: PostgreSQL first, the key names only the leader")
            .given(leading(None))
            .want(
                renewed(vec![first(&["pg2"]), write_key(&[], None)]),
                Reason::LeaderRenewed,
            ),
        case("chosen standby not yet reported sync: PostgreSQL set, key not extended")
            .given(leading(Some(key("pg1", &[]))))
            .want(renewed(vec![first(&["pg2"])]), Reason::LeaderRenewed),
        case("confirmed under another setting (ANY from quorum mode): key not extended yet")
            .given(with(leading(Some(key("pg1", &[]))), |o| {
                o.sync_replicas = vec![name("pg2")];
                o.sync_names = Some(SyncStandbyNames::Quorum {
                    count: 1,
                    names: vec![name("pg2"), name("pg3")],
                });
            }))
            .want(renewed(vec![first(&["pg2"])]), Reason::LeaderRenewed),
        case("confirmed under FIRST 1 (pg2) in force: now the key names it")
            .given(with(leading(Some(key("pg1", &[]))), |o| {
                o.sync_replicas = vec![name("pg2")];
                o.sync_names = Some(names_first(&["pg2"]));
            }))
            .want(
                renewed(vec![first(&["pg2"]), write_key(&["pg2"], Some(5))]),
                Reason::LeaderRenewed,
            ),
        case("steady state: nothing written")
            .given(with(leading(Some(key("pg1", &["pg2"]))), |o| {
                o.sync_replicas = vec![name("pg2")];
            }))
            .want(renewed(vec![first(&["pg2"])]), Reason::LeaderRenewed),
        case("a more advanced standby does not replace a healthy sync standby")
            .given(
                leading(Some(key("pg1", &["pg2"])))
                    .cluster(|v| {
                        v.add(member("pg3", PgRole::Replica, 100));
                        v.add(member("pg2", PgRole::Replica, 40));
                    })
                    .config(|c| c.synchronous_node_count = 1),
            )
            .want(renewed(vec![first(&["pg2"])]), Reason::LeaderRenewed),
        case("without a key the most advanced standby is chosen")
            .given(leading(None).cluster(|v| {
                v.add(member("pg2", PgRole::Replica, 40));
            }))
            .want(
                renewed(vec![first(&["pg3"]), write_key(&[], None)]),
                Reason::LeaderRenewed,
            ),
        case("synchronous_node_count 2 lists both, every one must confirm")
            .given(leading(Some(key("pg1", &[]))).config(|c| c.synchronous_node_count = 2))
            .want(renewed(vec![first(&["pg2", "pg3"])]), Reason::LeaderRenewed),
        case("sync standby stopped streaming: key first, then PostgreSQL with the other")
            .given(with(leading(Some(key("pg1", &["pg2"]))), |o| {
                o.streaming_replicas = vec![name("pg3")];
            }))
            .want(
                renewed(vec![write_key(&[], Some(5)), first(&["pg3"])]),
                Reason::LeaderRenewed,
            ),
        case("no eligible standby, not strict: key emptied first, then asynchronous")
            .given(with(leading(Some(key("pg1", &["pg2"]))), |o| {
                o.streaming_replicas = Vec::new();
            }))
            .want(
                renewed(vec![
                    write_key(&[], Some(5)),
                    Action::SetSyncStandbyNames(SyncStandbyNames::Off),
                ]),
                Reason::LeaderRenewed,
            ),
        case("no eligible standby, strict: commits wait on '*'")
            .given(with(
                leading(Some(key("pg1", &["pg2"]))).config(|c| c.synchronous_mode_strict = true),
                |o| o.streaming_replicas = Vec::new(),
            ))
            .want(
                renewed(vec![
                    write_key(&[], Some(5)),
                    Action::SetSyncStandbyNames(SyncStandbyNames::Any),
                ]),
                Reason::LeaderRenewed,
            ),
        case("nosync members are never chosen")
            .given(leading(Some(key("pg1", &[]))).cluster(|v| {
                for m in v.members.iter_mut().filter(|m| m.name == name("pg2")) {
                    m.nosync = true;
                }
            }))
            .want(renewed(vec![first(&["pg3"])]), Reason::LeaderRenewed),
        case("a standby beyond maximum_lag_on_syncnode is not chosen")
            .given(
                leading(Some(key("pg1", &[])))
                    .cluster(|v| {
                        v.add(member("pg2", PgRole::Replica, 10));
                    })
                    .config(|c| c.maximum_lag_on_syncnode = Some(50)),
            )
            .want(renewed(vec![first(&["pg3"])]), Reason::LeaderRenewed),
        case("a key written by the previous leader is replaced, naming only confirmed ones")
            .given(leading(Some(key("pg0", &["pg1"]))))
            .want(
                renewed(vec![first(&["pg2"]), write_key(&[], Some(5))]),
                Reason::LeaderRenewed,
            ),
        case("sync mode switched off: key deleted first, then asynchronous")
            .given(
                leading(Some(key("pg1", &["pg2"]))).config(|c| c.synchronous_mode = SyncMode::Off),
            )
            .want(
                renewed(vec![
                    Action::DeleteSyncKey {
                        revision: Revision(5),
                    },
                    Action::SetSyncStandbyNames(SyncStandbyNames::Off),
                ]),
                Reason::LeaderRenewed,
            ),
    ]);
}

/// `pg1` (the old leader) is gone; `pg2` and `pg3` run as replicas; sync mode on.
fn vacant(me: &str, sync: Option<SyncKey>) -> Node {
    node(me)
        .cluster(|v| {
            three_nodes(v, None);
            v.sync = sync;
        })
        .replica(100)
        .config(on)
}

#[test]
fn only_a_synchronous_standby_takes_over() {
    let won = vec![
        Action::AcquireLease,
        write_key(&[], Some(5)),
        Action::SetSyncStandbyNames(SyncStandbyNames::Off),
        Action::Promote,
        slots(&["pg1", "pg3"]),
    ];
    check([
        case("the sync standby races; the key names only it before it promotes")
            .given(vacant("pg2", Some(key("pg1", &["pg2"]))).peers([peer("pg3", 100)]))
            .want(won.clone(), Reason::RacingForVacantLease),
        case("strict: the new leader's commits wait on '*' from the start")
            .given(
                vacant("pg2", Some(key("pg1", &["pg2"])))
                    .config(|c| c.synchronous_mode_strict = true),
            )
            .want(
                vec![
                    Action::AcquireLease,
                    write_key(&[], Some(5)),
                    Action::SetSyncStandbyNames(SyncStandbyNames::Any),
                    Action::Promote,
                    slots(&["pg1", "pg3"]),
                ],
                Reason::RacingForVacantLease,
            ),
        case("a more advanced member the key does not name may not race")
            .given(vacant("pg3", Some(key("pg1", &["pg2"]))).replica(500))
            .want([], Reason::NotRacing(Ineligible::NotSynchronous)),
        case("after an asynchronous fallback nobody but the old leader may take over")
            .given(vacant("pg2", Some(key("pg1", &[]))))
            .want([], Reason::NotRacing(Ineligible::NotSynchronous)),
        case("a failover candidate outside the key may not take over")
            .given(vacant("pg3", Some(key("pg1", &["pg2"]))).cluster(|v| {
                v.failover(None, Some("pg3"));
            }))
            .want([], Reason::NotRacing(Ineligible::NotSynchronous)),
        case("the sync standby does not stand aside for such a candidate")
            .given(vacant("pg2", Some(key("pg1", &["pg2"]))).cluster(|v| {
                v.failover(None, Some("pg3"));
            }))
            .want(
                vec![
                    Action::AcquireLease,
                    write_key(&[], Some(5)),
                    Action::SetSyncStandbyNames(SyncStandbyNames::Off),
                    Action::Promote,
                    Action::ClearFailover {
                        revision: Revision(42),
                    },
                    slots(&["pg1", "pg3"]),
                ],
                Reason::RacingForVacantLease,
            ),
        case("no key yet (sync mode just switched on): the ordinary race")
            .given(vacant("pg3", None).peers([peer("pg2", 90)]))
            .want(
                vec![
                    Action::AcquireLease,
                    write_key(&[], None),
                    Action::SetSyncStandbyNames(SyncStandbyNames::Off),
                    Action::Promote,
                    slots(&["pg1", "pg2"]),
                ],
                Reason::RacingForVacantLease,
            ),
        case("holding the lease as a replica the key does not name: hand it back")
            .given(vacant("pg3", Some(key("pg1", &["pg2"]))).cluster(|v| {
                v.leader("pg3");
            }))
            .want(
                [Action::ReleaseLease],
                Reason::CannotLead(Ineligible::NotSynchronous),
            ),
        case("sync mode off: the key is not consulted")
            .given(
                vacant("pg3", Some(key("pg1", &["pg2"])))
                    .config(|c| c.synchronous_mode = SyncMode::Off),
            )
            .want(
                vec![
                    Action::AcquireLease,
                    Action::Promote,
                    slots(&["pg1", "pg2"]),
                ],
                Reason::RacingForVacantLease,
            ),
    ]);
}

#[test]
fn switchover_only_to_a_synchronous_standby() {
    let clear = |why: &str| {
        Decision::new(
            [
                Action::RenewLease,
                Action::ClearFailover {
                    revision: Revision(42),
                },
            ],
            Reason::FailoverRequestInvalid(why.into()),
        )
    };
    let to = |c: &str| {
        with(
            leading(Some(key("pg1", &["pg2"]))).cluster(|v| {
                v.failover(Some("pg1"), Some(c));
            }),
            |o| o.sync_replicas = vec![name("pg2")],
        )
    };
    let want = clear("candidate pg3 is not a synchronous standby (synchronous_mode is on)");
    check([
        case("switchover to a member the sync key does not name is cleared")
            .given(to("pg3"))
            .want(want.actions, want.reason),
        case("switchover to the sync standby goes ahead")
            .given(to("pg2"))
            .want(
                [
                    Action::Demote {
                        mode: StopMode::Graceful,
                    },
                    Action::PublishPosition,
                    Action::ReleaseLease,
                ],
                Reason::SwitchingOver {
                    candidate: Some(name("pg2")),
                },
            ),
    ]);
    // The REST API's check (412 with this reason).
    let n = to("pg3");
    let DcsView::Reachable(view) = &n.obs.dcs else {
        panic!("reachable")
    };
    assert_eq!(
        candidate::request_problem(
            view,
            Some(&name("pg1")),
            Some(&name("pg3")),
            &n.cfg,
            "switchover"
        ),
        Some("candidate pg3 is not a synchronous standby (synchronous_mode is on)".into())
    );
    assert_eq!(
        candidate::request_problem(
            view,
            Some(&name("pg1")),
            Some(&name("pg2")),
            &n.cfg,
            "switchover"
        ),
        None
    );
}

#[test]
fn standby_names_syntax() {
    let n = SyncStandbyNames::First {
        count: 2,
        names: vec![name("pg2"), name("a\"b")],
    };
    assert_eq!(n.to_string(), "FIRST 2 (\"pg2\",\"a\"\"b\")");
    assert_eq!(SyncStandbyNames::Any.to_string(), "*");
    assert_eq!(SyncStandbyNames::Off.to_string(), "");
}
