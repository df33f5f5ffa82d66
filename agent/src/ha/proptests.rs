//! Property tests: safety rules of `decide` over arbitrary observations.

use proptest::prelude::*;

use super::builders::{SYSID, name, peer};
use super::*;

const MEMBERS: [&str; 3] = ["pg1", "pg2", "pg3"];
const WALL: u64 = 1_800_000_000_000;

pub(super) fn arb_name() -> impl Strategy<Value = MemberName> {
    prop::sample::select(&MEMBERS[..]).prop_map(name)
}

fn arb_running() -> impl Strategy<Value = RunningPg> {
    (
        prop_oneof![Just(PgRole::Primary), Just(PgRole::Replica)],
        0u64..3000,
        1u32..4,
        prop_oneof![Just(SYSID.to_string()), Just("42".to_string())],
        any::<bool>(),
    )
        .prop_map(|(role, lsn, timeline, sysid, streaming)| RunningPg {
            role,
            sysid,
            timeline,
            lsn: Lsn(lsn),
            replay_lsn: Lsn(lsn.saturating_sub(10)),
            streaming,
        })
}

fn arb_pg() -> impl Strategy<Value = PgState> {
    prop_oneof![
        Just(PgState::NoData),
        Just(PgState::Starting),
        Just(PgState::Unknown),
        prop_oneof![
            Just(ControlState::ShutDown),
            Just(ControlState::InProduction),
            Just(ControlState::ShutDownInRecovery),
        ]
        .prop_map(|control_state| PgState::Stopped(StoppedPg {
            sysid: SYSID.into(),
            timeline: 1,
            control_state,
            checkpoint_lsn: Lsn(0),
        })),
        arb_running().prop_map(PgState::Running),
    ]
}

fn arb_member() -> impl Strategy<Value = MemberView> {
    (
        arb_name(),
        prop_oneof![Just(PgRole::Primary), Just(PgRole::Replica)],
        0u64..3000,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(n, role, lsn, running, nofailover)| MemberView {
            name: n.clone(),
            role,
            running,
            conn: Some(super::builders::conn(n.as_str())),
            timeline: Some(1),
            lsn: Some(Lsn(lsn)),
            nofailover,
            streaming: running && role == PgRole::Replica,
            nosync: false,
        })
}

fn arb_view() -> impl Strategy<Value = ClusterView> {
    (
        prop::option::of(arb_name()),
        prop::collection::vec(arb_member(), 0..4),
        prop_oneof![
            Just(None),
            Just(Some(String::new())),
            Just(Some(SYSID.to_string())),
            Just(Some("7311000000000000999".to_string())),
            Just(Some("{{{garbage ]]".to_string())),
        ],
        prop::option::of((
            prop::option::of(arb_name()),
            prop::option::of(arb_name()),
            prop::option::of(prop_oneof![Just(WALL - 60_000), Just(WALL + 60_000)]),
        )),
        prop::option::of(0u64..3000),
        any::<bool>(),
        prop::option::of(prop::collection::vec(arb_name(), 0..3)),
        prop_oneof![
            Just(KeyLease::Ours),
            Just(KeyLease::Other),
            Just(KeyLease::None)
        ],
        prop::option::of(Just(Revision(3))),
        prop::option::of((
            prop::option::of(arb_name()),
            prop::collection::vec(arb_name(), 0..3),
            prop_oneof![Just(0usize), Just(0usize), Just(1usize), Just(2usize)],
        )),
    )
        .prop_map(
            |(
                leader,
                members,
                initialize,
                failover,
                optime,
                has_config,
                failsafe,
                lease,
                config_garbage,
                sync,
            )| ClusterView {
                initialize,
                leader: leader.map(|holder| LeaderKey {
                    holder,
                    revision: Revision(5),
                    lease,
                }),
                members,
                failover: failover.map(|(leader, candidate, scheduled_at_ms)| FailoverRequest {
                    leader,
                    candidate,
                    scheduled_at_ms,
                    revision: Revision(7),
                }),
                optime: optime.map(Lsn),
                history: vec![TimelineSwitch {
                    timeline: 1,
                    switch_lsn: Lsn(1500),
                }],
                has_config,
                failsafe,
                config_garbage,
                sync: sync.map(|(leader, standbys, quorum)| SyncKey {
                    leader,
                    standbys,
                    quorum,
                    revision: Revision(9),
                }),
            },
        )
}

fn arb_job() -> impl Strategy<Value = Option<RunningJob>> {
    prop::option::of(
        (
            prop_oneof![
                Just(JobKind::Start),
                Just(JobKind::Clone),
                Just(JobKind::Rewind),
                Just(JobKind::Restart),
                Just(JobKind::Bootstrap)
            ],
            any::<bool>(),
        )
            .prop_map(|(kind, primary)| RunningJob {
                kind,
                since: Millis(900_000),
                primary,
            }),
    )
}

prop_compose! {
    pub(super) fn arb_obs()(
        me in arb_name(),
        dcs_up in prop::bool::weighted(0.8),
        view in arb_view(),
        pg in arb_pg(),
        lease in prop::option::of(0u64..60_000),
        job in arb_job(),
        peers in prop::collection::vec((arb_name(), 0u64..3000, any::<bool>()), 0..3),
        bootstrapping in any::<bool>(),
        following in prop::option::of(arb_name()),
        down in prop::option::of(0u64..400_000),
        last in prop::option::of((prop_oneof![Just(JobKind::Rewind), Just(JobKind::Start), Just(JobKind::Clone)], any::<bool>(), 0u64..60_000)),
        fence in prop_oneof![
            Just(FenceState::Disabled),
            Just(FenceState::Unavailable),
            Just(FenceState::Ready { armed: None }),
            Just(FenceState::Ready { armed: Some(Millis(1_005_000)) }),
        ],
        watchdog in prop_oneof![Just(WatchdogState::Off), Just(WatchdogState::Usable), Just(WatchdogState::Unusable)],
        failsafe in prop::option::of(0u64..60_000),
        failsafe_leader in prop::option::of(arb_name()),
        request in prop::option::of(prop_oneof![Just(LocalRequest::Restart), Just(LocalRequest::Reinitialize)]),
        sync_replicas in prop::collection::vec(arb_name(), 0..3),
        sync_names in prop::option::of(super::proptests_quorum::arb_sync_names()),
    ) -> Observation {
        let now = Millis(1_000_000);
        Observation {
            me,
            now,
            wall_ms: WALL,
            dcs: if dcs_up { DcsView::Reachable(view) } else { DcsView::Unreachable { since: Millis(990_000) } },
            pg,
            // Lease validity anywhere from 30 s ago to 30 s ahead.
            lease_valid_until: lease.map(|l| Millis(now.0 + l).since(Millis(30_000))),
            job,
            last_job: last.map(|(kind, ok, ago)| JobResult { kind, ok, at: now.since(Millis(ago)) }),
            pg_down_since: down.map(|d| now.since(Millis(d))),
            not_streaming_since: down.map(|d| now.since(Millis(d / 50))),
            leader_vacant_since: None,
            peers: peers.into_iter().map(|(n, lsn, primary)| PeerStatus { running_primary: primary, ..peer(n.as_str(), lsn) }).collect(),
            bootstrapping,
            following_since: down.map(|d| now.since(Millis(d / 20))),
            following,
            request,
            fence,
            watchdog,
            failsafe_valid_until: failsafe.map(|l| Millis(now.0 + l).since(Millis(30_000))),
            failsafe_leader,
            streaming_replicas: vec![name("pg2"), name("pg3")],
            sync_replicas,
            sync_names,
        }
    }
}

prop_compose! {
    pub(super) fn arb_cfg()(
        pause in prop::bool::weighted(0.2),
        use_slots in any::<bool>(),
        rewind in any::<bool>(),
        nofailover in any::<bool>(),
        pst in prop_oneof![Just(0u64), Just(300_000u64)],
        fence in prop::bool::weighted(0.8),
        watchdog in prop_oneof![Just(WatchdogMode::Off), Just(WatchdogMode::Automatic), Just(WatchdogMode::Required)],
        failsafe_mode in any::<bool>(),
        ttl in prop_oneof![Just(10u64), Just(30u64)],
        sync in prop_oneof![Just(SyncMode::Off), Just(SyncMode::On), Just(SyncMode::Quorum)],
        strict in any::<bool>(),
        sync_count in 1usize..3,
        sync_lag in prop::option::of(0u64..2000),
    ) -> HaConfig {
        HaConfig {
            pause, use_slots, use_pg_rewind: rewind, nofailover,
            primary_start_timeout: Millis(pst),
            fence, watchdog, failsafe_mode,
            ttl: Millis::secs(ttl),
            synchronous_mode: sync,
            synchronous_mode_strict: strict,
            synchronous_node_count: sync_count,
            maximum_lag_on_syncnode: sync_lag,
            ..HaConfig::default()
        }
    }
}

/// The lease is proven for an action at `i`: held and fresh, or won/renewed earlier in the batch.
fn lease_proven(obs: &Observation, actions: &[Action], i: usize) -> bool {
    let holds = matches!(&obs.dcs, DcsView::Reachable(v) if v.leader.as_ref().is_some_and(|l| l.holder == obs.me));
    (holds && lease_is_fresh(obs))
        || actions[..i].iter().any(|a| {
            matches!(
                a,
                Action::AcquireLease | Action::RenewLease | Action::TakeOverLeaderKey { .. }
            )
        })
}

/// An immediate stop and nothing else (but disarming the fence once stopped).
fn demotes_at_once(d: &Decision) -> bool {
    let imm = Action::Demote {
        mode: StopMode::Immediate,
    };
    d.actions == [imm.clone()] || d.actions == [imm, Action::DisarmFence]
}

/// Where PostgreSQL becomes (or may become) primary in a batch.
fn makes_primary(a: &Action) -> bool {
    matches!(
        a,
        Action::Promote
            | Action::Start {
                role: StartAs::Primary
            }
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn never_promotes_without_lease(obs in arb_obs(), cfg in arb_cfg()) {
        let d = decide(&obs, &cfg);
        for (i, a) in d.actions.iter().enumerate() {
            // Bootstrap's first start happens before any lease exists, in a cluster with no data elsewhere.
            let bootstrap_start = obs.bootstrapping && matches!(a, Action::Start { .. });
            if makes_primary(a) && !bootstrap_start {
                prop_assert!(lease_proven(&obs, &d.actions, i), "{a:?} without lease: {d:?}");
            }
        }
    }

    /// Issue 16's rule in the core: whatever etcd's cache says and whatever situation the
    /// member is in, a member that may be writing demotes at once (and only demotes) when its
    /// authority does not reach past the demotion point.
    #[test]
    fn no_writes_past_the_demotion_point(obs in arb_obs(), cfg in arb_cfg()) {
        let d = decide(&obs, &cfg);
        let expired = authority_until(&obs, &cfg).is_none_or(|u| obs.now >= timing::demote_at(u, &cfg));
        if writes_possible(&obs) && !cfg.pause && !obs.bootstrapping && expired {
            prop_assert!(demotes_at_once(&d), "{d:?}");
        }
    }

    /// The fence deadline only moves right after the request that proved the authority it is
    /// moved to, and PostgreSQL is never made primary before it moved (fence on).
    #[test]
    fn fence_moves_only_after_proof_and_before_promotion(obs in arb_obs(), cfg in arb_cfg()) {
        let d = decide(&obs, &cfg);
        for (i, a) in d.actions.iter().enumerate() {
            if *a == Action::ExtendFence {
                let proof = i.checked_sub(1).map(|j| &d.actions[j]);
                prop_assert!(matches!(proof, Some(Action::AcquireLease | Action::RenewLease | Action::TakeOverLeaderKey { .. } | Action::FailsafeRound)), "{d:?}");
            }
            let bootstrap_start = obs.bootstrapping && matches!(a, Action::Start { .. });
            if cfg.fence && makes_primary(a) && !bootstrap_start {
                prop_assert!(d.actions[..i].contains(&Action::ExtendFence), "{a:?} unfenced: {d:?}");
            }
        }
    }

    /// A member whose fence is gone (fence on) or whose required watchdog is unusable never
    /// takes the lease or makes PostgreSQL primary.
    #[test]
    fn no_leadership_without_guards(obs in arb_obs(), cfg in arb_cfg()) {
        let d = decide(&obs, &cfg);
        let missing = (cfg.fence && obs.fence == FenceState::Unavailable)
            || (cfg.watchdog == WatchdogMode::Required && obs.watchdog != WatchdogState::Usable);
        // Maintenance mode: the operator owns PostgreSQL and the fence is disarmed anyway.
        if missing && !obs.bootstrapping && !cfg.pause {
            let takes = |a: &Action| matches!(a, Action::AcquireLease | Action::TakeOverLeaderKey { .. });
            prop_assert!(!d.actions.iter().any(|a| takes(a) || makes_primary(a)), "{d:?}");
        }
    }

    /// Failsafe mode: a member that promised a leader not to race (within ttl) does not.
    #[test]
    fn a_failsafe_promise_is_kept(obs in arb_obs(), mut cfg in arb_cfg()) {
        cfg.failsafe_mode = true;
        let d = decide(&obs, &cfg);
        if obs.failsafe_leader.as_ref().is_some_and(|l| l != &obs.me) && !obs.bootstrapping {
            prop_assert!(!d.actions.contains(&Action::Promote), "{d:?}");
            let vacant_race = matches!(&obs.dcs, DcsView::Reachable(v) if v.leader.is_none() && v.initialize.as_deref().is_some_and(|i| !i.is_empty()));
            if vacant_race && obs.pg.role() == PgRole::Replica {
                prop_assert!(!d.actions.contains(&Action::AcquireLease), "{d:?}");
            }
        }
    }

    /// A key another member really holds (under a lease, with a member record) stops a
    /// primary at once; an untrusted one never does (it is taken over).
    #[test]
    fn primary_under_another_leader_demotes_at_once(obs in arb_obs(), cfg in arb_cfg()) {
        let d = decide(&obs, &cfg);
        if let DcsView::Reachable(v) = &obs.dcs
            && writes_possible(&obs)
            && !cfg.pause
        {
            match keys::leader_state(v, &obs.me) {
                keys::LeaderState::Other(_) => prop_assert!(demotes_at_once(&d), "{d:?}"),
                keys::LeaderState::Untrusted(_) if d.reason != Reason::LeaseNotRenewedInTime => {
                    prop_assert!(!d.actions.iter().any(|a| matches!(a, Action::Demote { mode: StopMode::Immediate })), "{d:?}");
                }
                _ => {}
            }
        }
    }

    #[test]
    fn never_races_for_a_held_or_unknown_lease(obs in arb_obs(), cfg in arb_cfg()) {
        let d = decide(&obs, &cfg);
        let vacant = matches!(&obs.dcs, DcsView::Reachable(v) if v.leader.is_none());
        if !vacant {
            prop_assert!(!d.actions.contains(&Action::AcquireLease), "{d:?}");
        }
    }

    #[test]
    fn never_promotes_and_demotes_together(obs in arb_obs(), cfg in arb_cfg()) {
        let d = decide(&obs, &cfg);
        let promotes = d.actions.iter().any(|a| matches!(a, Action::Promote));
        let demotes = d.actions.iter().any(|a| matches!(a, Action::Demote { .. }));
        prop_assert!(!(promotes && demotes), "{d:?}");
    }

    #[test]
    fn paused_cluster_never_touches_postgres(obs in arb_obs(), mut cfg in arb_cfg()) {
        cfg.pause = true;
        let d = decide(&obs, &cfg);
        for a in &d.actions {
            let touches = matches!(a, Action::Promote | Action::Demote { .. } | Action::Follow { .. } | Action::Rewind { .. } | Action::Reinitialize { .. } | Action::Clone { .. } | Action::Bootstrap)
                || matches!(a, Action::Start { .. });
            prop_assert!(!touches, "{a:?} while paused: {d:?}");
        }
    }

    #[test]
    fn data_is_only_thrown_away_when_rewind_cannot_help(obs in arb_obs(), cfg in arb_cfg()) {
        let d = decide(&obs, &cfg);
        if d.actions.iter().any(|a| matches!(a, Action::Reinitialize { .. })) {
            let rewound_ok = obs.last_job.is_some_and(|j| j.kind == JobKind::Rewind && j.ok);
            let asked = obs.request == Some(LocalRequest::Reinitialize);
            prop_assert!(!cfg.use_pg_rewind || rewound_ok || asked, "{d:?} after {:?}", obs.last_job);
        }
    }

    #[test]
    fn decide_is_deterministic(obs in arb_obs(), cfg in arb_cfg()) {
        prop_assert_eq!(decide(&obs, &cfg), decide(&obs, &cfg));
    }
}
