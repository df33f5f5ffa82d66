//! The guards of a primary: the demotion point, the fence, the watchdog, failsafe mode.

use super::*;

const EXTEND: Action = Action::ExtendFence;

fn leader(me: &str) -> Node {
    node(me)
        .cluster(|v| three_nodes(v, Some(me)))
        .config(|c| c.use_slots = false)
}

fn vacant_race(me: &str) -> Node {
    node(me)
        .cluster(|v| three_nodes(v, None))
        .config(|c| c.use_slots = false)
}

#[test]
fn the_fence_moves_with_every_proof_of_authority() {
    check([
        case("leader renews, then moves the fence deadline")
            .given(leader("pg1").primary(100).armed())
            .want([Action::RenewLease, EXTEND], Reason::LeaderRenewed),
        case("winner of the race arms the fence before promoting")
            .given(
                vacant_race("pg2")
                    .replica(100)
                    .fenced(FenceState::Ready { armed: None }),
            )
            .want(
                [Action::AcquireLease, EXTEND, Action::Promote],
                Reason::RacingForVacantLease,
            ),
        case("leader restarting its crashed primary arms the fence before the start")
            .given(
                leader("pg1")
                    .stopped(ControlState::InProduction)
                    .lease_left(20_000)
                    .armed(),
            )
            .want(
                [
                    Action::RenewLease,
                    EXTEND,
                    Action::Start {
                        role: StartAs::Primary,
                    },
                ],
                Reason::RestartingPrimary,
            ),
        case("leader whose postgres hangs keeps it fenced")
            .given(
                leader("pg1")
                    .pg(PgState::Unknown)
                    .lease_left(20_000)
                    .armed(),
            )
            .want([Action::RenewLease, EXTEND], Reason::PostgresUnresponsive),
    ]);
}

#[test]
fn demotion_point() {
    check([
        case("leader whose renewals failed until the demotion point stops at once although etcd's cache still names it")
            .given(leader("pg1").primary(100).lease_left(700).armed())
            .want([IMMEDIATE, Action::DisarmFence], Reason::LeaseNotRenewedInTime),
        case("leader with more than the margins left keeps serving")
            .given(leader("pg1").primary(100).lease_left(800).armed())
            .want([Action::RenewLease, EXTEND], Reason::LeaderRenewed),
        case("agent restarted beside a running primary without a fence to tell its lease stops it")
            .given(leader("pg1").primary(100).no_lease())
            .want([IMMEDIATE], Reason::LeaseNotRenewedInTime),
        case("a hung postgres the fence guarded is stopped once the lease runs out")
            .given(leader("pg1").pg(PgState::Unknown).lease_left(100).armed())
            .want([IMMEDIATE, Action::DisarmFence], Reason::LeaseNotRenewedInTime),
        case("a watchdog moves the demotion point before its own reset")
            .given(
                leader("pg1")
                    .primary(100)
                    .lease_left(5_000)
                    .armed()
                    .config(|c| c.watchdog = WatchdogMode::Automatic),
            )
            .want([IMMEDIATE, Action::DisarmFence], Reason::LeaseNotRenewedInTime),
        case("our own bootstrap is exempt: no other member has data yet")
            .given(
                node("pg1")
                    .cluster(|v| v.initialize = Some(String::new()))
                    .bootstrapping()
                    .primary(1)
                    .no_lease()
                    .config(|c| c.use_slots = false),
            )
            .want(
                [
                    Action::AcquireLease,
                    Action::WriteInitialize {
                        sysid: SYSID.into(),
                    },
                    Action::SeedConfig,
                ],
                Reason::InitializedNewCluster,
            ),
    ]);
}

#[test]
fn no_leader_without_its_guards() {
    check([
        case("leader whose fence is gone hands over: fast stop, then release")
            .given(leader("pg1").primary(100).fenced(FenceState::Unavailable))
            .want(
                [
                    Action::Demote {
                        mode: StopMode::Fast,
                    },
                    Action::ReleaseLease,
                ],
                Reason::CannotLead(Ineligible::FenceUnavailable),
            ),
        case("member whose fence is gone does not race")
            .given(
                vacant_race("pg2")
                    .replica(100)
                    .fenced(FenceState::Unavailable),
            )
            .want([], Reason::NotRacing(Ineligible::FenceUnavailable)),
        case("required watchdog that cannot be used: replica only")
            .given(vacant_race("pg2").replica(100).config(|c| {
                c.watchdog = WatchdogMode::Required;
            }))
            .want([], Reason::NotRacing(Ineligible::WatchdogUnavailable)),
        case("automatic watchdog that cannot be used does not stop the race")
            .given(vacant_race("pg2").replica(100).config(|c| {
                c.watchdog = WatchdogMode::Automatic;
            }))
            .want(
                [Action::AcquireLease, Action::Promote],
                Reason::RacingForVacantLease,
            ),
        case("a disabled fence does not stop the race")
            .given(
                vacant_race("pg2")
                    .replica(100)
                    .fenced(FenceState::Disabled)
                    .config(|c| c.fence = false),
            )
            .want(
                [Action::AcquireLease, Action::Promote],
                Reason::RacingForVacantLease,
            ),
    ]);
}

#[test]
fn disarm_when_nothing_is_left_to_guard() {
    check([
        case("demoted member following the new leader disarms")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg2")))
                    .stopped(ControlState::InProduction)
                    .armed(),
            )
            .want(
                [start_replica_of("pg2"), Action::DisarmFence],
                Reason::StartingAsReplica,
            ),
        case("paused leader disarms, as Patroni disarms its watchdog")
            .given(
                leader("pg1")
                    .primary(100)
                    .armed()
                    .config(|c| c.pause = true),
            )
            .want([Action::RenewLease, Action::DisarmFence], Reason::Paused),
        case("a disarmed fence is left alone")
            .given(
                node("pg1")
                    .cluster(|v| three_nodes(v, Some("pg2")))
                    .replica(100)
                    .following("pg2")
                    .fenced(FenceState::Ready { armed: None }),
            )
            .want([], Reason::FollowingLeader(name("pg2"))),
    ]);
}

#[test]
fn failsafe_mode() {
    let failsafe = |n: Node| n.config(|c| c.failsafe_mode = true);
    check([
        case("leader cut off from etcd asks every member, then moves the fence")
            .given(failsafe(leader("pg1").primary(100).armed().dcs_down()))
            .want([Action::FailsafeRound, EXTEND], Reason::FailsafeKeepsLeader),
        case("an accepted round keeps the leader writing after its lease ran out")
            .given({
                let mut n = failsafe(leader("pg1").primary(100).armed().dcs_down()).lease_left(100);
                n.obs.failsafe_valid_until = Some(n.obs.now.plus(Millis(20_000)));
                n
            })
            .want([Action::FailsafeRound, EXTEND], Reason::FailsafeKeepsLeader),
        case("without an accepted round the lease's demotion point holds")
            .given(failsafe(leader("pg1").primary(100).armed().dcs_down()).lease_left(100))
            .want(
                [IMMEDIATE, Action::DisarmFence],
                Reason::LeaseExpiringWithoutDcs,
            ),
        case("replica that promised a failsafe leader does not race for the vacant key")
            .given({
                let mut n = failsafe(vacant_race("pg2").replica(100));
                n.obs.failsafe_leader = Some(name("pg1"));
                n
            })
            .want(
                [],
                Reason::NotRacing(Ineligible::FailsafeLeader(name("pg1"))),
            ),
        case("member missing from the failsafe key does not race")
            .given(failsafe(vacant_race("pg3").replica(100).cluster(|v| {
                v.failsafe = Some(vec![name("pg1"), name("pg2")]);
            })))
            .want([], Reason::NotRacing(Ineligible::NotInFailsafeTopology)),
        case("leader lists every member in the failsafe key")
            .given(failsafe(leader("pg1").primary(100)))
            .want(
                [
                    Action::RenewLease,
                    Action::WriteFailsafeKey {
                        members: vec![name("pg1"), name("pg2"), name("pg3")],
                    },
                ],
                Reason::LeaderRenewed,
            ),
        case("leader leaves an up-to-date failsafe key alone")
            .given(failsafe(leader("pg1").primary(100)).cluster(|v| {
                v.failsafe = Some(vec![name("pg3"), name("pg1"), name("pg2")]);
            }))
            .want([Action::RenewLease], Reason::LeaderRenewed),
        case("a replica holding a key it promised to leave gives it back")
            .given({
                let mut n = failsafe(leader("pg2").replica(100));
                n.obs.failsafe_leader = Some(name("pg1"));
                n
            })
            .want(
                [Action::ReleaseLease],
                Reason::CannotLead(Ineligible::FailsafeLeader(name("pg1"))),
            ),
    ]);
}
