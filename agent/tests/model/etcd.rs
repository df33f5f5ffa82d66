//! The modelled etcd: leases that expire, the `leader` key under a lease, the members' records,
//! `status`, `history` and `sync`; and how one member's cached copy of it reads to the core
//! (`ClusterView`). Keys change only through the transitions in `execute.rs` (compare-and-set
//! there) and lease expiry on a tick (`world.rs`).

use std::collections::BTreeMap;

use ha_agent::ha::{
    ClusterView, ConnTarget, HaConfig, KeyLease, LeaderKey, Lsn, MemberView, PgRole, Revision,
    SyncKey, TimelineSwitch, timing,
};

use super::world::{Member, N, Pg, Rel, SYSID, World, name};

/// A member's record in etcd.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    role: PgRole,
    running: bool,
    lsn: u64,
    timeline: u32,
}

/// etcd.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Etcd {
    /// `leader`: holder, lease, mod_revision.
    pub leader: Option<(usize, u64, u64)>,
    /// Live leases: id -> expiry.
    pub leases: BTreeMap<u64, Rel>,
    /// `members/<i>` with the lease it is under.
    pub members: [Option<(Record, u64)>; N],
    pub optime: u64,
    pub history: Vec<(u32, u64)>,
    pub rev: u64,
    pub next_lease: u64,
    /// `sync`.
    pub sync: Option<SyncRec>,
}

/// The `sync` key: the leader that wrote it, the standbys (quorum mode: voters) it names
/// (bit i: member i), `quorum`, and its mod_revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncRec {
    /// Member index of the leader.
    pub leader: usize,
    /// Named members.
    pub standbys: u8,
    /// `quorum`.
    pub quorum: usize,
    /// mod_revision.
    pub rev: u64,
}

impl World {
    /// Keeps member `i`'s lease alive (granting one when it has none or it expired).
    /// Returns whether the old lease was still alive.
    pub(super) fn keepalive(&mut self, i: usize, cfg: &HaConfig) -> bool {
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
}

pub(super) fn record(m: &Member) -> Record {
    Record {
        role: match m.pg {
            Pg::Primary => PgRole::Primary,
            Pg::Replica(_) => PgRole::Replica,
            Pg::Stopped => PgRole::Unknown,
        },
        running: m.pg != Pg::Stopped,
        lsn: m.lsn(),
        timeline: m.timeline,
    }
}

/// The core's view of an etcd copy, for the member whose lease is `lease`.
pub(super) fn view_of(e: &Etcd, lease: Option<u64>) -> ClusterView {
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
        sync: e.sync.map(|s| SyncKey {
            leader: Some(name(s.leader)),
            standbys: (0..N)
                .filter(|j| s.standbys & (1 << j) != 0)
                .map(name)
                .collect(),
            quorum: s.quorum,
            revision: Revision(i64::try_from(s.rev).unwrap_or(0)),
        }),
    }
}
