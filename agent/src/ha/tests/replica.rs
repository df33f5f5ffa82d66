//! Members following a leader: clone, start, re-point, and a former primary coming back.

use super::*;

#[test]
fn replica_follows() {
    let with_leader = |n: &str| node(n).cluster(|v| three_nodes(v, Some("pg1")));
    check([
        case("a clone that failed a moment ago is retried a loop later")
            .given(with_leader("pg2").last_job(JobKind::Clone, false, 500))
            .want([], Reason::CloneRetryLater(name("pg1"))),
        case("a clone that failed a loop ago is tried again")
            .given(
                with_leader("pg2")
                    .last_job(JobKind::Clone, false, 3_000)
                    .config(|c| c.loop_wait = Millis::secs(2)),
            )
            .want(
                [Action::Clone {
                    upstream: upstream("pg1"),
                    sysid: SYSID.into(),
                }],
                Reason::CloningFromLeader(name("pg1")),
            ),
        case("a member that would not start as a replica is rewound")
            .given(with_leader("pg2").stopped(ControlState::ShutDown).last_job(
                JobKind::Start,
                false,
                1_000,
            ))
            .want(
                [Action::Rewind {
                    upstream: upstream("pg1"),
                }],
                Reason::RewindingDiverged(name("pg1")),
            ),
        case("streaming replica of the leader does nothing")
            .given(with_leader("pg2").replica(100).following("pg1"))
            .want([], Reason::FollowingLeader(name("pg1"))),
        case("replica re-pointed a moment ago and not streaming retries at once")
            .given(
                with_leader("pg2")
                    .replica(100)
                    .following("pg1")
                    .followed_ms_ago(800)
                    .not_streaming_for(300),
            )
            .want(
                [Action::RetryStreaming],
                Reason::RetryingStreaming(name("pg1")),
            ),
        case("replica re-pointed a moment ago gets a quarter second before a retry")
            .given(
                with_leader("pg2")
                    .replica(100)
                    .following("pg1")
                    .followed_ms_ago(800)
                    .not_streaming_for(100),
            )
            .want([], Reason::FollowingLeader(name("pg1"))),
        case("replica not streaming long after it was re-pointed leaves retrying to PostgreSQL")
            .given(
                with_leader("pg2")
                    .replica(100)
                    .following("pg1")
                    .followed_ms_ago(6_000)
                    .not_streaming_for(1_000),
            )
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
                    sysid: SYSID.into(),
                }],
                Reason::CloningFromLeader(name("pg1")),
            ),
        case("stopped replica starts streaming from the leader")
            .given(with_leader("pg2").stopped(ControlState::ShutDownInRecovery))
            .want([start_replica_of("pg1")], Reason::StartingAsReplica),
        case("replica with a clone in flight waits")
            .given(with_leader("pg2").job(JobKind::Clone, false))
            .want([], Reason::JobInProgress(JobKind::Clone)),
        case("leader key naming a member without a record: wait for the record")
            .given(
                node("pg2")
                    .cluster(|v| {
                        v.leader("pg9");
                    })
                    .replica(100),
            )
            .want([], Reason::WaitingForLeaderRecord(name("pg9"))),
        case("leader record without an address: wait for it")
            .given(
                node("pg2")
                    .cluster(|v| {
                        v.leader("pg9");
                        v.add(MemberView {
                            conn: None,
                            ..member("pg9", PgRole::Primary, 100)
                        });
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
                    sysid: SYSID.into(),
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
            .want(
                [Action::Restart {
                    role: StartAs::Replica {
                        upstream: Some(upstream("pg1")),
                    },
                }],
                Reason::Requested(JobKind::Restart),
            ),
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
        sysid: SYSID.into(),
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
    assert_eq!(
        crate::ha::replica::diverged(&at(2, 5), Some(2), &h),
        Some(false)
    );
    assert_eq!(
        crate::ha::replica::diverged(&at(1, 1000), Some(2), &h),
        Some(false)
    );
    assert_eq!(
        crate::ha::replica::diverged(&at(1, 1001), Some(2), &h),
        Some(true)
    );
    assert_eq!(
        crate::ha::replica::diverged(&at(3, 1), Some(2), &h),
        Some(true)
    );
    assert_eq!(crate::ha::replica::diverged(&at(1, 1001), None, &h), None);
    assert_eq!(
        crate::ha::replica::diverged(&at(1, 1001), Some(3), &[]),
        None
    );
}
