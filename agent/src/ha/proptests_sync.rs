//! Property tests of the synchronous replication rules (`sync.rs`): never promote a member
//! that may miss an acknowledged commit, and never let the `sync` key name one.
//!
//! Model: with synchronous mode on and a `sync` key naming a leader, the members sure to hold
//! every acknowledged commit are that leader and the standbys the key names (the leader set
//! `FIRST n` over exactly those before naming them). The key, in turn, may name only standbys
//! PostgreSQL lists with every one required (`FIRST n` over `n` names) and reports synchronous,
//! or that it already named.

use proptest::prelude::*;

use super::proptests::{arb_cfg, arb_obs};
use super::*;

/// The standbys PostgreSQL must wait for after `a`: all names of a `FIRST n` over `n` names.
fn required(a: &SyncStandbyNames) -> Vec<MemberName> {
    match a {
        SyncStandbyNames::First { count, names } if *count == names.len() => names.clone(),
        _ => Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// A member becomes primary (promotes after taking the lease) only if the `sync` key
    /// names it or it as the leader, when synchronous mode is on and the key names a leader.
    #[test]
    fn never_promotes_a_member_that_may_miss_an_acknowledged_commit(obs in arb_obs(), cfg in arb_cfg()) {
        let d = decide(&obs, &cfg);
        let DcsView::Reachable(view) = &obs.dcs else { return Ok(()) };
        let Some(SyncKey { leader: Some(l), standbys, quorum: 0, .. }) = &view.sync else { return Ok(()) };
        // Quorum mode (and keys written in it) follow the quorum rule: `proptests_quorum.rs`.
        if cfg.synchronous_mode != SyncMode::On {
            return Ok(());
        }
        if d.actions.contains(&Action::Promote) {
            prop_assert!(l == &obs.me || standbys.contains(&obs.me), "{d:?}");
        }
    }

    /// The key only ever names standbys that hold every acknowledged commit: after this batch
    /// PostgreSQL requires each of them, and each is already reported synchronous or was
    /// already named by us. A standby PostgreSQL stops requiring leaves the key first.
    #[test]
    fn the_sync_key_names_only_standbys_with_every_commit(obs in arb_obs(), cfg in arb_cfg()) {
        // Quorum mode writes voters, not standbys: `proptests_quorum.rs`.
        if cfg.synchronous_mode != SyncMode::On {
            return Ok(());
        }
        let d = decide(&obs, &cfg);
        let DcsView::Reachable(view) = &obs.dcs else { return Ok(()) };
        let named_by_us: Vec<MemberName> = match &view.sync {
            Some(k) if k.leader.as_ref() == Some(&obs.me) && k.quorum == 0 => k.standbys.clone(),
            _ => Vec::new(),
        };
        let set = d.actions.iter().position(|a| matches!(a, Action::SetSyncStandbyNames(_)));
        for a in &d.actions {
            let Action::WriteSyncKey { standbys, .. } = a else { continue };
            for s in standbys {
                prop_assert!(obs.sync_replicas.contains(s) || named_by_us.contains(s), "{s} in {d:?}");
                if let Some(Action::SetSyncStandbyNames(names)) = set.map(|j| &d.actions[j]) {
                    prop_assert!(required(names).contains(s), "{s} not required by {names:?}: {d:?}");
                }
            }
        }
        // Dropping a named standby from PostgreSQL: a key write without it comes first.
        if let Some(j) = set
            && let Action::SetSyncStandbyNames(names) = &d.actions[j]
        {
            let dropped = named_by_us.iter().any(|s| !required(names).contains(s));
            if dropped {
                let ok = match d.actions[..j].iter().find(|a| matches!(a, Action::WriteSyncKey { .. } | Action::DeleteSyncKey { .. })) {
                    Some(Action::DeleteSyncKey { .. }) => true,
                    Some(Action::WriteSyncKey { standbys, .. }) => standbys.iter().all(|s| required(names).contains(s)),
                    _ => false,
                };
                prop_assert!(ok, "dropped a named standby before the key: {d:?}");
            }
        }
    }
}
