//! Quorum mode: who may take over (Patroni's `_is_healthiest_node` with quorum commit).
//!
//! The `sync` key names a leader `L`, voters `V` and a number `q`. The leader kept
//! `synchronous_standby_names = ANY n (S)` with `|V ∪ S| <= q + n` (`quorum.rs`), so every
//! acknowledged commit is held by `L` and at least `n` members of `S`. A member that sees
//! `q + 1` members of `{L} ∪ V` (itself included when it is one) at or behind its own WAL
//! position has seen at least one holder of every acknowledged commit, and therefore holds
//! them all. That is the rule:
//! - **votes**: itself if it is in `{L} ∪ V`, plus every other member of `{L} ∪ V` that
//!   answered with a WAL position at or behind ours and is not a running primary;
//! - it needs `q + 1` votes; the key's own leader needs none (it wrote every commit), as in
//!   Patroni;
//! - the ordinary race rules still apply on top (no eligible member that answered is ahead,
//!   within `maximum_lag_on_failover`), so the winner is the most advanced of those it saw.
//!
//! Differences from Patroni, both on the safe side: a voter tagged `nofailover` still votes
//! (its position is as good a witness as any; Patroni skips it, which only makes a quorum
//! harder to reach), and a failover or switchover candidate needs the votes too (Patroni
//! lets a named candidate promote without them; here a switchover's old leader, a voter
//! itself, gives its vote once it answers).
//!
//! Pure: no I/O, no clock.

use super::{ClusterView, Ineligible, Lsn, MemberName, Observation, SyncKey};

/// The members whose word counts: the key's leader and its voters.
pub fn voting_set(key: &SyncKey) -> Vec<MemberName> {
    let mut v: Vec<MemberName> = key.leader.iter().cloned().collect();
    for n in &key.standbys {
        if !v.contains(n) {
            v.push(n.clone());
        }
    }
    v
}

/// How many of the voting set vouch that `me` at `my_lsn` is not behind them.
pub fn votes(obs: &Observation, key: &SyncKey, my_lsn: Lsn) -> usize {
    let voting = voting_set(key);
    let mine = usize::from(voting.contains(&obs.me));
    let others = obs
        .peers
        .iter()
        .filter(|p| p.name != obs.me && voting.contains(&p.name))
        .filter(|p| !p.running_primary && p.lsn.is_some_and(|l| l <= my_lsn))
        .count();
    mine + others
}

/// Whether this member may take over under the quorum rule (module documentation).
pub(super) fn eligible(
    obs: &Observation,
    _view: &ClusterView,
    key: &SyncKey,
    my_lsn: Lsn,
) -> Result<(), Ineligible> {
    if key.leader.as_ref() == Some(&obs.me) {
        return Ok(());
    }
    let needed = key.quorum.saturating_add(1);
    let votes = votes(obs, key, my_lsn);
    if votes >= needed {
        Ok(())
    } else {
        Err(Ineligible::QuorumNotReached { votes, needed })
    }
}
