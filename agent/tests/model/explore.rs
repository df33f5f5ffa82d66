//! Exploring the modelled world: exhaustively (breadth first, to a depth, with a fault
//! budget) and along long random walks (deterministic seeds), checking at every state:
//! - **safety**: at most one member runs PostgreSQL as primary, no member made it primary
//!   without holding the leader lease in etcd at that moment, and (synchronous mode) none
//!   made it primary without every commit a primary had acknowledged until then;
//! - **liveness**: from a state, once every member reaches etcd again and every agent runs
//!   (fairly: deliveries, cycles, ticks in turn), a member leads in full within a bounded
//!   number of rounds.

use std::collections::{HashSet, VecDeque};

use ha_agent::ha::HaConfig;

use super::world::{DecideFn, Event, N, World};

/// What an exploration found.
#[derive(Debug, Default)]
pub struct Report {
    /// Distinct states visited.
    pub states: usize,
    /// Deepest step reached.
    pub depth: usize,
    /// The first violation, with the events that led to it.
    pub violation: Option<(String, Vec<Event>)>,
}

/// The safety property at one state.
pub fn safety(w: &World) -> Option<String> {
    if let Some(v) = &w.violation {
        return Some(v.clone());
    }
    let p = w.primaries();
    (p.len() > 1).then(|| format!("two writable primaries at t = {} ms: {p:?}", w.t))
}

/// Whether a member leads in full within `rounds` fair rounds after every fault is healed.
pub fn liveness(w: &World, cfg: &HaConfig, decide: DecideFn, rounds: usize) -> bool {
    let mut w = w.clone();
    for i in 0..N {
        w.step(Event::Heal(i), cfg, decide);
        w.step(Event::Resume(i), cfg, decide);
        w.step(Event::Rejoin(i), cfg, decide);
    }
    for _ in 0..rounds {
        for i in 0..N {
            w.step(Event::Deliver(i), cfg, decide);
            w.step(Event::Cycle(i), cfg, decide);
        }
        if w.has_leader() {
            return true;
        }
        w.step(Event::Tick, cfg, decide);
    }
    false
}

/// A directed scenario: `faults` (any events) applied to `start`, then `rounds` fair rounds
/// (every agent that runs gets its delivery and its cycle, then the clock ticks), checking
/// safety at every step.
pub fn scenario(
    start: &World,
    cfg: &HaConfig,
    decide: DecideFn,
    faults: &[Event],
    rounds: usize,
) -> Option<(String, Vec<Event>)> {
    let mut w = start.clone();
    let mut path = Vec::new();
    let step = |w: &mut World, e: Event, path: &mut Vec<Event>| {
        w.step(e, cfg, decide);
        path.push(e);
        safety(w)
    };
    for e in faults {
        if let Some(v) = step(&mut w, *e, &mut path) {
            return Some((v, path));
        }
    }
    for _ in 0..rounds {
        for i in 0..N {
            for e in [Event::Deliver(i), Event::Cycle(i)] {
                // A stalled agent does not cycle; a member cut off from etcd gets no news.
                if !w.events(0).contains(&e) {
                    continue;
                }
                if let Some(v) = step(&mut w, e, &mut path) {
                    return Some((v, path));
                }
            }
        }
        if let Some(v) = step(&mut w, Event::Tick, &mut path) {
            return Some((v, path));
        }
    }
    None
}

/// Every state reachable from `start` within `depth` events and `max_faults` faults.
pub fn exhaustive(
    start: &World,
    cfg: &HaConfig,
    decide: DecideFn,
    depth: usize,
    max_faults: u8,
    check_liveness_every: usize,
) -> Report {
    let mut seen: HashSet<World> = HashSet::new();
    let mut queue: VecDeque<(World, Vec<Event>)> = VecDeque::new();
    let mut r = Report::default();
    seen.insert(start.clone());
    queue.push_back((start.clone(), Vec::new()));
    while let Some((w, path)) = queue.pop_front() {
        r.states += 1;
        r.depth = r.depth.max(path.len());
        if let Some(v) = safety(&w) {
            r.violation = Some((v, path));
            return r;
        }
        if check_liveness_every > 0
            && r.states % check_liveness_every == 0
            && !liveness(&w, cfg, decide, 40)
        {
            r.violation = Some(("no leader after healing and 40 fair rounds".into(), path));
            return r;
        }
        if path.len() >= depth {
            continue;
        }
        for e in w.events(max_faults) {
            let mut next = w.clone();
            next.step(e, cfg, decide);
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(e);
                queue.push_back((next, p));
            }
        }
    }
    r
}

/// A small deterministic generator (xorshift64*), so runs are reproducible by seed.
pub struct Rng(u64);

impl Rng {
    /// Seeded (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// Next number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        usize::try_from(x % u64::try_from(n).unwrap_or(1)).unwrap_or(0)
    }
}

/// How to walk.
pub struct Walks {
    /// Seed of the generator.
    pub seed: u64,
    /// Number of walks.
    pub count: usize,
    /// Events per walk.
    pub length: usize,
    /// Fault budget per walk.
    pub max_faults: u8,
    /// Keep a state every this many steps (0: none).
    pub sample_every: usize,
}

/// Random walks from `start` (liveness checked at the end of each); returns the report and
/// the states kept along the way, to explore exhaustively from.
pub fn random_walks(
    start: &World,
    cfg: &HaConfig,
    decide: DecideFn,
    o: &Walks,
) -> (Report, Vec<World>) {
    let (walks, length, max_faults, sample_every) =
        (o.count, o.length, o.max_faults, o.sample_every);
    let mut rng = Rng::new(o.seed);
    let mut r = Report::default();
    let mut samples = Vec::new();
    for _ in 0..walks {
        let mut w = start.clone();
        let mut path = Vec::new();
        for step in 0..length {
            let events = w.events(max_faults);
            // Ticks are weighted up so that leases do expire along a walk.
            let e = if rng.below(3) == 0 && events.contains(&Event::Tick) {
                Event::Tick
            } else {
                events[rng.below(events.len())]
            };
            w.step(e, cfg, decide);
            path.push(e);
            r.states += 1;
            if let Some(v) = safety(&w) {
                r.violation = Some((v, path));
                return (r, samples);
            }
            if sample_every > 0 && step % sample_every == sample_every - 1 {
                samples.push(w.clone());
            }
        }
        r.depth = r.depth.max(length);
        if !liveness(&w, cfg, decide, 40) {
            r.violation = Some(("no leader after healing and 40 fair rounds".into(), path));
            return (r, samples);
        }
    }
    (r, samples)
}
