//! The member holding the lease: renewal, housekeeping, crashed PostgreSQL, switchover.

use super::*;

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
                    Action::SeedConfig { replacing: None },
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
                [
                    Action::RenewLease,
                    Action::Restart {
                        role: StartAs::Primary,
                    },
                ],
                Reason::Requested(JobKind::Restart),
            ),
        case("leader with a job in flight keeps the lease")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg1")))
                    .pg(PgState::Starting)
                    .job(JobKind::Start, true)
                    .lease_left(20_000),
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
        Action::PublishPosition,
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
        case("switchover to a streaming candidate whose record shows an old position goes ahead")
            .given(
                leading()
                    .primary(50_000_000)
                    .cluster(|v| {
                        v.failover(Some("pg1"), Some("pg2"));
                        if let Some(m) = v.members.iter_mut().find(|m| m.name == name("pg2")) {
                            m.streaming = false;
                        }
                    }),
            )
            .want(
                vec![
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
        case("switchover to a candidate not among the leader's WAL senders is cleared")
            .given({
                let mut n = leading().cluster(|v| {
                    v.failover(Some("pg1"), Some("pg2"));
                });
                n.obs.streaming_replicas = vec![name("pg3")];
                n
            })
            .want(
                clear("candidate pg2 is not streaming from the leader").0,
                clear("candidate pg2 is not streaming from the leader").1,
            ),
        case("switchover to a candidate still on the previous timeline is cleared")
            .given(leading().cluster(|v| {
                v.failover(Some("pg1"), Some("pg2"));
                if let Some(m) = v.members.iter_mut().find(|m| m.name == name("pg1")) {
                    m.timeline = Some(3);
                }
            }))
            .want(
                clear("candidate pg2 is on timeline 1, the leader on 3 (it has not followed the last timeline switch yet)").0,
                clear("candidate pg2 is on timeline 1, the leader on 3 (it has not followed the last timeline switch yet)").1,
            ),
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
