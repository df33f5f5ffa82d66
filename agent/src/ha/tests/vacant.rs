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
        case("a start-as-primary job without the lease is stopped")
            .given(vacant("pg1").job(JobKind::Start, true).lease_left(20_000))
            .want(
                [IMMEDIATE],
                Reason::DemotingIneligiblePrimary(Ineligible::NotRunning),
            ),
    ]);
}
