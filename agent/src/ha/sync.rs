//! Synchronous replication (`synchronous_mode`): which standbys the leader makes synchronous,
//! in which order it tells PostgreSQL and etcd, and who may take over.
//!
//! Rules (checked by the table cases in `tests/sync.rs` and by `proptests.rs`):
//! - **Choice.** The leader's synchronous standbys are chosen from the members its WAL senders
//!   stream to now (`Observation::streaming_replicas`), not tagged `nosync`, and within
//!   `maximum_lag_on_syncnode` bytes of the leader (`None`: unlimited; a member whose position
//!   is unknown is then not eligible). Members the `sync` key already names come first, so a
//!   healthy synchronous standby is kept rather than replaced by a more advanced one; then
//!   the most advanced, then by name. At most `synchronous_node_count` are chosen.
//! - **PostgreSQL.** `synchronous_standby_names` is `FIRST n (a, b)` with `n` = the number
//!   chosen, so *every* listed standby must confirm a commit (a `sync` key naming any one of
//!   them is then safe). With none chosen: `'*'` under `synchronous_mode_strict` (commits wait
//!   until some standby confirms them), else empty (asynchronous fallback).
//! - **Order.** The `sync` key never names a member that may miss an acknowledged commit:
//!   a standby is *removed* from the key first (compare-and-set; a lost compare aborts the
//!   batch), and only then from PostgreSQL; a standby is *added* to PostgreSQL first, and to
//!   the key only once `pg_stat_replication` reports it `sync` (`Observation::sync_replicas`).
//!   When a removal is needed, additions wait for the next cycle.
//! - **Take-over.** With `synchronous_mode` on and a `sync` key that names a leader, only that
//!   leader or a standby the key names may take a vacant lease or be a switchover/failover
//!   candidate. Without a `sync` key (synchronous mode just switched on, nothing recorded yet)
//!   the ordinary rules apply, as in Patroni. Before promoting, the new leader writes the key
//!   naming only itself and sets `synchronous_standby_names` to `'*'` (strict) or empty, as
//!   Patroni does; the next cycle chooses standbys again.
//! - Switching synchronous mode off deletes the key first, then empties
//!   `synchronous_standby_names` (also whenever PostgreSQL still reports a synchronous
//!   standby with the mode off).
//!
//! `synchronous_mode: quorum` (`ANY k (...)`, the `sync` key's `quorum` field, take-over by
//! votes) lives in `quorum.rs` and `quorum_vote.rs`; this module dispatches to them.
//!
//! A `sync` key with `quorum` > 0 (written in quorum mode) names voters, not standbys that
//! each hold every acknowledged commit: with synchronous mode on, such a key is read as naming
//! no standby (the leader rewrites it before it names any), and taking over follows the quorum
//! rule until then.

use super::action::lag;
pub use super::sync_names::SyncStandbyNames;
use super::{Action, ClusterView, HaConfig, Ineligible, Lsn, MemberName, Observation, Revision};

/// `synchronous_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Asynchronous replication.
    #[default]
    Off,
    /// `synchronous_mode: true`: `FIRST n (...)`, failover only to a listed standby.
    On,
    /// `synchronous_mode: quorum`: `ANY k (...)`; a member takes over once it has seen
    /// enough of the voters the `sync` key names (`quorum_vote`).
    Quorum,
}

impl SyncMode {
    /// Patroni's spelling in the dynamic configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Off => "false",
            SyncMode::On => "true",
            SyncMode::Quorum => "quorum",
        }
    }
}

/// The `sync` key as decisions need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncKey {
    /// The leader that wrote it.
    pub leader: Option<MemberName>,
    /// The synchronous standbys it names (`sync_standby`, comma-separated in etcd); in
    /// quorum mode, the voters.
    pub standbys: Vec<MemberName>,
    /// `quorum`: how many of the voters (and the leader) besides itself a member must see at
    /// or behind its own position before it takes over (0 with synchronous mode on).
    pub quorum: usize,
    /// mod_revision, for compare-and-set.
    pub revision: Revision,
}

/// Whether `name` may be a switchover or failover candidate under the synchronous-mode rule
/// (see the module documentation): the `sync` key's leader or a member it names (a standby,
/// or in quorum mode a voter). Actually taking the lease in quorum mode (or under a key
/// written in quorum mode) also needs the votes of `quorum_vote`.
pub fn may_take_over(view: &ClusterView, cfg: &HaConfig, name: &MemberName) -> bool {
    if cfg.synchronous_mode == SyncMode::Off {
        return true;
    }
    match &view.sync {
        Some(SyncKey {
            leader: Some(l),
            standbys,
            ..
        }) => l == name || standbys.contains(name),
        _ => true,
    }
}

/// Whether this member (at `my_lsn`) may take the vacant lease or promote under the
/// synchronous-mode rules: the named rule with synchronous mode on, the quorum rule
/// (`quorum_vote`) in quorum mode or under a key written in quorum mode.
pub(super) fn eligible(
    obs: &Observation,
    view: &ClusterView,
    cfg: &HaConfig,
    my_lsn: Lsn,
) -> Result<(), Ineligible> {
    if let Some(key) = super::quorum_vote::rule_key(view, cfg) {
        super::quorum_vote::eligible(obs, key, my_lsn)
    } else if may_take_over(view, cfg, &obs.me) {
        Ok(())
    } else {
        Err(Ineligible::NotSynchronous)
    }
}

/// The members the leader `obs.me` at `my_lsn` would make synchronous, in priority order.
pub fn choose(
    obs: &Observation,
    view: &ClusterView,
    cfg: &HaConfig,
    my_lsn: Lsn,
) -> Vec<MemberName> {
    let current = current_standbys(view, &obs.me);
    let mut eligible: Vec<(bool, Lsn, &MemberName)> = view
        .members
        .iter()
        .filter(|m| m.name != obs.me && !m.nosync && obs.streaming_replicas.contains(&m.name))
        .filter(|m| match cfg.maximum_lag_on_syncnode {
            None => true,
            Some(max) => m.lsn.is_some_and(|l| lag(my_lsn, l) <= max),
        })
        .map(|m| {
            (
                current.contains(&m.name),
                m.lsn.unwrap_or_default(),
                &m.name,
            )
        })
        .collect();
    // Current ones first, then the most advanced, then by name.
    eligible.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    eligible
        .into_iter()
        .take(cfg.synchronous_node_count.max(1))
        .map(|(_, _, n)| n.clone())
        .collect()
}

/// The standbys the `sync` key names for leader `me` (none when it names another leader, or
/// when it was written in quorum mode: its voters need not hold every acknowledged commit).
fn current_standbys(view: &ClusterView, me: &MemberName) -> Vec<MemberName> {
    match &view.sync {
        Some(k) if k.leader.as_ref() == Some(me) && k.quorum == 0 => k.standbys.clone(),
        _ => Vec::new(),
    }
}

/// What `synchronous_standby_names` should be for `chosen`.
pub fn standby_names(cfg: &HaConfig, chosen: &[MemberName]) -> SyncStandbyNames {
    if cfg.synchronous_mode == SyncMode::Off {
        SyncStandbyNames::Off
    } else if !chosen.is_empty() {
        SyncStandbyNames::First {
            count: chosen.len(),
            names: chosen.to_vec(),
        }
    } else if cfg.synchronous_mode_strict {
        SyncStandbyNames::Any
    } else {
        SyncStandbyNames::Off
    }
}

/// A running primary holding the lease: keep `synchronous_standby_names` and the `sync` key
/// in order (see the module documentation for the order).
pub(super) fn leader_actions(
    obs: &Observation,
    view: &ClusterView,
    cfg: &HaConfig,
    my_lsn: Lsn,
) -> Vec<Action> {
    let revision = view.sync.as_ref().map(|k| k.revision);
    if cfg.synchronous_mode == SyncMode::Quorum {
        return super::quorum_leader::leader_actions(obs, view, cfg, my_lsn);
    }
    if cfg.synchronous_mode == SyncMode::Off {
        // Only when something is left to undo: a key, or standbys PostgreSQL still waits for.
        let mut actions = Vec::new();
        if let Some(r) = revision {
            actions.push(Action::DeleteSyncKey { revision: r });
        }
        if revision.is_some() || !obs.sync_replicas.is_empty() {
            actions.push(Action::SetSyncStandbyNames(SyncStandbyNames::Off));
        }
        return actions;
    }
    // A key written in quorum mode counts as not ours: it is rewritten before it names any
    // standby (its voters need not hold every acknowledged commit).
    let ours = view
        .sync
        .as_ref()
        .is_some_and(|k| k.leader.as_ref() == Some(&obs.me) && k.quorum == 0);
    let current = current_standbys(view, &obs.me);
    let chosen = choose(obs, view, cfg, my_lsn);
    let mut actions = Vec::new();
    let kept: Vec<MemberName> = current
        .iter()
        .filter(|n| chosen.contains(n))
        .cloned()
        .collect();
    if ours && kept.len() < current.len() {
        // Removal: the key first, then PostgreSQL; additions wait for the next cycle.
        actions.push(Action::WriteSyncKey {
            standbys: kept,
            quorum: 0,
            revision,
        });
        actions.push(Action::SetSyncStandbyNames(standby_names(cfg, &chosen)));
        return actions;
    }
    // Addition: PostgreSQL first, then the key with those PostgreSQL confirms as synchronous,
    // under this very setting (a member confirmed under another one, such as `ANY k` from
    // quorum mode, need not hold every acknowledged commit).
    let wanted = standby_names(cfg, &chosen);
    let in_effect = obs.sync_names.as_ref() == Some(&wanted);
    actions.push(Action::SetSyncStandbyNames(wanted));
    let confirmed: Vec<MemberName> = chosen
        .iter()
        .filter(|n| current.contains(n) || (in_effect && obs.sync_replicas.contains(n)))
        .cloned()
        .collect();
    let sorted = |v: &[MemberName]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    if !ours || sorted(&confirmed) != sorted(&current) {
        actions.push(Action::WriteSyncKey {
            standbys: confirmed,
            quorum: 0,
            revision,
        });
    }
    actions
}

/// Before promoting (sync mode on or quorum): the key names only us, and PostgreSQL waits
/// for any standby (strict) or none until the next cycle chooses. In quorum mode this is the
/// safe reading of Patroni's pre-promote step: we hold every acknowledged commit (we won by
/// the quorum rule), so a key naming no voter claims nothing we cannot keep.
pub(super) fn before_promote(view: &ClusterView, cfg: &HaConfig) -> Vec<Action> {
    if cfg.synchronous_mode == SyncMode::Off {
        return Vec::new();
    }
    vec![
        Action::WriteSyncKey {
            standbys: Vec::new(),
            quorum: 0,
            revision: view.sync.as_ref().map(|k| k.revision),
        },
        Action::SetSyncStandbyNames(standby_names(cfg, &[])),
    ]
}
