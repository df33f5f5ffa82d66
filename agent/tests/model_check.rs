//! Model checking "never two writable primaries" and "no promotion without the lease" across
//! three members running the real decision core, with leases that expire, compare-and-set,
//! late watch delivery, agents that stall (are not scheduled), members cut off from etcd and
//! PostgreSQL killed; and liveness: healed, a leader exists again. In synchronous mode (on,
//! and quorum) clients also commit, standbys lag, and no member may become primary without
//! every commit a primary acknowledged.
//!
//! The CI run is bounded (a couple of minutes at most on 2 cores). A deeper run:
//! `MODEL_DEPTH=14 MODEL_WALKS=2000 cargo test --release -p ha-agent --test model_check -- --ignored --nocapture`
//! (synchronous mode: `MODEL_SYNC_DEPTH`, `MODEL_SYNC_WALKS`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;

use ha_agent::ha::{self, Action, DcsView, Decision, HaConfig, Observation, Reason, SyncMode};
use model::explore::{Walks, exhaustive, random_walks, scenario};
use model::world::{Event, World, ha_config};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Exhaustive from a healthy cluster, then exhaustive again around states met on random
/// walks (so that deep situations, such as an expired lease, are explored exhaustively too).
/// `commits`: how many commits clients may write from the start (synchronous mode; one more
/// around each state met on a walk).
fn run(
    decide: fn(&Observation, &HaConfig) -> Decision,
    cfg: &HaConfig,
    fair: bool,
    depth: usize,
    walks: usize,
    commits: u8,
) -> (usize, Option<String>) {
    let mut start = World::healthy(cfg);
    start.fair = fair;
    start.max_commits = commits;
    let r = exhaustive(&start, cfg, decide, depth, 2, 97);
    let mut states = r.states;
    if let Some((v, path)) = r.violation {
        return (states, Some(format!("{v}\nafter {path:?}")));
    }
    let walks = Walks {
        seed: 0x5eed,
        count: walks,
        length: 300,
        max_faults: 3,
        sample_every: 60,
    };
    let (r, samples) = random_walks(&start, cfg, decide, &walks);
    states += r.states;
    if let Some((v, path)) = r.violation {
        return (states, Some(format!("{v}\nafter {path:?}")));
    }
    for s in samples.iter().step_by(7) {
        let mut s = s.clone();
        s.faults = 0;
        s.max_commits = s.commits.saturating_add(u8::from(commits > 0));
        let r = exhaustive(&s, cfg, decide, depth.saturating_sub(3), 1, 0);
        // (Liveness is checked along the walks and from the start above.)
        states += r.states;
        if let Some((v, path)) = r.violation {
            return (
                states,
                Some(format!(
                    "{v}\nafter {path:?} from a state met on a walk: {s:#?}"
                )),
            );
        }
    }
    (states, None)
}

#[test]
fn the_real_core_never_makes_two_primaries_and_always_elects_again() {
    let cfg = ha_config(true);
    let depth = env("MODEL_DEPTH", 7);
    let (states, violation) = run(ha::decide, &cfg, false, depth, env("MODEL_WALKS", 150), 0);
    println!("model check: {states} states explored (depth {depth}), fence on, agents may stall");
    assert!(violation.is_none(), "{}", violation.unwrap_or_default());
}

#[test]
fn without_the_fence_agents_that_never_stall_still_keep_one_primary() {
    // Agents scheduled fairly demote in time on their own (the demotion point).
    let cfg = ha_config(false);
    let (states, violation) = run(ha::decide, &cfg, true, 7, 100, 0);
    println!("model check: {states} states explored, fence off, no stalls");
    assert!(violation.is_none(), "{}", violation.unwrap_or_default());
}

#[test]
fn without_the_fence_a_stalled_agent_leaves_two_primaries() {
    // What the fence is for: an agent that is not scheduled keeps its primary running.
    let cfg = ha_config(false);
    let (_, violation) = run(ha::decide, &cfg, false, 7, 100, 0);
    let v = violation.expect("a stalled agent without a fence leaves two primaries");
    assert!(v.contains("two writable primaries"), "{v}");
}

/// Planted bug: the race winner promotes without having acquired the lease.
fn promote_without_acquiring(obs: &Observation, cfg: &HaConfig) -> Decision {
    let mut d = ha::decide(obs, cfg);
    d.actions.retain(|a| !matches!(a, Action::AcquireLease));
    d
}

/// Planted bug: a leader whose lease runs out does not demote (fence off, so nothing else
/// stops it).
fn no_demotion_on_lease_loss(obs: &Observation, cfg: &HaConfig) -> Decision {
    let d = ha::decide(obs, cfg);
    match d.reason {
        Reason::LeaseNotRenewedInTime | Reason::LeaseExpiringWithoutDcs => {
            Decision::idle(Reason::DcsUnreachableRetrying)
        }
        _ => d,
    }
}

#[test]
fn a_planted_promotion_without_the_lease_is_found() {
    let cfg = ha_config(true);
    let (_, violation) = run(promote_without_acquiring, &cfg, false, 7, 100, 0);
    let v = violation.expect("the checker finds the planted bug");
    println!("found: {v}");
    assert!(
        v.contains("without holding the leader lease") || v.contains("two writable primaries"),
        "{v}"
    );
}

#[test]
fn a_planted_missing_demotion_is_found() {
    // The leader cut off from etcd and from the other members (so they cannot see it still
    // runs), every agent scheduled fairly, no fence: the real core demotes in time...
    let cfg = ha_config(false);
    let start = World::healthy(&cfg);
    let faults = [Event::Cut(0), Event::Isolate(0)];
    let real = scenario(&start, &cfg, ha::decide, &faults, 40);
    assert!(real.is_none(), "the real core: {real:?}");
    // ...and with the demotion dropped, the checker sees two primaries.
    let (v, path) = scenario(&start, &cfg, no_demotion_on_lease_loss, &faults, 40)
        .expect("the checker finds the planted bug");
    println!("found: {v} after {} events", path.len());
    assert!(v.contains("two writable primaries"), "{v}");
}

#[test]
#[ignore = "deep run: minutes to hours; MODEL_DEPTH / MODEL_WALKS tune it"]
fn deep_model_check() {
    let cfg = ha_config(true);
    let depth = env("MODEL_DEPTH", 12);
    let (states, violation) = run(ha::decide, &cfg, false, depth, env("MODEL_WALKS", 2000), 0);
    println!("deep model check: {states} states explored (depth {depth})");
    assert!(violation.is_none(), "{}", violation.unwrap_or_default());
}

/// The model's timing with synchronous replication in `mode` (not strict).
fn sync_config(mode: SyncMode) -> HaConfig {
    HaConfig {
        synchronous_mode: mode,
        ..ha_config(true)
    }
}

#[test]
fn in_synchronous_mode_every_acknowledged_commit_is_on_the_next_primary() {
    let cfg = sync_config(SyncMode::On);
    let depth = env("MODEL_SYNC_DEPTH", 6);
    let walks = env("MODEL_SYNC_WALKS", 100);
    let (states, violation) = run(ha::decide, &cfg, false, depth, walks, 2);
    println!("model check: {states} states explored (depth {depth}), synchronous_mode on");
    assert!(violation.is_none(), "{}", violation.unwrap_or_default());
}

#[test]
fn in_quorum_mode_every_acknowledged_commit_is_on_the_next_primary() {
    let cfg = sync_config(SyncMode::Quorum);
    let depth = env("MODEL_SYNC_DEPTH", 6);
    let walks = env("MODEL_SYNC_WALKS", 100);
    let (states, violation) = run(ha::decide, &cfg, false, depth, walks, 2);
    println!("model check: {states} states explored (depth {depth}), synchronous_mode quorum");
    assert!(violation.is_none(), "{}", violation.unwrap_or_default());
}

/// Planted bug: in the leader race, a replica reads the `sync` key as naming it too.
fn ignore_the_sync_key(obs: &Observation, cfg: &HaConfig) -> Decision {
    let mut obs = obs.clone();
    let me = obs.me.clone();
    if let DcsView::Reachable(view) = &mut obs.dcs
        && view.leader.is_none()
        && let Some(key) = &mut view.sync
        && !key.standbys.contains(&me)
    {
        key.standbys.push(me);
    }
    ha::decide(&obs, cfg)
}

#[test]
fn a_planted_promotion_of_a_lagging_non_synchronous_replica_is_found() {
    // A commit acknowledged once the synchronous standby m1 flushed it (m2 has not received
    // it yet); then the agents of the leader and of m1 freeze (the fence stops the leader's
    // PostgreSQL before its lease expires). The real core leaves the lease vacant: only m1
    // may take it...
    // ...and with the key ignored, m2 takes over without the acknowledged commit.
    planted_sync_bug_is_found(
        &[
            Event::Write(0),
            Event::Replicate(1),
            Event::Stall(0),
            Event::Stall(1),
        ],
        ignore_the_sync_key,
    );
}

/// With synchronous mode on and one commit allowed, `events` from a healthy cluster violate
/// nothing with the real core and break "every acknowledged commit is kept" with `planted`.
fn planted_sync_bug_is_found(events: &[Event], planted: fn(&Observation, &HaConfig) -> Decision) {
    let cfg = sync_config(SyncMode::On);
    let mut start = World::healthy(&cfg);
    start.max_commits = 1;
    let real = scenario(&start, &cfg, ha::decide, events, 40);
    assert!(real.is_none(), "the real core: {real:?}");
    let (v, path) =
        scenario(&start, &cfg, planted, events, 40).expect("the checker finds the planted bug");
    println!("found: {v} after {} events", path.len());
    assert!(v.contains("without acknowledged commit"), "{v}");
}

#[test]
fn a_planted_promotion_of_a_lagging_non_synchronous_replica_is_found_by_search() {
    let cfg = sync_config(SyncMode::On);
    let (_, violation) = run(ignore_the_sync_key, &cfg, false, 6, 100, 2);
    let v = violation.expect("the checker finds the planted bug");
    println!("found: {v}");
    assert!(v.contains("without acknowledged commit"), "{v}");
}

#[test]
#[ignore = "deep run: minutes to hours; MODEL_SYNC_DEPTH / MODEL_SYNC_WALKS tune it"]
fn deep_model_check_synchronous() {
    for mode in [SyncMode::On, SyncMode::Quorum] {
        let cfg = sync_config(mode);
        let depth = env("MODEL_SYNC_DEPTH", 9);
        let (states, violation) = run(
            ha::decide,
            &cfg,
            false,
            depth,
            env("MODEL_SYNC_WALKS", 1000),
            3,
        );
        println!("deep model check, {mode:?}: {states} states explored (depth {depth})");
        assert!(violation.is_none(), "{}", violation.unwrap_or_default());
    }
}

/// Planted bug: the leader names in the `sync` key every standby it sets in
/// `synchronous_standby_names`, in the same batch, without waiting for PostgreSQL to
/// confirm that the standby holds every commit acknowledged before.
fn name_standbys_before_confirmed(obs: &Observation, cfg: &HaConfig) -> Decision {
    let mut d = ha::decide(obs, cfg);
    let set = d.actions.iter().find_map(|a| match a {
        Action::SetSyncStandbyNames(ha::SyncStandbyNames::First { names, .. }) => {
            Some(names.clone())
        }
        _ => None,
    });
    if let Some(names) = set {
        for a in &mut d.actions {
            if let Action::WriteSyncKey { standbys, .. } = a {
                standbys.clone_from(&names);
            }
        }
    }
    d
}

#[test]
fn a_planted_sync_key_naming_an_unconfirmed_standby_is_found() {
    // A commit acknowledged by the synchronous standby m1 alone; m1 is cut off from the
    // others, so the leader drops it and sets m2 (which lags) instead; then the leader's
    // agent freezes. The real core names m2 in the key only once it has caught up, so
    // nobody takes over...
    // ...and with the key written at once, m2 takes over without the acknowledged commit.
    planted_sync_bug_is_found(
        &[
            Event::Write(0),
            Event::Replicate(1),
            Event::Isolate(1),
            Event::Cycle(0),
            Event::Stall(0),
        ],
        name_standbys_before_confirmed,
    );
}
