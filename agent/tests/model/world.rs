//! The modelled world: a few members' agents (each running the real `ha::decide`), their
//! PostgreSQL, their fences, and etcd (leases that expire, compare-and-set, watch delivery that
//! lags), on a global clock advanced in ticks.
//!
//! What the model abstracts (and why that is sound for the safety property):
//! - time advances in ticks of [`TICK`]; within a tick, fences fire before etcd expires leases
//!   (a fence deadline is before its lease's expiry by construction, `ha::timing`), and etcd
//!   expires a lease `ttl - drift` after its last keepalive (the fastest an etcd clock may run
//!   against the agent's under the drift bound);
//! - an agent's cycle is one step (observe from its cached view, decide, execute every action
//!   in order) taken at one instant; an agent that is not scheduled for a while is a stalled
//!   agent, and the explorer schedules agents arbitrarily, so every stall is covered; requests
//!   to etcd fail while the member is cut off from it (a failed renewal that etcd applied
//!   anyway only helps: the agent under-estimates its lease);
//! - each agent reads the cluster from its own cached copy, refreshed by a separate delivery
//!   step that may lag arbitrarily (a late watch);
//! - PostgreSQL is stopped, primary or replica, with a timeline and a WAL (the commits it
//!   holds) that the replicas streaming from a running primary copy: on every tick when
//!   replication is asynchronous, and in synchronous mode as a step of its own (`Replicate`),
//!   so that a standby may lag for any number of steps;
//! - synchronous mode (`postgres.rs`): clients commit on a running primary (`Write`, a
//!   bounded number of times), the primary acknowledges a commit as PostgreSQL does under
//!   the `synchronous_standby_names` in force, and the shell confirms synchronous standbys
//!   as `runtime::sync` does; every commit ever acknowledged is remembered, and a member made
//!   primary (promoted or started as one) must hold them all;
//! - states are kept *relative to now* (every stored instant is an offset from the current
//!   time, lease ids are renumbered canonically after every step; etcd revisions are not, as
//!   they must never repeat), so that two histories that lead to the same situation are one
//!   state for the explorer.
//!
//! The parts: `etcd.rs` (the store and its view), `postgres.rs` (replication, commits and
//! their acknowledgement), `observe.rs` (what an agent sees),
//! `execute.rs` (a cycle and its actions), `canonical.rs` (state identity); the properties are
//! checked in `explore.rs`.

use ha_agent::ha::{Decision, HaConfig, MemberName, Millis, Observation, SyncMode, timing};

use super::etcd::{Etcd, SyncRec, record};
use super::postgres::{BASE_LSN, Confirm, Names};

/// Members in the model.
pub const N: usize = 3;
/// One tick of the global clock, ms.
pub const TICK: u64 = 250;
/// The system identifier of the modelled cluster.
pub const SYSID: &str = "7311000000000000001";

/// The decision function under test (the real `ha::decide`, or a planted bug).
pub type DecideFn = fn(&Observation, &HaConfig) -> Decision;

/// An instant, as an offset in ms from now.
pub type Rel = i64;

/// The monotonic reading the agents see for "now" (any constant works: only differences
/// matter to the core).
const BASE: i64 = 1_000_000_000;

/// The monotonic reading of `r`.
pub fn abs(r: Rel) -> Millis {
    Millis(u64::try_from(BASE + r).unwrap_or(0))
}

/// PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pg {
    /// Not running.
    Stopped,
    /// Accepting writes.
    Primary,
    /// In recovery, streaming from a member (when it is a running primary).
    Replica(Option<usize>),
}

/// One member: its agent's memory, its fence, its PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    pub lease: Option<u64>,
    pub lease_valid_until: Option<Rel>,
    pub view: Etcd,
    pub cut_since: Option<Rel>,
    /// Since when this member's view has shown no leader key (the shell's
    /// `leader_vacant_since`).
    pub vacant_since: Option<Rel>,
    pub fence: Option<Rel>,
    pub following: Option<usize>,
    pub pg: Pg,
    /// The commits its WAL holds, in order (its position: `Member::lsn`).
    pub wal: Vec<u8>,
    /// Where its WAL stood when PostgreSQL last became primary: the sessions of commits
    /// before it ended then, so those not acknowledged by then never will be.
    pub sessions_from: usize,
    pub timeline: u32,
    /// The agent is frozen (SIGSTOP): it neither cycles nor answers on its REST API.
    pub stalled: bool,
    /// The member is cut off from the other members (probes and replication fail).
    pub isolated: bool,
    /// `synchronous_standby_names` in its configuration (in force while it runs as primary).
    pub names: Names,
    /// The agent's confirmation of synchronous standbys (the shell's memory).
    pub confirm: Confirm,
}

/// The whole modelled world.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct World {
    /// Always 0 between steps (every instant is stored relative to now).
    pub t: Rel,
    pub etcd: Etcd,
    pub m: [Member; N],
    pub faults: u8,
    /// A safety violation seen while stepping (promotion without the lease).
    pub violation: Option<String>,
    /// Fair scheduling: the clock advances only after every agent ran a cycle since the last
    /// tick (no agent stalls). Used to show what the fence is for, and planted bugs.
    pub fair: bool,
    pub cycled: [bool; N],
    /// Synchronous mode: replication is a step of its own and clients commit.
    pub sync: bool,
    /// Commits written so far (each commit's id is its number).
    pub commits: u8,
    /// How many commits clients may write in all.
    pub max_commits: u8,
    /// Every commit some primary acknowledged to its client (sorted).
    pub acked: Vec<u8>,
}

/// One step of the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The clock advances one tick.
    Tick,
    /// Member `i`'s agent runs one cycle.
    Cycle(usize),
    /// Member `i`'s cached view catches up with etcd.
    Deliver(usize),
    /// Member `i` is cut off from etcd.
    Cut(usize),
    /// Member `i` reaches etcd again.
    Heal(usize),
    /// Member `i`'s PostgreSQL is killed (its agent lives).
    KillPg(usize),
    /// Member `i`'s agent freezes.
    Stall(usize),
    /// Member `i`'s agent runs again.
    Resume(usize),
    /// Member `i` is cut off from the other members.
    Isolate(usize),
    /// Member `i` reaches the other members again.
    Rejoin(usize),
    /// A client commits on member `i`, a running primary (synchronous mode).
    Write(usize),
    /// Member `i` receives and flushes what its upstream has (synchronous mode).
    Replicate(usize),
}

/// The timing the model runs with: the floor the configuration accepts, so that a lease
/// expires within a dozen ticks.
pub fn ha_config(fence: bool) -> HaConfig {
    HaConfig {
        ttl: Millis::secs(3),
        loop_wait: Millis::secs(1),
        retry_timeout: Millis::secs(1),
        use_slots: false,
        fence,
        ..HaConfig::default()
    }
}

pub fn name(i: usize) -> MemberName {
    MemberName::new(format!("m{i}"))
}

impl World {
    /// A healthy cluster: member 0 leads (just renewed, fence armed), the others stream.
    pub fn healthy(cfg: &HaConfig) -> World {
        let ttl = i64::try_from(cfg.ttl.0).unwrap_or(0);
        let drift = i64::try_from(timing::drift(cfg.ttl).0).unwrap_or(0);
        let mut etcd = Etcd {
            next_lease: 1,
            rev: 1,
            ..Etcd::default()
        };
        let mut m: [Member; N] = std::array::from_fn(|i| Member {
            lease: None,
            lease_valid_until: None,
            view: Etcd::default(),
            cut_since: None,
            vacant_since: None,
            fence: None,
            following: (i != 0).then_some(0),
            pg: if i == 0 {
                Pg::Primary
            } else {
                Pg::Replica(Some(0))
            },
            wal: Vec::new(),
            sessions_from: 0,
            timeline: 1,
            stalled: false,
            isolated: false,
            names: Names::Off,
            confirm: Confirm::default(),
        });
        for (i, mem) in m.iter_mut().enumerate() {
            let id = etcd.next_lease;
            etcd.next_lease += 1;
            etcd.leases.insert(id, ttl - drift);
            mem.lease = Some(id);
            etcd.members[i] = Some((record(mem), id));
        }
        etcd.leader = Some((0, m[0].lease.unwrap_or(0), 1));
        etcd.optime = BASE_LSN;
        // Synchronous mode: the leader's setting and key name both replicas (quorum: as
        // voters, `ANY 1`) or the first (on: `FIRST 1`), confirmed.
        let sync = cfg.synchronous_mode != SyncMode::Off;
        if sync {
            let (names, standbys, quorum) = match cfg.synchronous_mode {
                SyncMode::Quorum => (Names::Quorum(1, vec![1, 2]), 0b110, 1),
                _ => (Names::First(1, vec![1]), 0b010, 0),
            };
            etcd.rev += 1;
            etcd.sync = Some(SyncRec {
                leader: 0,
                standbys,
                quorum,
                rev: etcd.rev,
            });
            m[0].confirm = Confirm {
                seen: Some(names.clone()),
                mark: BASE_LSN,
                ready: standbys,
            };
            m[0].names = names;
        }
        m[0].lease_valid_until = Some(ttl);
        m[0].fence = cfg
            .fence
            .then(|| rel(timing::fence_deadline(abs(ttl), cfg)));
        for mem in &mut m {
            mem.view = etcd.clone();
        }
        World {
            t: 0,
            etcd,
            m,
            faults: 0,
            violation: None,
            fair: false,
            cycled: [false; N],
            sync,
            commits: 0,
            max_commits: 0,
            acked: Vec::new(),
        }
    }

    /// Members whose PostgreSQL accepts writes.
    pub fn primaries(&self) -> Vec<usize> {
        (0..N).filter(|i| self.m[*i].pg == Pg::Primary).collect()
    }

    /// A member leads in full: holds the key in etcd, runs PostgreSQL as primary, and its
    /// authority reaches past now.
    pub fn has_leader(&self) -> bool {
        self.etcd.leader.is_some_and(|(h, _, _)| {
            self.m[h].pg == Pg::Primary && self.m[h].lease_valid_until.is_some_and(|v| v > self.t)
        })
    }

    /// The events possible now, with at most `max_faults` faults in total.
    pub fn events(&self, max_faults: u8) -> Vec<Event> {
        let mut v = Vec::new();
        if !self.fair || self.cycled.iter().all(|c| *c) {
            v.push(Event::Tick);
        }
        for i in 0..N {
            if !self.m[i].stalled {
                v.push(Event::Cycle(i));
            }
            if self.m[i].cut_since.is_none() && self.m[i].view != self.etcd {
                v.push(Event::Deliver(i));
            }
            if self.m[i].cut_since.is_some() {
                v.push(Event::Heal(i));
            } else if self.faults < max_faults {
                v.push(Event::Cut(i));
            }
            if self.faults < max_faults && self.m[i].pg != Pg::Stopped {
                v.push(Event::KillPg(i));
            }
            if self.m[i].stalled {
                v.push(Event::Resume(i));
            } else if self.faults < max_faults && !self.fair {
                v.push(Event::Stall(i));
            }
            if self.m[i].isolated {
                v.push(Event::Rejoin(i));
            } else if self.faults < max_faults {
                v.push(Event::Isolate(i));
            }
            if self.sync && self.m[i].pg == Pg::Primary && self.commits < self.max_commits {
                v.push(Event::Write(i));
            }
            if self.sync && self.behind(i) {
                v.push(Event::Replicate(i));
            }
        }
        v
    }

    /// Applies `e`.
    pub fn step(&mut self, e: Event, cfg: &HaConfig, decide: DecideFn) {
        match e {
            Event::Tick => {
                self.tick(cfg);
                self.cycled = [false; N];
            }
            Event::Cycle(i) => {
                self.cycle(i, cfg, decide);
                self.cycled[i] = self.fair;
            }
            Event::Deliver(i) => self.m[i].view = self.etcd.clone(),
            Event::Cut(i) => {
                self.faults += 1;
                self.m[i].cut_since = Some(self.t);
            }
            Event::Heal(i) => self.m[i].cut_since = None,
            Event::KillPg(i) => {
                self.faults += 1;
                self.m[i].pg = Pg::Stopped;
            }
            Event::Stall(i) => {
                self.faults += 1;
                self.m[i].stalled = true;
            }
            Event::Resume(i) => self.m[i].stalled = false,
            Event::Isolate(i) => {
                self.faults += 1;
                self.m[i].isolated = true;
            }
            Event::Rejoin(i) => self.m[i].isolated = false,
            Event::Write(i) => {
                if self.m[i].pg == Pg::Primary {
                    self.commits += 1;
                    self.m[i].wal.push(self.commits);
                }
            }
            Event::Replicate(i) => self.replicate(i),
        }
        self.acknowledge();
        self.canonical(cfg);
    }

    fn tick(&mut self, _cfg: &HaConfig) {
        self.t += i64::try_from(TICK).unwrap_or(0);
        let t = self.t;
        // Fences first: a deadline is before its lease's expiry.
        for mem in &mut self.m {
            if mem.fence.is_some_and(|d| d <= t) {
                mem.fence = None;
                mem.pg = Pg::Stopped;
            }
        }
        let expired: Vec<u64> = self
            .etcd
            .leases
            .iter()
            .filter(|(_, exp)| **exp <= t)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.etcd.leases.remove(&id);
            if self.etcd.leader.is_some_and(|(_, l, _)| l == id) {
                self.etcd.leader = None;
                self.etcd.rev += 1;
            }
            for r in &mut self.etcd.members {
                if r.as_ref().is_some_and(|(_, l)| *l == id) {
                    *r = None;
                }
            }
        }
        // Asynchronous replication: replicas streaming from a running primary catch up with it.
        if !self.sync {
            for i in 0..N {
                self.replicate(i);
            }
        }
    }
}

/// The offset from now of an instant the core computed.
pub fn rel(m: Millis) -> Rel {
    i64::try_from(m.0).unwrap_or(i64::MAX) - BASE
}

/// The member a name stands for.
pub fn index(n: &MemberName) -> Option<usize> {
    n.as_str().strip_prefix('m')?.parse().ok()
}
