//! The leader key vanished: who races for it and who stands aside.

use super::*;

#[test]
fn leader_key_vanished() {
    let vacant = |n: &str| node(n).cluster(|v| three_nodes(v, None));
    let won = |extra: Vec<Action>| {
        let mut a = vec![Action::AcquireLease, Action::Promote];
        a.extend(extra);
        a
    };
    check([
        case("healthiest replica takes the vacant lease and promotes")
            .given(vacant("pg2").replica(100).peers([peer("pg3", 90)]))
            .want(
                won(vec![slots(&["pg1", "pg3"])]),
                Reason::RacingForVacantLease,
            ),
        case("replica behind another member does not race")
            .given(vacant("pg2").replica(90).peers([peer("pg3", 100)]))
            .want(
                [],
                Reason::NotRacing(Ineligible::NotHealthiest(name("pg3"))),
            ),
        case("equal position: higher failover_priority wins")
            .given(vacant("pg2").replica(100).peers([PeerStatus {
                failover_priority: 5,
                ..peer("pg3", 100)
            }]))
            .want(
                [],
                Reason::NotRacing(Ineligible::NotHealthiest(name("pg3"))),
            ),
        case("equal position and priority: both race, etcd picks one")
            .given(vacant("pg2").replica(100).peers([peer("pg3", 100)]))
            .want(
                won(vec![slots(&["pg1", "pg3"])]),
                Reason::RacingForVacantLease,
            ),
        case("a more advanced nofailover member does not stop the race")
            .given(vacant("pg2").replica(100).peers([PeerStatus {
                nofailover: true,
                ..peer("pg3", 500)
            }]))
            .want(
                won(vec![slots(&["pg1", "pg3"])]),
                Reason::RacingForVacantLease,
            ),
        case("replica lagging beyond maximum_lag_on_failover does not race")
            .given(
                vacant("pg2")
                    .replica(100)
                    .cluster(|v| v.optime = Some(Lsn(100 + 2_000_000))),
            )
            .want(
                [],
                Reason::NotRacing(Ineligible::Lagging { lag: 2_000_000 }),
            ),
        case("nofailover replica does not race")
            .given(vacant("pg2").replica(100).config(|c| c.nofailover = true))
            .want([], Reason::NotRacing(Ineligible::NoFailoverTag)),
        case("a member still running as primary stops the race")
            .given(vacant("pg2").replica(100).peers([PeerStatus {
                running_primary: true,
                ..peer("pg1", 100)
            }]))
            .want(
                [],
                Reason::NotRacing(Ineligible::PeerIsPrimary(name("pg1"))),
            ),
        case("failover request for another live member: stand aside")
            .given(vacant("pg2").replica(100).cluster(|v| {
                v.failover(None, Some("pg3"));
            }))
            .want(
                [],
                Reason::NotRacing(Ineligible::OtherCandidate(name("pg3"))),
            ),
        case("failover candidate races even when behind, and consumes the request")
            .given(
                vacant("pg3")
                    .replica(50)
                    .peers([peer("pg2", 100)])
                    .cluster(|v| {
                        v.failover(None, Some("pg3"));
                    }),
            )
            .want(
                won(vec![
                    Action::ClearFailover {
                        revision: Revision(42),
                    },
                    slots(&["pg1", "pg2"]),
                ]),
                Reason::RacingForVacantLease,
            ),
        case("failover request for a member that is gone is ignored")
            .given(vacant("pg2").replica(100).cluster(|v| {
                v.failover(None, Some("pg9"));
            }))
            .want(
                won(vec![
                    Action::ClearFailover {
                        revision: Revision(42),
                    },
                    slots(&["pg1", "pg3"]),
                ]),
                Reason::RacingForVacantLease,
            ),
        case("running primary without the key re-takes it without promoting")
            .given(vacant("pg1").primary(100).peers([peer("pg2", 100)]))
            .want(
                [Action::AcquireLease, slots(&["pg2", "pg3"])],
                Reason::RacingForVacantLease,
            ),
        case("running primary without the key while another reports primary demotes")
            .given(vacant("pg1").primary(100).peers([PeerStatus {
                running_primary: true,
                ..peer("pg2", 100)
            }]))
            .want(
                [Action::Demote {
                    mode: StopMode::Fast,
                }],
                Reason::DemotingIneligiblePrimary(Ineligible::PeerIsPrimary(name("pg2"))),
            ),
        case("stopped member starts as a standby to join the race")
            .given(vacant("pg2").stopped(ControlState::ShutDownInRecovery))
            .want(
                [Action::Start {
                    role: StartAs::Replica { upstream: None },
                }],
                Reason::StartingAsReplica,
            ),
        case("data without an initialize key (etcd wiped): race and re-publish the id")
            .given(
                vacant("pg2")
                    .replica(100)
                    .cluster(|v| v.initialize = None)
                    .config(|c| c.use_slots = false),
            )
            .want(
                won(vec![Action::WriteInitialize {
                    sysid: SYSID.into(),
                }]),
                Reason::RacingForVacantLease,
            ),
        case("paused: a running primary keeps the lock, nobody promotes")
            .given(vacant("pg1").primary(100).config(|c| c.pause = true))
            .want([Action::AcquireLease], Reason::Paused),
        case("paused: a replica does not race")
            .given(vacant("pg2").replica(100).config(|c| c.pause = true))
            .want([], Reason::Paused),
        case("switchover candidate that has not received the old leader's whole WAL waits")
            .given(
                vacant("pg2")
                    .replica(100)
                    .cluster(|v| {
                        v.failover(Some("pg1"), Some("pg2"));
                        v.optime = Some(Lsn(100));
                    })
                    .peers([peer("pg3", 100)]),
            )
            .want([], Reason::NotRacing(Ineligible::Lagging { lag: 1 })),
        case("switchover candidate past the old leader's WAL end takes over")
            .given(
                vacant("pg2")
                    .replica(101)
                    .cluster(|v| {
                        v.failover(Some("pg1"), Some("pg2"));
                        v.optime = Some(Lsn(100));
                    })
                    .peers([peer("pg3", 100)]),
            )
            .want(
                [
                    Action::AcquireLease,
                    Action::Promote,
                    Action::ClearFailover {
                        revision: Revision(42),
                    },
                    slots(&["pg1", "pg3"]),
                ],
                Reason::RacingForVacantLease,
            ),
        case("others hold back for a candidate that can take over")
            .given(
                vacant("pg3")
                    .replica(100)
                    .cluster(|v| {
                        v.failover(Some("pg1"), Some("pg2"));
                        v.optime = Some(Lsn(90));
                    })
                    .peers([peer("pg2", 100)]),
            )
            .want(
                [],
                Reason::NotRacing(Ineligible::OtherCandidate(name("pg2"))),
            ),
        case("others wait one loop for a candidate whose status predates the old leader's WAL end")
            .given(
                vacant("pg3")
                    .replica(100)
                    .vacant_for(50)
                    .cluster(|v| {
                        v.failover(Some("pg1"), Some("pg2"));
                        v.optime = Some(Lsn(100));
                    })
                    .peers([peer("pg2", 90)]),
            )
            .want(
                [],
                Reason::NotRacing(Ineligible::OtherCandidate(name("pg2"))),
            ),
        case("after that loop a candidate still short of the WAL end no longer holds others back")
            .given(
                vacant("pg3")
                    .replica(100)
                    .vacant_for(20_000)
                    .cluster(|v| {
                        v.failover(Some("pg1"), Some("pg2"));
                        v.optime = Some(Lsn(100));
                    })
                    .peers([peer("pg2", 90)]),
            )
            .want(
                [
                    Action::AcquireLease,
                    Action::Promote,
                    Action::ClearFailover {
                        revision: Revision(42),
                    },
                    slots(&["pg1", "pg2"]),
                ],
                Reason::RacingForVacantLease,
            ),
        case("others race when the candidate cannot take over (it lacks WAL)")
            .given(
                vacant("pg1")
                    .replica(100)
                    .cluster(|v| {
                        v.failover(Some("pg1"), Some("pg2"));
                        v.optime = Some(Lsn(100));
                    })
                    .peers([peer("pg2", 90), peer("pg3", 90)]),
            )
            .want(
                [
                    Action::AcquireLease,
                    Action::Promote,
                    Action::ClearFailover {
                        revision: Revision(42),
                    },
                    slots(&["pg2", "pg3"]),
                ],
                Reason::RacingForVacantLease,
            ),
        case("a start-as-primary job without the lease is stopped")
            .given(vacant("pg1").job(JobKind::Start, true).lease_left(20_000))
            .want(
                [IMMEDIATE],
                Reason::DemotingIneligiblePrimary(Ineligible::NotRunning),
            ),
    ]);
}
