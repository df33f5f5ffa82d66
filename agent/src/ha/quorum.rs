//! Quorum mode (`synchronous_mode: quorum`): the order in which the leader changes
//! `synchronous_standby_names` (`ANY n (S)`) and the `sync` key (`quorum` q, voters `V`).
//!
//! **The invariant** (Patroni's `QuorumStateResolver`). A commit is acknowledged once the
//! leader and `n` members of `S` hold it. A member takes over only after seeing `q + 1`
//! members of `{leader} ∪ V` at or behind its own position (`quorum_vote`). The two sets
//! always intersect when `|V ∪ S| <= q + n` (leader not counted; with `V` empty the key lets
//! nobody but the leader take over, which is always safe). [`is_safe`] checks it.
//!
//! The key may be written only with `n` replaced by `min(n, c)`, where `c` counts the
//! members of `S` confirmed under the setting in force (`Observation::sync_replicas`: they
//! reached the primary's WAL position of the moment the setting took effect, so they hold
//! every commit acknowledged under an earlier setting). Changing `synchronous_standby_names`
//! resets `c` to 0 for the rest of the batch: a key write that relies on a new setting waits
//! for the next cycle, when PostgreSQL has confirmed it.
//!
//! **The order.** A step changes one half: one member in or out of `V` (or `V` set to `S` or
//! to the target) with any `q`, or the same for `S` with any `n`. A path from the current
//! state to the target in which *every* state satisfies the invariant is found by a
//! cheapest-path search (fewest cycles, then fewest writes). One cycle applies at most one key write (the first run of key steps, merged) and
//! then one change of the setting (the following run, merged); merging is safe because each
//! merged state was checked against the same other half. The shell stops the batch when the
//! key's compare-and-set is lost, so the setting never runs ahead of a key that was not
//! written. The search covers up to [`SEARCH_LIMIT`] members besides the leader; beyond
//! that (and if no path is found) the leader takes the always-safe detour: the key first
//! names no voter, then PostgreSQL gets the target, then the key the target.
//!
//! **The target** (Patroni's): `S = V =` every eligible member (streaming from us, not
//! `nosync`, within `maximum_lag_on_syncnode`; `nofailover` ones only while fewer than
//! `synchronous_node_count` others are eligible), `n = min(synchronous_node_count, |S|)`,
//! `q = |S| - n`. With nobody eligible: non-strict, `V` then `S` emptied (asynchronous);
//! strict, the setting keeps what it lists (or `'*'`), so commits wait.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// The most members besides the leader the shortest-path search handles.
pub const SEARCH_LIMIT: usize = 5;

/// The replication state the invariant is about: the key's `quorum` and voters, and
/// `ANY numsync (sync)`. Sets are bit masks over a list of names (bit i: `names[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuorumState {
    /// The key's `quorum`.
    pub quorum: usize,
    /// The key's voters.
    pub voters: u32,
    /// How many of `sync` confirm each commit.
    pub numsync: usize,
    /// The names in `synchronous_standby_names`.
    pub sync: u32,
}

/// How many members `mask` holds.
pub fn count(mask: u32) -> usize {
    mask.count_ones() as usize
}

/// The invariant (module documentation), with `confirmed` bounding how many of `sync` are
/// known to hold the commits acknowledged before the setting took effect (pass `usize::MAX`
/// when judging a change of the setting alone, which leaves the key, and so the past, as is).
pub fn is_safe(s: &QuorumState, confirmed: usize) -> bool {
    if s.voters == 0 {
        return true;
    }
    s.quorum < count(s.voters) && count(s.voters | s.sync) <= s.quorum + s.numsync.min(confirmed)
}

/// One change the leader makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Write the key with this state's `quorum` and `voters`.
    Key(QuorumState),
    /// Set `synchronous_standby_names` to this state's `numsync` and `sync`.
    Names(QuorumState),
}

/// A search node: the state, where in the schedule it lies, and whether the last change
/// was a key write (a run of key steps is one write). Phases: 0, this cycle before any
/// change of the setting (key writes judged with the confirmations observed); 1, this cycle
/// after one (no key write: it would need PostgreSQL to confirm the new setting first); 2
/// and 3, the same in a later cycle, assuming every eligible member confirmed by then.
type Node = (QuorumState, u8, bool);

/// The cost of one more cycle, against 1 per write.
const CYCLE: u32 = 1000;

/// The steps for this cycle from `cur` towards `target`: at most one `Key` and then at most
/// one `Names`. `confirmed`: members of `cur.sync` confirmed under the setting in force;
/// `universe`: how many names the masks range over; `active`: the mask of those expected to
/// confirm a new setting (the eligible members).
pub fn plan(
    cur: QuorumState,
    target: QuorumState,
    confirmed: usize,
    active: u32,
    universe: usize,
) -> Vec<Step> {
    if cur == target {
        return Vec::new();
    }
    let path = if universe <= SEARCH_LIMIT {
        search(cur, target, confirmed, active, universe)
    } else {
        None
    };
    match path {
        Some(p) => first_cycle(cur, &p),
        None => detour(cur, target, confirmed),
    }
}

/// The always-safe path: the key names no voter, then the setting changes, then (once it is
/// confirmed) the key names the target.
fn detour(cur: QuorumState, target: QuorumState, confirmed: usize) -> Vec<Step> {
    if (cur.numsync, cur.sync) != (target.numsync, target.sync) {
        let mut steps = Vec::new();
        let mut k = cur;
        if cur.voters != 0 {
            k.quorum = 0;
            k.voters = 0;
            steps.push(Step::Key(k));
        }
        k.numsync = target.numsync;
        k.sync = target.sync;
        steps.push(Step::Names(k));
        return steps;
    }
    if is_safe(&target, confirmed) {
        vec![Step::Key(target)]
    } else {
        Vec::new()
    }
}

/// The steps of `path` within the first cycle, merged into one key write and one setting.
fn first_cycle(cur: QuorumState, path: &[Node]) -> Vec<Step> {
    let mut key = None;
    let mut names = None;
    let mut prev = cur;
    for (s, phase, _) in path {
        if *phase >= 2 {
            break;
        }
        if (s.quorum, s.voters) != (prev.quorum, prev.voters) {
            key = Some(*s);
        }
        if (s.numsync, s.sync) != (prev.numsync, prev.sync) {
            names = Some(*s);
        }
        prev = *s;
    }
    key.map(Step::Key)
        .into_iter()
        .chain(names.map(Step::Names))
        .collect()
}

/// Cheapest path (cycles first, then writes) through safe states; the nodes after `cur`.
fn search(
    cur: QuorumState,
    target: QuorumState,
    confirmed: usize,
    active: u32,
    universe: usize,
) -> Option<Vec<Node>> {
    let mut dist: BTreeMap<Node, u32> = BTreeMap::new();
    let mut prev: BTreeMap<Node, Node> = BTreeMap::new();
    let mut heap = BinaryHeap::new();
    let start = (cur, 0u8, false);
    dist.insert(start, 0);
    heap.push(Reverse((0u32, start)));
    while let Some(Reverse((d, node))) = heap.pop() {
        if dist.get(&node).is_some_and(|best| *best < d) {
            continue;
        }
        if node.0 == target {
            let mut path = vec![node];
            let mut at = node;
            while let Some(p) = prev.get(&at) {
                path.push(*p);
                at = *p;
            }
            path.pop();
            path.reverse();
            return Some(path);
        }
        if dist.len() > 300_000 {
            return None;
        }
        for (next, cost) in moves(node, target, confirmed, active, universe) {
            let nd = d + cost;
            if dist.get(&next).is_none_or(|best| nd < *best) {
                dist.insert(next, nd);
                prev.insert(next, node);
                heap.push(Reverse((nd, next)));
            }
        }
    }
    None
}

/// The safe single changes from `node`, with their cost.
fn moves(
    node: Node,
    target: QuorumState,
    confirmed: usize,
    active: u32,
    universe: usize,
) -> Vec<(Node, u32)> {
    let (s, phase, last_key) = node;
    let mut out = Vec::new();
    // End the cycle (from phase 2 only after a change of the setting, else it is pointless).
    if phase != 2 {
        out.push(((s, 2, false), CYCLE));
    }
    let key_confirmed = match phase {
        0 => Some(confirmed),
        2 => Some(count(s.sync & active)),
        _ => None,
    };
    if let Some(c) = key_confirmed {
        let cost = u32::from(!last_key);
        for voters in neighbours(s.voters, universe, [s.sync, target.voters]) {
            for quorum in 0..count(voters).max(1) {
                let k = QuorumState {
                    quorum,
                    voters,
                    ..s
                };
                if k != s && is_safe(&k, c) {
                    out.push(((k, phase, true), cost));
                }
            }
        }
    }
    let names_phase = phase | 1;
    let cost = u32::from(phase & 1 == 0);
    for sync in neighbours(s.sync, universe, [s.voters, target.sync]) {
        let lo = usize::from(sync != 0);
        for numsync in lo..=count(sync) {
            let n = QuorumState { numsync, sync, ..s };
            if n != s && is_safe(&n, usize::MAX) {
                out.push(((n, names_phase, false), cost));
            }
        }
    }
    out
}

/// `mask` itself, every mask one member away, and the two `jumps` (the other half's set and
/// the target's: some safe paths change several members at once).
fn neighbours(mask: u32, universe: usize, jumps: [u32; 2]) -> Vec<u32> {
    let mut v = vec![mask];
    v.extend((0..universe).map(|i| mask ^ (1 << i)));
    v.extend(jumps.into_iter().filter(|j| *j != mask));
    v
}
