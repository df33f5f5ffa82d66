//! Quorum mode: who may take over (Patroni's `_is_healthiest_node` with quorum commit).
//!
//! The `sync` key names a leader `L`, voters `V` and a number `q`. The leader kept
//! `synchronous_standby_names = ANY n (S)` with `|V ∪ S| <= q + n` (`quorum.rs`), so every
//! acknowledged commit is held by `L` and at least `n` members of `S`. A member that sees
//! `q + 1` members of `{L} ∪ V` (itself included when it is one) at or behind its own WAL
//! position has seen at least one holder of every acknowledged commit, and therefore holds
//! them all. That is the rule:
//! - **votes**: itself if it is in `{L} ∪ V`, plus every other member of `{L} ∪ V` that
//!   answered with a WAL position at or behind ours, is not a running primary, and took that
//!   position after it saw `L` lose the `leader` key (`PeerStatus::leader_seen`: an answer is
//!   up to a loop old, and before that `L` may have had later commits acknowledged);
//! - it needs `q + 1` votes; the key's own leader needs none (it wrote every commit), as in
//!   Patroni;
//! - the ordinary race rules still apply on top (no eligible member that answered is ahead,
//!   within `maximum_lag_on_failover`), so the winner is the most advanced of those it saw;
//! - a failover or switchover candidate holds the others back only while, from what they
//!   see, it has its votes (a candidate behind a voter never gets that voter's vote).
//!
//! The rule applies in quorum mode, and with synchronous mode on under a key written in
//! quorum mode (`quorum` > 0), whose voters need not each hold every commit ([`rule_key`]).
//!
//! Differences from Patroni, both on the safe side: a voter tagged `nofailover` still votes
//! (its position is as good a witness as any; Patroni skips it, which only makes a quorum
//! harder to reach), and a failover or switchover candidate needs the votes too (Patroni
//! lets a named candidate promote without them; here a switchover's old leader, a voter
//! itself, gives its vote once it answers).
//!
//! Pure: no I/O, no clock.

use super::{
    ClusterView, HaConfig, Ineligible, LeaderSeen, Lsn, MemberName, Observation, SyncKey, SyncMode,
};

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

/// How many of the voting set vouch for `candidate` at `lsn`: itself if it is in the set,
/// plus each other member of the set among `answers` (name, position) at or behind `lsn`.
pub fn votes_for(
    key: &SyncKey,
    candidate: &MemberName,
    lsn: Lsn,
    answers: &[(MemberName, Option<Lsn>)],
) -> usize {
    let voting = voting_set(key);
    let mine = usize::from(voting.contains(candidate));
    let others = answers
        .iter()
        .filter(|(n, _)| n != candidate && voting.contains(n))
        .filter(|(_, l)| l.is_some_and(|l| l <= lsn))
        .count();
    mine + others
}

/// The answers of the other members this cycle that may count as votes under `key`: not
/// running primaries (a running primary means the race must not happen at all), and with a
/// WAL position taken after they saw the key's leader lose the `leader` key (before that,
/// the old leader may still have had commits acknowledged past the position they answered).
pub fn answers(obs: &Observation, key: &SyncKey) -> Vec<(MemberName, Option<Lsn>)> {
    obs.peers
        .iter()
        .filter(|p| p.name != obs.me && !p.running_primary)
        .filter(|p| match &p.leader_seen {
            LeaderSeen::Vacant => true,
            LeaderSeen::Held(l) => key.leader.as_ref() != Some(l),
            LeaderSeen::Unknown => false,
        })
        .map(|p| (p.name.clone(), p.lsn))
        .collect()
}

/// How many of the voting set vouch that `me` at `my_lsn` is not behind them.
pub fn votes(obs: &Observation, key: &SyncKey, my_lsn: Lsn) -> usize {
    votes_for(key, &obs.me, my_lsn, &answers(obs, key))
}

/// Whether `candidate` at `lsn` has the votes it needs, as far as `answers` show.
pub fn has_quorum(
    key: &SyncKey,
    candidate: &MemberName,
    lsn: Lsn,
    answers: &[(MemberName, Option<Lsn>)],
) -> bool {
    key.leader.as_ref() == Some(candidate) || votes_for(key, candidate, lsn, answers) > key.quorum
}

/// The key when the quorum rule decides who takes over: quorum mode, or synchronous mode on
/// under a key written in quorum mode (`quorum` > 0); `None` otherwise.
pub fn rule_key<'a>(view: &'a ClusterView, cfg: &HaConfig) -> Option<&'a SyncKey> {
    let key = view.sync.as_ref().filter(|k| k.leader.is_some())?;
    match cfg.synchronous_mode {
        SyncMode::Quorum => Some(key),
        SyncMode::On if key.quorum > 0 => Some(key),
        _ => None,
    }
}

/// Whether this member may take over under the quorum rule (module documentation).
pub(super) fn eligible(obs: &Observation, key: &SyncKey, my_lsn: Lsn) -> Result<(), Ineligible> {
    if has_quorum(key, &obs.me, my_lsn, &answers(obs, key)) {
        Ok(())
    } else {
        Err(Ineligible::QuorumNotReached {
            votes: votes(obs, key, my_lsn),
            needed: key.quorum.saturating_add(1),
        })
    }
}
