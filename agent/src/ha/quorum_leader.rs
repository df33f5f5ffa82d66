//! Quorum mode, the leader's side: from what it observes (the `sync` key, the setting in
//! force, the confirmed and the eligible standbys) to the state and target of `quorum.rs`,
//! and from the planned steps back to actions (`WriteSyncKey`, `SetSyncStandbyNames`).
//!
//! Besides the plan: a missing key, or one naming another leader, is claimed first as naming
//! no voter (the state the plan starts from); strict mode without an eligible standby keeps
//! the setting (or sets `'*'`) so commits wait; a `FIRST n` already at the target is
//! rewritten as the equivalent `ANY n`.

use super::action::lag;
use super::quorum::{QuorumState, Step, count, plan};
use super::sync::{SyncMode, SyncStandbyNames};
use super::{Action, ClusterView, HaConfig, Lsn, MemberName, Observation};

/// Quorum mode, running primary holding the lease: the actions of this cycle (module
/// documentation).
pub(super) fn leader_actions(
    obs: &Observation,
    view: &ClusterView,
    cfg: &HaConfig,
    my_lsn: Lsn,
) -> Vec<Action> {
    let key = view
        .sync
        .as_ref()
        .filter(|k| k.leader.as_ref() == Some(&obs.me));
    let revision = view.sync.as_ref().map(|k| k.revision);
    let in_force = obs.sync_names.clone().unwrap_or(SyncStandbyNames::Off);
    let (numsync, listed) = in_force.count_and_names();
    let eligible = eligible(obs, view, cfg, my_lsn);
    // The names the masks range over: voters, listed, eligible (sorted, without us).
    let mut names: Vec<MemberName> = key.map(|k| k.standbys.clone()).unwrap_or_default();
    names.extend(listed.iter().cloned());
    names.extend(eligible.iter().cloned());
    names.retain(|n| n != &obs.me);
    names.sort();
    names.dedup();
    let mask = |list: &[MemberName]| -> u32 {
        list.iter()
            .filter_map(|n| names.iter().position(|m| m == n))
            .filter(|i| *i < 32)
            .fold(0, |m, i| m | (1 << i))
    };
    let cur = QuorumState {
        quorum: key.map_or(0, |k| k.quorum),
        voters: key.map_or(0, |k| mask(&k.standbys)),
        numsync: numsync.min(count(mask(&listed))),
        sync: mask(&listed),
    };
    let active = mask(&eligible);
    let confirmed = count(mask(&obs.sync_replicas) & cur.sync);
    let steps = if active == 0 && cfg.synchronous_mode_strict {
        // Strict without eligible standbys: keep what PostgreSQL lists (commits wait for it),
        // or `'*'`; the key stays as it is.
        let mut steps = Vec::new();
        if matches!(in_force, SyncStandbyNames::Off) {
            if cur.voters != 0 {
                // A key naming voters over an asynchronous setting claims too much.
                steps.push(Step::Key(QuorumState {
                    quorum: 0,
                    voters: 0,
                    ..cur
                }));
            }
            steps.push(Step::Names(cur));
        }
        steps
    } else {
        let n = cfg.synchronous_node_count.max(1).min(count(active));
        let target = QuorumState {
            quorum: count(active) - n,
            voters: active,
            numsync: n,
            sync: active,
        };
        plan(cur, target, confirmed, active, names.len().min(32))
    };
    let unmask = |m: u32| -> Vec<MemberName> {
        names
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < 32 && m & (1 << i) != 0)
            .map(|(_, n)| n.clone())
            .collect()
    };
    let mut actions = Vec::new();
    let mut key_written = false;
    for step in steps {
        match step {
            Step::Key(s) => {
                key_written = true;
                actions.push(Action::WriteSyncKey {
                    standbys: unmask(s.voters),
                    quorum: s.quorum,
                    revision,
                });
            }
            Step::Names(s) => actions.push(Action::SetSyncStandbyNames(names_for(
                cfg,
                s.numsync,
                unmask(s.sync),
            ))),
        }
    }
    // Claim the key when it is missing or names another leader (as naming no voter: the
    // state the search started from), before anything else.
    if key.is_none() && !key_written {
        actions.insert(
            0,
            Action::WriteSyncKey {
                standbys: Vec::new(),
                quorum: 0,
                revision,
            },
        );
    }
    // PostgreSQL already has the target but as `FIRST n`: the same guarantee, written as
    // `ANY n` (Patroni does the same once nothing else is left to change).
    let set_names = actions
        .iter()
        .any(|a| matches!(a, Action::SetSyncStandbyNames(_)));
    if !set_names && matches!(in_force, SyncStandbyNames::First { .. }) && cur.sync != 0 {
        actions.push(Action::SetSyncStandbyNames(names_for(
            cfg,
            cur.numsync,
            unmask(cur.sync),
        )));
    }
    actions
}

/// `ANY n (names)`, or with nobody `'*'` (strict) or empty.
fn names_for(cfg: &HaConfig, n: usize, names: Vec<MemberName>) -> SyncStandbyNames {
    if names.is_empty() || n == 0 {
        if cfg.synchronous_mode_strict && cfg.synchronous_mode != SyncMode::Off {
            SyncStandbyNames::Any
        } else {
            SyncStandbyNames::Off
        }
    } else {
        SyncStandbyNames::Quorum { count: n, names }
    }
}

/// The members that may be listed (module documentation: the target), sorted.
pub fn eligible(
    obs: &Observation,
    view: &ClusterView,
    cfg: &HaConfig,
    my_lsn: Lsn,
) -> Vec<MemberName> {
    let ok: Vec<&super::MemberView> = view
        .members
        .iter()
        .filter(|m| m.name != obs.me && !m.nosync && obs.streaming_replicas.contains(&m.name))
        .filter(|m| match cfg.maximum_lag_on_syncnode {
            None => true,
            Some(max) => m.lsn.is_some_and(|l| lag(my_lsn, l) <= max),
        })
        .collect();
    let mut out: Vec<MemberName> = ok
        .iter()
        .filter(|m| !m.nofailover)
        .map(|m| m.name.clone())
        .collect();
    for m in ok.iter().filter(|m| m.nofailover) {
        if out.len() < cfg.synchronous_node_count.max(1) {
            out.push(m.name.clone());
        }
    }
    out.sort();
    out
}
