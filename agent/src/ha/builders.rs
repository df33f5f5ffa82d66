//! Small builders for decision tests: a node, its PostgreSQL, and the cluster it sees.

use super::*;

pub(super) const SYSID: &str = "7311000000000000001";
pub(super) const NOW: Millis = Millis(1_000_000);
pub(super) const WALL: u64 = 1_800_000_000_000;

pub(super) fn name(s: &str) -> MemberName {
    MemberName::new(s)
}

pub(super) fn conn(n: &str) -> ConnTarget {
    ConnTarget {
        host: "127.0.0.1".into(),
        port: 5432 + u16::from(n.as_bytes().last().copied().unwrap_or(b'0') - b'0'),
    }
}

pub(super) fn upstream(n: &str) -> Upstream {
    Upstream {
        name: name(n),
        conn: conn(n),
    }
}

pub(super) fn running(role: PgRole, lsn: u64, timeline: u32) -> RunningPg {
    RunningPg {
        role,
        sysid: SYSID.into(),
        timeline,
        lsn: Lsn(lsn),
        replay_lsn: Lsn(lsn),
        streaming: role == PgRole::Replica,
    }
}

/// One decision test case.
pub(super) struct Case {
    pub name: &'static str,
    pub obs: Observation,
    pub cfg: HaConfig,
    pub want: Decision,
}

pub(super) fn case(name: &'static str) -> CaseBuilder {
    CaseBuilder { name }
}

pub(super) struct CaseBuilder {
    name: &'static str,
}

impl CaseBuilder {
    pub fn given(self, node: Node) -> CaseGiven {
        CaseGiven {
            name: self.name,
            obs: node.obs,
            cfg: node.cfg,
        }
    }
}

pub(super) struct CaseGiven {
    name: &'static str,
    obs: Observation,
    cfg: HaConfig,
}

impl CaseGiven {
    pub fn want(self, actions: impl Into<Vec<Action>>, reason: Reason) -> Case {
        Case {
            name: self.name,
            obs: self.obs,
            cfg: self.cfg,
            want: Decision::new(actions, reason),
        }
    }
}

/// The node under test.
pub(super) struct Node {
    pub obs: Observation,
    pub cfg: HaConfig,
}

/// `pg1` with no data, in a reachable, initialized cluster without a leader.
pub(super) fn node(me: &str) -> Node {
    Node {
        obs: Observation {
            me: name(me),
            now: NOW,
            wall_ms: WALL,
            dcs: DcsView::Reachable(ClusterView {
                initialize: Some(SYSID.into()),
                has_config: true,
                members: vec![member(me, PgRole::Unknown, 0)],
                ..ClusterView::default()
            }),
            pg: PgState::NoData,
            lease_valid_until: None,
            job: None,
            last_job: None,
            pg_down_since: None,
            not_streaming_since: None,
            leader_vacant_since: None,
            peers: Vec::new(),
            bootstrapping: false,
            following: None,
            following_since: None,
            request: None,
            fence: FenceState::Ready { armed: None },
            watchdog: WatchdogState::Off,
            failsafe_valid_until: None,
            failsafe_leader: None,
            streaming_replicas: Vec::new(),
            sync_replicas: Vec::new(),
            sync_names: None,
        },
        // Most tables are about other rules: the fence is switched on by the cases about it
        // (`tests/fencing.rs`), so that their action lists stay about their own rule.
        cfg: HaConfig {
            fence: false,
            ..HaConfig::default()
        },
    }
}

pub(super) fn member(n: &str, role: PgRole, lsn: u64) -> MemberView {
    MemberView {
        name: name(n),
        role,
        running: role != PgRole::Unknown,
        conn: Some(conn(n)),
        timeline: Some(1),
        lsn: Some(Lsn(lsn)),
        nofailover: false,
        streaming: role == PgRole::Replica,
        nosync: false,
    }
}

pub(super) fn peer(n: &str, lsn: u64) -> PeerStatus {
    PeerStatus {
        name: name(n),
        running_primary: false,
        timeline: Some(1),
        lsn: Some(Lsn(lsn)),
        nofailover: false,
        failover_priority: 1,
        sysid: Some(SYSID.into()),
        leader_seen: LeaderSeen::Vacant,
    }
}

impl Node {
    /// A running primary, with 20 s of lease left (as after a recent renewal).
    /// A running primary, with 20 s of lease left (as after a recent renewal), streaming to
    /// every replica in the view.
    pub fn primary(mut self, lsn: u64) -> Self {
        self.obs.pg = PgState::Running(running(PgRole::Primary, lsn, 1));
        self.set_my_role(PgRole::Primary, lsn);
        self.streams_to_all();
        self.lease_left(20_000)
    }
    /// The primary streams to every member the view shows as a replica.
    fn streams_to_all(&mut self) {
        if let DcsView::Reachable(v) = &self.obs.dcs {
            self.obs.streaming_replicas = v
                .members
                .iter()
                .filter(|m| m.role == PgRole::Replica && m.name != self.obs.me)
                .map(|m| m.name.clone())
                .collect();
        }
    }
    /// No lease known (never renewed in this process).
    pub fn no_lease(mut self) -> Self {
        self.obs.lease_valid_until = None;
        self
    }
    pub fn replica(mut self, lsn: u64) -> Self {
        self.obs.pg = PgState::Running(running(PgRole::Replica, lsn, 1));
        self.set_my_role(PgRole::Replica, lsn);
        self
    }
    pub fn pg(mut self, pg: PgState) -> Self {
        self.obs.pg = pg;
        self
    }
    pub fn stopped(mut self, control_state: ControlState) -> Self {
        self.obs.pg = PgState::Stopped(StoppedPg {
            sysid: SYSID.into(),
            timeline: 1,
            control_state,
            checkpoint_lsn: Lsn(0),
        });
        self
    }
    /// Sets the running PostgreSQL's timeline and replay position.
    pub fn at(mut self, timeline: u32, replay: u64) -> Self {
        if let PgState::Running(r) = &mut self.obs.pg {
            r.timeline = timeline;
            r.replay_lsn = Lsn(replay);
            r.lsn = r.lsn.max(Lsn(replay));
        }
        self
    }
    /// Edits the cluster view; a `leader` key naming this node is under its own lease.
    pub fn cluster(mut self, f: impl FnOnce(&mut ClusterView)) -> Self {
        let me = self.obs.me.clone();
        if let DcsView::Reachable(v) = &mut self.obs.dcs {
            f(v);
            if let Some(l) = v.leader.as_mut().filter(|l| l.holder == me) {
                l.lease = KeyLease::Ours;
            }
        }
        if self.obs.pg.role() == PgRole::Primary {
            self.streams_to_all();
        }
        self
    }
    pub fn lease_left(mut self, ms: u64) -> Self {
        self.obs.lease_valid_until = Some(self.obs.now.plus(Millis(ms)));
        self
    }
    /// Sets the `leader` key as given (after `cluster`, which would mark it ours).
    pub fn leader_key(mut self, holder: &str, lease: KeyLease) -> Self {
        if let DcsView::Reachable(v) = &mut self.obs.dcs {
            v.leader = Some(LeaderKey {
                holder: name(holder),
                revision: Revision(77),
                lease,
            });
        }
        self
    }
    /// The fence is on (as by default in production) and in state `f`.
    pub fn fenced(mut self, f: FenceState) -> Self {
        self.cfg.fence = true;
        self.obs.fence = f;
        self
    }
    /// The fence holds a deadline.
    pub fn armed(self) -> Self {
        let at = self.obs.now.plus(Millis(5_000));
        self.fenced(FenceState::Ready { armed: Some(at) })
    }
    pub fn dcs_down(mut self) -> Self {
        self.obs.dcs = DcsView::Unreachable {
            since: self.obs.now.since(Millis(5_000)),
        };
        self
    }
    pub fn job(mut self, kind: JobKind, primary: bool) -> Self {
        self.obs.job = Some(RunningJob {
            kind,
            since: self.obs.now.since(Millis(1_000)),
            primary,
        });
        self
    }
    pub fn last_job(mut self, kind: JobKind, ok: bool, ago: u64) -> Self {
        self.obs.last_job = Some(JobResult {
            kind,
            ok,
            at: self.obs.now.since(Millis(ago)),
        });
        self
    }
    pub fn peers(mut self, peers: impl IntoIterator<Item = PeerStatus>) -> Self {
        self.obs.peers = peers.into_iter().collect();
        self
    }
    pub fn following(mut self, n: &str) -> Self {
        self.obs.following = Some(name(n));
        self
    }
    /// PostgreSQL was pointed at its current upstream `ms` ago.
    pub fn followed_ms_ago(mut self, ms: u64) -> Self {
        self.obs.following_since = Some(self.obs.now.since(Millis(ms)));
        self
    }
    /// The running replica has not been streaming for `ms`.
    pub fn not_streaming_for(mut self, ms: u64) -> Self {
        self.obs.not_streaming_since = Some(self.obs.now.since(Millis(ms)));
        if let PgState::Running(r) = &mut self.obs.pg {
            r.streaming = false;
        }
        self
    }
    /// The leader key has been seen vacant for `ms`.
    pub fn vacant_for(mut self, ms: u64) -> Self {
        self.obs.leader_vacant_since = Some(self.obs.now.since(Millis(ms)));
        self
    }
    pub fn down_for(mut self, ms: u64) -> Self {
        self.obs.pg_down_since = Some(self.obs.now.since(Millis(ms)));
        self
    }
    pub fn bootstrapping(mut self) -> Self {
        self.obs.bootstrapping = true;
        self
    }
    pub fn request(mut self, r: LocalRequest) -> Self {
        self.obs.request = Some(r);
        self
    }
    pub fn config(mut self, f: impl FnOnce(&mut HaConfig)) -> Self {
        f(&mut self.cfg);
        self
    }
    fn set_my_role(&mut self, role: PgRole, lsn: u64) {
        let me = self.obs.me.clone();
        if let DcsView::Reachable(c) = &mut self.obs.dcs {
            for m in c.members.iter_mut().filter(|m| m.name == me) {
                m.role = role;
                m.running = true;
                m.lsn = Some(Lsn(lsn));
            }
        }
    }
}

/// Cluster-view edits, used inside `Node::cluster`.
pub(super) trait ViewExt {
    fn leader(&mut self, n: &str) -> &mut Self;
    fn add(&mut self, m: MemberView) -> &mut Self;
    fn failover(&mut self, leader: Option<&str>, candidate: Option<&str>) -> &mut Self;
}

impl ViewExt for ClusterView {
    fn leader(&mut self, n: &str) -> &mut Self {
        // `Node::cluster` marks the lease ours when the holder is the node under test.
        self.leader = Some(LeaderKey {
            holder: name(n),
            revision: Revision(10),
            lease: KeyLease::Other,
        });
        self
    }
    fn add(&mut self, m: MemberView) -> &mut Self {
        self.members.retain(|x| x.name != m.name);
        self.members.push(m);
        self
    }
    fn failover(&mut self, leader: Option<&str>, candidate: Option<&str>) -> &mut Self {
        self.failover = Some(FailoverRequest {
            leader: leader.map(name),
            candidate: candidate.map(name),
            scheduled_at_ms: None,
            revision: Revision(42),
        });
        self
    }
}
