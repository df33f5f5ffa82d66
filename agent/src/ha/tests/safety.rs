//! Split-brain protection: etcd unreachable, the key held by another, a foreign data directory.

use super::*;

#[test]
fn leader_cannot_reach_etcd() {
    let cut_off = || node("pg1").primary(100).dcs_down();
    check([
        case("leader cut off with lease time to spare keeps retrying")
            .given(cut_off().lease_left(15_000))
            .want([Action::RenewLease], Reason::DcsUnreachableRetrying),
        case("leader cut off demotes before its lease can expire")
            .given(cut_off().lease_left(700))
            .want([IMMEDIATE], Reason::LeaseExpiringWithoutDcs),
        case("primary that never renewed demotes at once without etcd")
            .given(cut_off().no_lease())
            .want([IMMEDIATE], Reason::LeaseExpiringWithoutDcs),
        case("primary start job without etcd and without lease time is stopped")
            .given(
                node("pg1")
                    .dcs_down()
                    .job(JobKind::Start, true)
                    .lease_left(500),
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
                    .job(JobKind::Start, true)
                    .lease_left(20_000),
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
