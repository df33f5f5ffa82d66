//! Wrong values in etcd: a foreign or corrupt `initialize`, a `leader` key that cannot be
//! trusted, an unusable `config`. None of them stops a healthy primary or promotes a member.

use super::*;

const FOREIGN: &str = "7311000000000000999";

fn leader(me: &str) -> Node {
    node(me)
        .cluster(|v| three_nodes(v, Some(me)))
        .config(|c| c.use_slots = false)
}

fn follower(me: &str) -> Node {
    node(me)
        .cluster(|v| three_nodes(v, Some("pg1")))
        .config(|c| c.use_slots = false)
}

fn foreign(v: &mut ClusterView) {
    v.initialize = Some(FOREIGN.into());
}

#[test]
fn initialize_key() {
    check([
        case("leader under a foreign system id keeps serving and leaves the key to an operator")
            .given(leader("pg1").primary(100).cluster(foreign))
            .want([Action::RenewLease], Reason::LeaderRenewed),
        case("leader replaces a corrupt initialize with its system id")
            .given(leader("pg1").primary(100).cluster(|v| {
                v.initialize = Some("{{{garbage ]]".into());
            }))
            .want(
                [
                    Action::RenewLease,
                    Action::RepairInitialize {
                        found: "{{{garbage ]]".into(),
                        sysid: SYSID.into(),
                    },
                ],
                Reason::LeaderRenewed,
            ),
        case("replica under a foreign system id keeps following")
            .given(
                follower("pg2")
                    .replica(100)
                    .following("pg1")
                    .cluster(foreign),
            )
            .want([], Reason::FollowingLeader(name("pg1"))),
        case("diverged replica under a foreign system id is neither rewound nor reinitialized")
            .given(
                follower("pg2")
                    .replica(100)
                    .at(2, 900)
                    .not_streaming_for(5_000)
                    .cluster(foreign),
            )
            .want(
                [],
                Reason::SystemIdConflict {
                    cluster: FOREIGN.into(),
                    local: SYSID.into(),
                },
            ),
        case("member without data clones only the system initialize names")
            .given(follower("pg3"))
            .want(
                [Action::Clone {
                    upstream: upstream("pg1"),
                    sysid: SYSID.into(),
                }],
                Reason::CloningFromLeader(name("pg1")),
            ),
        case("member without data does not clone a leader that runs another system")
            .given(follower("pg3").cluster(foreign).peers([peer("pg1", 100)]))
            .want(
                [],
                Reason::SystemIdConflict {
                    cluster: FOREIGN.into(),
                    local: SYSID.into(),
                },
            ),
        case("member without data does not clone while initialize is corrupt")
            .given(follower("pg3").cluster(|v| v.initialize = Some("garbage".into())))
            .want([], Reason::SystemIdUnverified),
        case("member without data does not clone while initialize is gone")
            .given(follower("pg3").cluster(|v| v.initialize = None))
            .want([], Reason::SystemIdUnverified),
        case("replica does not race for a vacant key under a foreign system id")
            .given(
                node("pg2")
                    .cluster(|v| {
                        three_nodes(v, None);
                        foreign(v);
                    })
                    .replica(100)
                    .config(|c| c.use_slots = false),
            )
            .want([], Reason::NotRacing(Ineligible::SystemIdConflict)),
        case("running primary keeps re-taking a vacant key under a foreign system id")
            .given(
                node("pg1")
                    .cluster(|v| {
                        three_nodes(v, None);
                        foreign(v);
                    })
                    .primary(100)
                    .config(|c| c.use_slots = false),
            )
            .want([Action::AcquireLease], Reason::RacingForVacantLease),
    ]);
}

#[test]
fn leader_key() {
    let take = Action::TakeOverLeaderKey {
        revision: Revision(77),
    };
    check([
        case("primary finding a leader key written by hand that names no member takes it back instead of demoting")
            .given(leader("pg1").primary(100).leader_key("nobody", KeyLease::None))
            .want([take.clone()], Reason::ReclaimingLeaderKey),
        case("primary finding another member's name written by hand (no lease) takes it back")
            .given(leader("pg1").primary(100).leader_key("pg2", KeyLease::None))
            .want([take.clone()], Reason::ReclaimingLeaderKey),
        case("primary finding its own name under a lease that is not its own (agent restarted) reclaims it")
            .given(leader("pg1").primary(100).leader_key("pg1", KeyLease::Other))
            .want([take.clone()], Reason::ReclaimingLeaderKey),
        case("primary whose lease ran out still demotes, whatever the key says")
            .given(
                leader("pg1")
                    .primary(100)
                    .lease_left(100)
                    .leader_key("nobody", KeyLease::None),
            )
            .want([IMMEDIATE], Reason::LeaseNotRenewedInTime),
        case("primary under a key another member really holds demotes at once")
            .given(leader("pg1").primary(100).cluster(|v| {
                v.leader = Some(LeaderKey {
                    holder: name("pg2"),
                    revision: Revision(78),
                    lease: KeyLease::Other,
                });
            }))
            .want([IMMEDIATE], Reason::LeaderKeyHeldByOther(name("pg2"))),
        case("replica facing a leased key whose holder's record is gone waits for the record")
            .given(follower("pg2").replica(100).leader_key("pg9", KeyLease::Other))
            .want([], Reason::WaitingForLeaderRecord(name("pg9"))),
        case("replica facing an untrusted key does not race while a primary answers")
            .given(
                follower("pg2")
                    .replica(100)
                    .leader_key("nobody", KeyLease::None)
                    .peers([PeerStatus {
                        running_primary: true,
                        ..peer("pg1", 100)
                    }]),
            )
            .want([], Reason::NotRacing(Ineligible::PeerIsPrimary(name("pg1")))),
        case("replica holding its name under no lease does not promote while a primary answers")
            .given(
                follower("pg2")
                    .replica(100)
                    .leader_key("pg2", KeyLease::None)
                    .peers([PeerStatus {
                        running_primary: true,
                        ..peer("pg1", 100)
                    }]),
            )
            .want([], Reason::NotRacing(Ineligible::PeerIsPrimary(name("pg1")))),
        case("untrusted key and no primary anywhere: the race winner takes it over")
            .given(
                follower("pg2")
                    .replica(100)
                    .leader_key("nobody", KeyLease::None)
                    .peers([peer("pg3", 50)]),
            )
            .want([take, Action::Promote], Reason::RacingForVacantLease),
    ]);
}

#[test]
fn config_key() {
    check([
        case("leader replaces an unusable config with the last one seen")
            .given(leader("pg1").primary(100).cluster(|v| {
                v.has_config = false;
                v.config_garbage = Some(Revision(9));
            }))
            .want(
                [
                    Action::RenewLease,
                    Action::SeedConfig {
                        replacing: Some(Revision(9)),
                    },
                ],
                Reason::LeaderRenewed,
            ),
    ]);
}
