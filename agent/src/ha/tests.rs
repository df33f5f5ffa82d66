//! Table tests of `decide`: one named case per situation the issue lists, and then some.

use super::builders::*;
use super::*;

fn check(cases: impl IntoIterator<Item = Case>) {
    for c in cases {
        let got = decide(&c.obs, &c.cfg);
        assert_eq!(got, c.want, "case: {}", c.name);
    }
}

fn three_nodes(v: &mut ClusterView, leader: Option<&str>) {
    v.add(member("pg1", PgRole::Replica, 100));
    v.add(member("pg2", PgRole::Replica, 100));
    v.add(member("pg3", PgRole::Replica, 100));
    if let Some(l) = leader {
        v.leader(l);
        v.add(member(l, PgRole::Primary, 100));
    }
}

fn slots(names: &[&str]) -> Action {
    Action::SyncSlots {
        members: names.iter().map(|n| name(n)).collect(),
    }
}

fn start_replica_of(n: &str) -> Action {
    Action::Start {
        role: StartAs::Replica {
            upstream: Some(upstream(n)),
        },
    }
}

const IMMEDIATE: Action = Action::Demote {
    mode: StopMode::Immediate,
};

#[test]
fn bootstrap_race() {
    let uninit = |v: &mut ClusterView| {
        v.initialize = None;
        v.has_config = false;
    };
    check([
        case("empty node in an uninitialized cluster races to bootstrap")
            .given(node("pg1").cluster(uninit))
            .want(
                [Action::ClaimInitialize, Action::Bootstrap],
                Reason::RacingToBootstrap,
            ),
        case("nofailover member never bootstraps")
            .given(node("pg1").cluster(uninit).config(|c| c.nofailover = true))
            .want([], Reason::CannotBootstrap),
        case("member without a bootstrap section never bootstraps")
            .given(
                node("pg1")
                    .cluster(uninit)
                    .config(|c| c.can_bootstrap = false),
            )
            .want([], Reason::CannotBootstrap),
        case("someone else claimed initialize: wait")
            .given(node("pg2").cluster(|v| v.initialize = Some(String::new())))
            .want([], Reason::WaitingForLeaderToBootstrap),
        case("our bootstrap job still runs")
            .given(
                node("pg1")
                    .cluster(|v| v.initialize = Some(String::new()))
                    .bootstrapping()
                    .job(JobKind::Bootstrap, false),
            )
            .want([], Reason::Bootstrapping),
        case("bootstrapped primary takes the lease and publishes the system id")
            .given(
                node("pg1")
                    .primary(50)
                    .cluster(|v| {
                        v.initialize = Some(String::new());
                        v.has_config = false;
                    })
                    .bootstrapping()
                    .last_job(JobKind::Bootstrap, true, 10),
            )
            .want(
                [
                    Action::AcquireLease,
                    Action::WriteInitialize {
                        sysid: SYSID.into(),
                    },
                    Action::SeedConfig,
                    slots(&[]),
                ],
                Reason::InitializedNewCluster,
            ),
        case("failed bootstrap gives the initialize key back")
            .given(
                node("pg1")
                    .cluster(|v| v.initialize = Some(String::new()))
                    .bootstrapping()
                    .last_job(JobKind::Bootstrap, false, 10),
            )
            .want([Action::CancelInitialize], Reason::BootstrapFailed),
        case("empty node in an initialized cluster without leader waits")
            .given(node("pg2"))
            .want([], Reason::WaitingForLeaderToBootstrap),
    ]);
}

#[test]
fn leader_renews() {
    check([
        case("leader running as primary renews and keeps slots for the others")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg1")))
                    .primary(100)
                    .lease_left(20_000),
            )
            .want(
                [Action::RenewLease, slots(&["pg2", "pg3"])],
                Reason::LeaderRenewed,
            ),
        case("leader without use_slots only renews")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg1")))
                    .primary(100)
                    .config(|c| c.use_slots = false),
            )
            .want([Action::RenewLease], Reason::LeaderRenewed),
        case("leader fills in an empty initialize key and a missing config")
            .given(
                node("pg1")
                    .cluster(|v| {
                        three_nodes(v, Some("pg1"));
                        v.initialize = Some(String::new());
                        v.has_config = false;
                    })
                    .primary(100)
                    .config(|c| c.use_slots = false),
            )
            .want(
                [
                    Action::RenewLease,
                    Action::WriteInitialize {
                        sysid: SYSID.into(),
                    },
                    Action::SeedConfig,
                ],
                Reason::LeaderRenewed,
            ),
        case("leader key ours but postgres is a replica: renew, then promote")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg1")))
                    .replica(100),
            )
            .want(
                [Action::RenewLease, Action::Promote, slots(&["pg2", "pg3"])],
                Reason::PromotingHeldLease,
            ),
        case("paused leader keeps its key and nothing else")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg1")))
                    .primary(100)
                    .config(|c| c.pause = true),
            )
            .want([Action::RenewLease], Reason::Paused),
        case("leader restarts postgres on request")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg1")))
                    .primary(100)
                    .request(LocalRequest::Restart),
            )
            .want(
                [Action::RenewLease, Action::Restart],
                Reason::Requested(JobKind::Restart),
            ),
        case("leader with a job in flight keeps the lease")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg1")))
                    .pg(PgState::Starting)
                    .job(JobKind::Start, true),
            )
            .want([Action::RenewLease], Reason::JobInProgress(JobKind::Start)),
        case("leader without a data directory releases the lease")
            .given(node("pg1").cluster(|v| three_nodes(v, Some("pg1"))))
            .want([Action::ReleaseLease], Reason::LeaderWithoutData),
    ]);
}

#[test]
fn postgres_crashed_under_live_agent() {
    let leader = || node("pg1").cluster(|v| three_nodes(v, Some("pg1")));
    check([
        case("crashed primary under a live leader is restarted in place")
            .given(leader().stopped(ControlState::InProduction).down_for(2_000))
            .want(
                [
                    Action::RenewLease,
                    Action::Start {
                        role: StartAs::Primary,
                    },
                ],
                Reason::RestartingPrimary,
            ),
        case("leader that cannot start within primary_start_timeout releases the key")
            .given(
                leader()
                    .stopped(ControlState::InProduction)
                    .down_for(301_000),
            )
            .want([Action::ReleaseLease], Reason::PrimaryStartTimeout),
        case("primary_start_timeout 0 fails over at once")
            .given(
                leader()
                    .stopped(ControlState::InProduction)
                    .down_for(0)
                    .config(|c| c.primary_start_timeout = Millis(0)),
            )
            .want([Action::ReleaseLease], Reason::PrimaryStartTimeout),
        case("leader recovering too long is stopped before it releases the key")
            .given(leader().pg(PgState::Starting).down_for(400_000))
            .want(
                [IMMEDIATE, Action::ReleaseLease],
                Reason::PrimaryStartTimeout,
            ),
        case("leader recovering within the timeout waits")
            .given(leader().pg(PgState::Starting).down_for(3_000))
            .want([Action::RenewLease], Reason::PostgresStarting),
        case("hung postgres under the leader keeps the lease")
            .given(leader().pg(PgState::Unknown))
            .want([Action::RenewLease], Reason::PostgresUnresponsive),
    ]);
}

#[test]
fn replica_follows() {
    let with_leader = |n: &str| node(n).cluster(|v| three_nodes(v, Some("pg1")));
    check([
        case("streaming replica of the leader does nothing")
            .given(with_leader("pg2").replica(100).following("pg1"))
            .want([], Reason::FollowingLeader(name("pg1"))),
        case("replica following nobody (agent restarted) is pointed at the leader")
            .given(with_leader("pg2").replica(100))
            .want(
                [Action::Follow {
                    upstream: upstream("pg1"),
                }],
                Reason::ReconfiguringToFollow(name("pg1")),
            ),
        case("replica following the old leader is re-pointed")
            .given(with_leader("pg2").replica(100).following("pg3"))
            .want(
                [Action::Follow {
                    upstream: upstream("pg1"),
                }],
                Reason::ReconfiguringToFollow(name("pg1")),
            ),
        case("empty node clones from the leader")
            .given(with_leader("pg2"))
            .want(
                [Action::Clone {
                    upstream: upstream("pg1"),
                }],
                Reason::CloningFromLeader(name("pg1")),
            ),
        case("stopped replica starts streaming from the leader")
            .given(with_leader("pg2").stopped(ControlState::ShutDownInRecovery))
            .want([start_replica_of("pg1")], Reason::StartingAsReplica),
        case("replica with a clone in flight waits")
            .given(with_leader("pg2").job(JobKind::Clone, false))
            .want([], Reason::JobInProgress(JobKind::Clone)),
        case("leader's member record missing: wait for it")
            .given(
                node("pg2")
                    .cluster(|v| {
                        v.leader("pg9");
                    })
                    .replica(100),
            )
            .want([], Reason::WaitingForLeaderRecord(name("pg9"))),
        case("paused replica is left alone")
            .given(with_leader("pg2").replica(100).config(|c| c.pause = true))
            .want([], Reason::Paused),
        case("replica reinitializes on request")
            .given(
                with_leader("pg2")
                    .replica(100)
                    .request(LocalRequest::Reinitialize),
            )
            .want(
                [Action::Reinitialize {
                    upstream: upstream("pg1"),
                }],
                Reason::Requested(JobKind::Reinitialize),
            ),
        case("replica restarts on request")
            .given(
                with_leader("pg2")
                    .replica(100)
                    .following("pg1")
                    .request(LocalRequest::Restart),
            )
            .want([Action::Restart], Reason::Requested(JobKind::Restart)),
    ]);
}

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
            .given(vacant("pg1").job(JobKind::Start, true))
            .want(
                [IMMEDIATE],
                Reason::DemotingIneligiblePrimary(Ineligible::NotRunning),
            ),
    ]);
}

#[test]
fn leader_cannot_reach_etcd() {
    let cut_off = || node("pg1").primary(100).dcs_down();
    check([
        case("leader cut off with lease time to spare keeps retrying")
            .given(cut_off().lease_left(15_000))
            .want([Action::RenewLease], Reason::DcsUnreachableRetrying),
        case("leader cut off demotes before its lease can expire")
            .given(cut_off().lease_left(10_000))
            .want([IMMEDIATE], Reason::LeaseExpiringWithoutDcs),
        case("primary that never renewed demotes at once without etcd")
            .given(cut_off())
            .want([IMMEDIATE], Reason::LeaseExpiringWithoutDcs),
        case("primary start job without etcd and without lease time is stopped")
            .given(
                node("pg1")
                    .dcs_down()
                    .job(JobKind::Start, true)
                    .lease_left(1_000),
            )
            .want([IMMEDIATE], Reason::LeaseExpiringWithoutDcs),
        case("paused primary is not demoted without etcd")
            .given(cut_off().config(|c| c.pause = true))
            .want([], Reason::Paused),
        case("replica without etcd does nothing")
            .given(node("pg2").replica(100).dcs_down())
            .want([], Reason::DcsUnreachable),
        case("demoted former primary restarts read-only without etcd")
            .given(node("pg1").stopped(ControlState::InProduction).dcs_down())
            .want(
                [Action::Start {
                    role: StartAs::Replica { upstream: None },
                }],
                Reason::StartingAsReplica,
            ),
    ]);
}

#[test]
fn leader_finds_key_held_by_someone_else() {
    check([
        case("primary that finds another leader demotes at once")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg2")))
                    .primary(100)
                    .lease_left(25_000),
            )
            .want([IMMEDIATE], Reason::LeaderKeyHeldByOther(name("pg2"))),
        case("a start-as-primary job while another leads is stopped")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg2")))
                    .job(JobKind::Start, true),
            )
            .want([IMMEDIATE], Reason::LeaderKeyHeldByOther(name("pg2"))),
        case("paused primary under another leader is left alone")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg2")))
                    .primary(100)
                    .config(|c| c.pause = true),
            )
            .want([], Reason::Paused),
    ]);
}

#[test]
fn old_primary_comes_back() {
    // pg2 leads on timeline 2, which forked off timeline 1 at 1000.
    let new_leader = |v: &mut ClusterView| {
        three_nodes(v, Some("pg2"));
        if let Some(m) = v.members.iter_mut().find(|m| m.name == name("pg2")) {
            m.timeline = Some(2);
        }
        v.history = vec![TimelineSwitch {
            timeline: 1,
            switch_lsn: Lsn(1000),
        }];
    };
    let old = || node("pg1").cluster(new_leader);
    let rewind = Action::Rewind {
        upstream: upstream("pg2"),
    };
    let reinit = Action::Reinitialize {
        upstream: upstream("pg2"),
    };
    check([
        case("crashed old primary starts as a standby of the new leader")
            .given(old().stopped(ControlState::InProduction))
            .want([start_replica_of("pg2")], Reason::StartingAsReplica),
        case("old primary that replayed past the fork point and cannot stream is rewound")
            .given(
                old()
                    .replica(1200)
                    .at(1, 1200)
                    .following("pg2")
                    .not_streaming_for(3_000),
            )
            .want([rewind.clone()], Reason::RewindingDiverged(name("pg2"))),
        case("diverged with use_pg_rewind off: clone afresh")
            .given(
                old()
                    .replica(1200)
                    .at(1, 1200)
                    .not_streaming_for(3_000)
                    .config(|c| c.use_pg_rewind = false),
            )
            .want(
                [reinit.clone()],
                Reason::ReinitializingDiverged(name("pg2")),
            ),
        case("failed rewind left postgres stopped: start it again, never wipe")
            .given(old().stopped(ControlState::ShutDownInRecovery).last_job(
                JobKind::Rewind,
                false,
                1_000,
            ))
            .want([start_replica_of("pg2")], Reason::StartingAsReplica),
        case("rewind failed a moment ago (leader unreachable): wait, do not wipe")
            .given(
                old()
                    .replica(1200)
                    .at(1, 1200)
                    .not_streaming_for(3_000)
                    .last_job(JobKind::Rewind, false, 1_000),
            )
            .want([], Reason::RewindRetryLater(name("pg2"))),
        case("rewind failed long ago: try it again")
            .given(
                old()
                    .replica(1200)
                    .at(1, 1200)
                    .not_streaming_for(3_000)
                    .last_job(JobKind::Rewind, false, 60_000),
            )
            .want([rewind.clone()], Reason::RewindingDiverged(name("pg2"))),
        case("still diverged right after a successful rewind: clone afresh")
            .given(
                old()
                    .replica(1200)
                    .at(1, 1200)
                    .not_streaming_for(3_000)
                    .last_job(JobKind::Rewind, true, 2_000),
            )
            .want([reinit], Reason::ReinitializingDiverged(name("pg2"))),
        case("diverged long after an earlier rewind: rewind again")
            .given(
                old()
                    .replica(1200)
                    .at(1, 1200)
                    .not_streaming_for(3_000)
                    .last_job(JobKind::Rewind, true, 600_000),
            )
            .want([rewind.clone()], Reason::RewindingDiverged(name("pg2"))),
        case("old replica exactly at the fork point just follows")
            .given(old().replica(1000).at(1, 1000))
            .want(
                [Action::Follow {
                    upstream: upstream("pg2"),
                }],
                Reason::ReconfiguringToFollow(name("pg2")),
            ),
        case("member on a newer timeline than the leader is rewound")
            .given(old().replica(900).at(3, 900).not_streaming_for(3_000))
            .want([rewind], Reason::RewindingDiverged(name("pg2"))),
        case("looks diverged but streams (timeline switch in flight): no rewind")
            .given(old().replica(1200).at(1, 1200).following("pg2"))
            .want([], Reason::FollowingLeader(name("pg2"))),
        case("looks diverged, not streaming only briefly: wait before rewinding")
            .given(
                old()
                    .replica(1200)
                    .at(1, 1200)
                    .following("pg2")
                    .not_streaming_for(500),
            )
            .want([], Reason::FollowingLeader(name("pg2"))),
        case("history without our timeline: follow and let postgres judge")
            .given(
                old()
                    .replica(1200)
                    .at(1, 1200)
                    .following("pg2")
                    .cluster(|v| v.history.clear()),
            )
            .want([], Reason::FollowingLeader(name("pg2"))),
    ]);
}

#[test]
fn switchover() {
    let leading = || {
        node("pg1")
            .cluster(|v| three_nodes(v, Some("pg1")))
            .primary(100)
            .config(|c| c.use_slots = false)
    };
    let clear = |why: &str| {
        (
            vec![
                Action::RenewLease,
                Action::ClearFailover {
                    revision: Revision(42),
                },
            ],
            Reason::FailoverRequestInvalid(why.into()),
        )
    };
    let handover = vec![
        Action::Demote {
            mode: StopMode::Graceful,
        },
        Action::ReleaseLease,
    ];
    let (a1, r1) = clear("candidate pg2 is tagged nofailover");
    let (a2, r2) = clear("leader name does not match: pg3 != pg1");
    let (a3, r3) = clear("candidate pg9 is not a member");
    let (a4, r4) = clear("I am already the leader, no need to fail over");
    check([
        case("switchover to a healthy candidate: graceful stop, then release")
            .given(leading().cluster(|v| {
                v.failover(Some("pg1"), Some("pg2"));
            }))
            .want(
                handover.clone(),
                Reason::SwitchingOver {
                    candidate: Some(name("pg2")),
                },
            ),
        case("switchover without candidate needs one healthy replica")
            .given(leading().cluster(|v| {
                v.failover(Some("pg1"), None);
            }))
            .want(handover, Reason::SwitchingOver { candidate: None }),
        case("switchover to a nofailover candidate is cleared")
            .given(leading().cluster(|v| {
                v.failover(Some("pg1"), Some("pg2"));
                if let Some(m) = v.members.iter_mut().find(|m| m.name == name("pg2")) {
                    m.nofailover = true;
                }
            }))
            .want(a1, r1),
        case("switchover addressed to another leader is cleared")
            .given(leading().cluster(|v| {
                v.failover(Some("pg3"), Some("pg2"));
            }))
            .want(a2, r2),
        case("switchover to an unknown member is cleared")
            .given(leading().cluster(|v| {
                v.failover(Some("pg1"), Some("pg9"));
            }))
            .want(a3, r3),
        case("failover to the current leader is cleared")
            .given(leading().cluster(|v| {
                v.failover(None, Some("pg1"));
            }))
            .want(a4, r4),
        case("scheduled switchover waits for its time")
            .given(leading().cluster(|v| {
                v.failover(Some("pg1"), Some("pg2"));
                if let Some(f) = v.failover.as_mut() {
                    f.scheduled_at_ms = Some(WALL + 60_000);
                }
            }))
            .want([Action::RenewLease], Reason::SwitchoverScheduled),
    ]);
}

#[test]
fn system_id_mismatch_is_fatal() {
    let d = decide(
        &node("pg2")
            .cluster(|v| three_nodes(v, Some("pg1")))
            .pg(PgState::Running(RunningPg {
                sysid: "999".into(),
                ..running(PgRole::Replica, 100, 1)
            }))
            .obs,
        &HaConfig::default(),
    );
    assert!(d.reason.is_fatal(), "{d:?}");
    assert!(d.actions.is_empty());
}

#[test]
fn diverged_compares_replay_position_with_the_fork_point() {
    let h = [TimelineSwitch {
        timeline: 1,
        switch_lsn: Lsn(1000),
    }];
    let at = |tl, lsn| RunningPg {
        timeline: tl,
        replay_lsn: Lsn(lsn),
        ..running(PgRole::Replica, lsn, tl)
    };
    assert_eq!(replica::diverged(&at(2, 5), Some(2), &h), Some(false));
    assert_eq!(replica::diverged(&at(1, 1000), Some(2), &h), Some(false));
    assert_eq!(replica::diverged(&at(1, 1001), Some(2), &h), Some(true));
    assert_eq!(replica::diverged(&at(3, 1), Some(2), &h), Some(true));
    assert_eq!(replica::diverged(&at(1, 1001), None, &h), None);
    assert_eq!(replica::diverged(&at(1, 1001), Some(3), &[]), None);
}

#[test]
fn reason_lines_read_like_patroni() {
    assert_eq!(
        Reason::LeaderRenewed.to_string(),
        "no action. I am the leader with the lock"
    );
    assert_eq!(
        Reason::FollowingLeader(name("pg1")).to_string(),
        "no action. I am a secondary and I am following a leader (pg1)"
    );
}
