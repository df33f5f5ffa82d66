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
//! - PostgreSQL is stopped, primary or replica, with a timeline and WAL position that the
//!   replicas streaming from a running primary copy;
//! - states are kept *relative to now* (every stored instant is an offset from the current
//!   time, lease ids are renumbered canonically after every step; etcd revisions are not, as
//!   they must never repeat), so that two histories that lead to the same situation are one
//!   state for the explorer.

use std::collections::BTreeMap;

use ha_agent::ha::{
    Action, ClusterView, ConnTarget, ControlState, DcsView, Decision, FenceState, HaConfig,
    KeyLease, LeaderKey, Lsn, MemberName, MemberView, Millis, Observation, PeerStatus, PgRole,
    PgState, Revision, RunningPg, StartAs, StoppedPg, TimelineSwitch, WatchdogState, timing,
};

/// Members in the model.
pub const N: usize = 3;
/// One tick of the global clock, ms.
pub const TICK: u64 = 250;
/// The system identifier of the modelled cluster.
const SYSID: &str = "7311000000000000001";

/// The decision function under test (the real `ha::decide`, or a planted bug).
pub type DecideFn = fn(&Observation, &HaConfig) -> Decision;

/// A member's record in etcd.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    role: PgRole,
    running: bool,
    lsn: u64,
    timeline: u32,
}

/// An instant, as an offset in ms from now.
type Rel = i64;

/// The monotonic reading the agents see for "now" (any constant works: only differences
/// matter to the core).
const BASE: i64 = 1_000_000_000;

fn abs(r: Rel) -> Millis {
    Millis(u64::try_from(BASE + r).unwrap_or(0))
}

/// etcd.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Etcd {
    /// `leader`: holder, lease, mod_revision.
    leader: Option<(usize, u64, u64)>,
    /// Live leases: id -> expiry.
    leases: BTreeMap<u64, Rel>,
    /// `members/<i>` with the lease it is under.
    members: [Option<(Record, u64)>; N],
    optime: u64,
    history: Vec<(u32, u64)>,
    rev: u64,
    next_lease: u64,
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
    lease: Option<u64>,
    lease_valid_until: Option<Rel>,
    view: Etcd,
    cut_since: Option<Rel>,
    /// Since when this member's view has shown no leader key (the shell's
    /// `leader_vacant_since`).
    vacant_since: Option<Rel>,
    fence: Option<Rel>,
    following: Option<usize>,
    pub pg: Pg,
    lsn: u64,
    timeline: u32,
    /// The agent is frozen (SIGSTOP): it neither cycles nor answers on its REST API.
    stalled: bool,
    /// The member is cut off from the other members (probes and replication fail).
    isolated: bool,
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
    cycled: [bool; N],
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

fn name(i: usize) -> MemberName {
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
            lsn: 10,
            timeline: 1,
            stalled: false,
            isolated: false,
        });
        for (i, mem) in m.iter_mut().enumerate() {
            let id = etcd.next_lease;
            etcd.next_lease += 1;
            etcd.leases.insert(id, ttl - drift);
            mem.lease = Some(id);
            etcd.members[i] = Some((record(mem), id));
        }
        etcd.leader = Some((0, m[0].lease.unwrap_or(0), 1));
        etcd.optime = 10;
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
        }
        self.canonical(cfg);
    }

    /// Makes now the origin of every stored instant, clamps instants in the past that only
    /// matter as "in the past", and renumbers leases: equal situations become equal states.
    fn canonical(&mut self, cfg: &HaConfig) {
        let shift = std::mem::take(&mut self.t);
        let floor = -i64::try_from(cfg.ttl.0).unwrap_or(0) - 1;
        let past = |r: Rel| (r - shift).max(floor);
        for l in self.etcd.leases.values_mut() {
            *l -= shift;
        }
        for m in &mut self.m {
            m.lease_valid_until = m.lease_valid_until.map(past);
            m.vacant_since = m.vacant_since.map(past);
            m.fence = m.fence.map(|f| f - shift);
            // When the cut began does not matter to the core (it counts from its lease).
            m.cut_since = m.cut_since.map(|_| 0);
            for l in m.view.leases.values_mut() {
                *l -= shift;
            }
        }
        // Lease ids in a canonical order: the members' own, then the others by expiry.
        let mut order: Vec<u64> = self.m.iter().filter_map(|m| m.lease).collect();
        let mut rest: Vec<(Rel, u64)> = self
            .etcd
            .leases
            .iter()
            .filter(|(id, _)| !order.contains(id))
            .map(|(id, exp)| (*exp, *id))
            .collect();
        rest.sort_unstable();
        order.extend(rest.into_iter().map(|(_, id)| id));
        let map = |id: u64| -> u64 {
            order
                .iter()
                .position(|x| *x == id)
                .map_or(0, |p| u64::try_from(p).unwrap_or(0) + 1)
        };
        let renumber = |e: &mut Etcd| {
            e.leases = e.leases.iter().map(|(id, exp)| (map(*id), *exp)).collect();
            if let Some((_, l, _)) = &mut e.leader {
                *l = map(*l);
            }
            for r in e.members.iter_mut().flatten() {
                r.1 = map(r.1);
            }
            // Revisions stay as they are: they must never repeat (a compare-and-set on a
            // revision seen in a stale view must fail once the key changed in between).
            e.next_lease = 0;
        };
        renumber(&mut self.etcd);
        for m in &mut self.m {
            m.lease = m.lease.map(map);
            renumber(&mut m.view);
        }
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
        // Replicas streaming from a running primary catch up with it.
        for i in 0..N {
            if let Pg::Replica(Some(u)) = self.m[i].pg
                && self.m[u].pg == Pg::Primary
                && self.m[u].timeline >= self.m[i].timeline
                && !self.m[i].isolated
                && !self.m[u].isolated
            {
                self.m[i].lsn = self.m[u].lsn;
                self.m[i].timeline = self.m[u].timeline;
            }
        }
    }

    fn observation(&self, i: usize, cfg: &HaConfig) -> Observation {
        let me = &self.m[i];
        let dcs = match me.cut_since {
            Some(since) => DcsView::Unreachable { since: abs(since) },
            None => DcsView::Reachable(view_of(&me.view, me.lease)),
        };
        let pg = match me.pg {
            Pg::Stopped => PgState::Stopped(StoppedPg {
                sysid: SYSID.into(),
                timeline: me.timeline,
                control_state: ControlState::InProduction,
                checkpoint_lsn: Lsn(me.lsn),
            }),
            Pg::Primary | Pg::Replica(_) => PgState::Running(RunningPg {
                role: if me.pg == Pg::Primary {
                    PgRole::Primary
                } else {
                    PgRole::Replica
                },
                sysid: SYSID.into(),
                timeline: me.timeline,
                lsn: Lsn(me.lsn),
                replay_lsn: Lsn(me.lsn),
                streaming: matches!(me.pg, Pg::Replica(Some(u)) if self.m[u].pg == Pg::Primary),
            }),
        };
        let peers = match &dcs {
            DcsView::Reachable(v) if ha_agent::ha::needs_peers(v, &name(i), &pg) => (0..N)
                // A frozen agent does not answer; an isolated member is not reached.
                .filter(|j| *j != i && !self.m[*j].stalled && !me.isolated && !self.m[*j].isolated)
                .map(|j| PeerStatus {
                    leader_seen: ha_agent::ha::LeaderSeen::Unknown,
                    name: name(j),
                    running_primary: self.m[j].pg == Pg::Primary,
                    timeline: Some(self.m[j].timeline),
                    lsn: Some(Lsn(self.m[j].lsn)),
                    nofailover: false,
                    failover_priority: 1,
                    sysid: Some(SYSID.into()),
                })
                .collect(),
            _ => Vec::new(),
        };
        Observation {
            me: name(i),
            now: abs(self.t),
            wall_ms: 1_800_000_000_000,
            dcs,
            pg,
            lease_valid_until: me.lease_valid_until.map(abs),
            job: None,
            last_job: None,
            pg_down_since: None,
            not_streaming_since: None,
            leader_vacant_since: me.vacant_since.map(abs),
            peers,
            bootstrapping: false,
            following: me.following.map(name),
            // Retrying the stream is a reload with no effect on the modelled state.
            following_since: None,
            request: None,
            fence: if cfg.fence {
                FenceState::Ready {
                    armed: me.fence.map(abs),
                }
            } else {
                FenceState::Disabled
            },
            watchdog: WatchdogState::Off,
            failsafe_valid_until: None,
            failsafe_leader: None,
            streaming_replicas: (0..N)
                .filter(|j| matches!(self.m[*j].pg, Pg::Replica(Some(u)) if u == i))
                .map(name)
                .collect(),
            // The model replicates asynchronously.
            sync_replicas: Vec::new(),
            sync_names: None,
        }
    }

    fn cycle(&mut self, i: usize, cfg: &HaConfig, decide: DecideFn) {
        let me = &mut self.m[i];
        me.vacant_since = if me.cut_since.is_none() && me.view.leader.is_none() {
            Some(me.vacant_since.unwrap_or(self.t))
        } else {
            None
        };
        let obs = self.observation(i, cfg);
        let d = decide(&obs, cfg);
        for a in &d.actions {
            if !self.execute(i, a, cfg) {
                break;
            }
        }
        // The shell keeps every member's own lease alive and publishes its record.
        if self.m[i].cut_since.is_none() {
            self.keepalive(i, cfg);
            let rec = record(&self.m[i]);
            if let Some(l) = self.m[i].lease {
                self.etcd.members[i] = Some((rec, l));
            }
            if self.etcd.leader.is_some_and(|(h, _, _)| h == i) && self.m[i].pg == Pg::Primary {
                self.etcd.optime = self.m[i].lsn;
            }
        }
    }

    /// Keeps member `i`'s lease alive (granting one when it has none or it expired).
    /// Returns whether the old lease was still alive.
    fn keepalive(&mut self, i: usize, cfg: &HaConfig) -> bool {
        let expiry = self.t + i64::try_from(cfg.ttl.0 - timing::drift(cfg.ttl).0).unwrap_or(0);
        match self.m[i].lease {
            Some(id) if self.etcd.leases.contains_key(&id) => {
                self.etcd.leases.insert(id, expiry);
                true
            }
            _ => {
                // A fresh id (renumbered canonically after the step).
                let id = 1_000 + self.etcd.leases.keys().max().copied().unwrap_or(0);
                self.etcd.leases.insert(id, expiry);
                self.m[i].lease = Some(id);
                false
            }
        }
    }

    /// Runs one action; false aborts the batch (a failure or a lost compare-and-set).
    fn execute(&mut self, i: usize, a: &Action, cfg: &HaConfig) -> bool {
        let cut = self.m[i].cut_since.is_some();
        let ttl = i64::try_from(cfg.ttl.0).unwrap_or(0);
        match a {
            Action::RenewLease => {
                if cut || !self.keepalive(i, cfg) {
                    self.m[i].lease_valid_until = None;
                    return false;
                }
                let lease = self.m[i].lease.unwrap_or(0);
                match self.etcd.leader {
                    Some((h, _, _)) if h == i => {}
                    None => {
                        self.etcd.rev += 1;
                        self.etcd.leader = Some((i, lease, self.etcd.rev));
                    }
                    Some(_) => {
                        self.m[i].lease_valid_until = None;
                        return false;
                    }
                }
                self.m[i].lease_valid_until = Some(self.t + ttl);
                true
            }
            Action::AcquireLease | Action::TakeOverLeaderKey { .. } => {
                if cut {
                    return false;
                }
                self.keepalive(i, cfg);
                let free = match (a, self.etcd.leader) {
                    (_, None) => true,
                    (Action::TakeOverLeaderKey { revision }, Some((_, _, rev))) => {
                        Revision(i64::try_from(rev).unwrap_or(0)) == *revision
                    }
                    _ => false,
                };
                if !free {
                    return false;
                }
                self.etcd.rev += 1;
                self.etcd.leader = Some((i, self.m[i].lease.unwrap_or(0), self.etcd.rev));
                self.m[i].lease_valid_until = Some(self.t + ttl);
                true
            }
            Action::ReleaseLease => {
                self.m[i].lease_valid_until = None;
                if cut {
                    return false;
                }
                if self.etcd.leader.is_some_and(|(h, _, _)| h == i) {
                    self.etcd.leader = None;
                    self.etcd.rev += 1;
                }
                true
            }
            Action::Promote
            | Action::Start {
                role: StartAs::Primary,
            } => {
                let holds = self.etcd.leader.is_some_and(|(h, l, _)| {
                    h == i && self.etcd.leases.get(&l).is_some_and(|e| *e > self.t)
                });
                if !holds && self.violation.is_none() {
                    self.violation = Some(format!(
                        "m{i} made PostgreSQL primary without holding the leader lease ({a:?})"
                    ));
                }
                if *a == Action::Promote && self.m[i].pg != Pg::Primary {
                    self.m[i].timeline += 1;
                    self.etcd
                        .history
                        .push((self.m[i].timeline - 1, self.m[i].lsn));
                }
                self.m[i].pg = Pg::Primary;
                self.m[i].following = None;
                true
            }
            Action::Demote { .. } => {
                self.m[i].pg = Pg::Stopped;
                self.m[i].following = None;
                true
            }
            Action::Start {
                role: StartAs::Replica { upstream },
            } => {
                let u = upstream.as_ref().and_then(|u| index(&u.name));
                self.m[i].pg = Pg::Replica(u);
                self.m[i].following = u;
                true
            }
            Action::Follow { upstream }
            | Action::Rewind { upstream }
            | Action::Clone { upstream, .. }
            | Action::Reinitialize { upstream, .. } => {
                let u = index(&upstream.name);
                if let Some(u) = u
                    && !matches!(a, Action::Follow { .. })
                {
                    // A rewind or copy gives the member the leader's history.
                    self.m[i].lsn = self.m[u].lsn;
                    self.m[i].timeline = self.m[u].timeline;
                }
                self.m[i].pg = Pg::Replica(u);
                self.m[i].following = u;
                true
            }
            Action::ExtendFence => {
                let until = self.m[i].lease_valid_until;
                match until {
                    Some(v) => {
                        self.m[i].fence = Some(rel(timing::fence_deadline(abs(v), cfg)));
                        true
                    }
                    None => false,
                }
            }
            Action::DisarmFence => {
                self.m[i].fence = None;
                true
            }
            // Housekeeping without bearing on who writes.
            _ => !cut || !writes_etcd(a),
        }
    }
}

/// Actions that write etcd (they fail while cut off).
fn writes_etcd(a: &Action) -> bool {
    matches!(
        a,
        Action::ClaimInitialize
            | Action::CancelInitialize
            | Action::WriteInitialize { .. }
            | Action::RepairInitialize { .. }
            | Action::SeedConfig { .. }
            | Action::ClearFailover { .. }
            | Action::WriteFailsafeKey { .. }
    )
}

/// The offset from now of an instant the core computed.
fn rel(m: Millis) -> Rel {
    i64::try_from(m.0).unwrap_or(i64::MAX) - BASE
}

fn index(n: &MemberName) -> Option<usize> {
    n.as_str().strip_prefix('m')?.parse().ok()
}

fn record(m: &Member) -> Record {
    Record {
        role: match m.pg {
            Pg::Primary => PgRole::Primary,
            Pg::Replica(_) => PgRole::Replica,
            Pg::Stopped => PgRole::Unknown,
        },
        running: m.pg != Pg::Stopped,
        lsn: m.lsn,
        timeline: m.timeline,
    }
}

/// The core's view of an etcd copy, for the member whose lease is `lease`.
fn view_of(e: &Etcd, lease: Option<u64>) -> ClusterView {
    ClusterView {
        initialize: Some(SYSID.into()),
        leader: e.leader.map(|(h, l, rev)| LeaderKey {
            holder: name(h),
            revision: Revision(i64::try_from(rev).unwrap_or(0)),
            lease: if Some(l) == lease {
                KeyLease::Ours
            } else {
                KeyLease::Other
            },
        }),
        members: (0..N)
            .filter_map(|i| {
                let (r, _) = e.members[i].as_ref()?;
                Some(MemberView {
                    name: name(i),
                    role: r.role,
                    running: r.running,
                    conn: Some(ConnTarget {
                        host: format!("10.0.0.{i}"),
                        port: 5432,
                    }),
                    timeline: Some(r.timeline),
                    lsn: Some(Lsn(r.lsn)),
                    nofailover: false,
                    streaming: r.role == PgRole::Replica && r.running,
                    nosync: false,
                })
            })
            .collect(),
        failover: None,
        optime: Some(Lsn(e.optime)),
        history: e
            .history
            .iter()
            .map(|(tl, lsn)| TimelineSwitch {
                timeline: *tl,
                switch_lsn: Lsn(*lsn),
            })
            .collect(),
        has_config: true,
        failsafe: None,
        config_garbage: None,
        sync: None,
    }
}
