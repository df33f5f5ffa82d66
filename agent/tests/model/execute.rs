//! Transitions: one agent's cycle (observe, decide, execute every action in order, stopping
//! at a failure or a lost compare-and-set, then the shell's keepalive and record), and what each
//! action does to etcd (the `sync` key by compare-and-set on its revision), PostgreSQL
//! (`synchronous_standby_names` included) and the fence. A member made primary without the
//! lease, or lacking a commit some primary acknowledged, is recorded here as a violation, at
//! the moment it happens.

use ha_agent::ha::{Action, HaConfig, Revision, StartAs, timing};

use super::etcd::{SyncRec, record};
use super::postgres::Names;
use super::world::{DecideFn, Pg, World, abs, index, rel};

impl World {
    pub(super) fn cycle(&mut self, i: usize, cfg: &HaConfig, decide: DecideFn) {
        let me = &mut self.m[i];
        me.vacant_since = if me.cut_since.is_none() && me.view.leader.is_none() {
            Some(me.vacant_since.unwrap_or(self.t))
        } else {
            None
        };
        // (Asynchronous runs skip it: it would only split equal states.)
        if self.sync {
            self.confirm_sync(i);
        }
        let obs = self.observation(i, cfg);
        let d = decide(&obs, cfg);
        for a in &d.actions {
            let done = self.execute(i, a, cfg);
            // A new `synchronous_standby_names` may release waiting commits at once.
            self.acknowledge();
            if !done {
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
                self.etcd.optime = self.m[i].lsn();
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
                let missing = self.missing_commits(i);
                if !missing.is_empty() && self.violation.is_none() {
                    self.violation = Some(format!(
                        "m{i} made PostgreSQL primary ({a:?}) without acknowledged commit(s) \
                         {missing:?}: it holds {:?}, clients were told {:?} are committed",
                        self.m[i].wal, self.acked
                    ));
                }
                if self.m[i].pg != Pg::Primary {
                    self.m[i].sessions_from = self.m[i].wal.len();
                }
                if *a == Action::Promote && self.m[i].pg != Pg::Primary {
                    self.m[i].timeline += 1;
                    self.etcd
                        .history
                        .push((self.m[i].timeline - 1, self.m[i].lsn()));
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
                // The shell forgets the setting when it starts or re-points a replica.
                self.m[i].names = Names::Off;
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
                    self.m[i].wal = self.m[u].wal.clone();
                    self.m[i].timeline = self.m[u].timeline;
                }
                self.m[i].pg = Pg::Replica(u);
                self.m[i].following = u;
                self.m[i].names = Names::Off;
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
            // A reload: the value is in force at once (the core waits a cycle before relying
            // on it, as the shell confirms standbys only under a value it has seen).
            Action::SetSyncStandbyNames(names) => {
                self.m[i].names = Names::of(names);
                true
            }
            Action::WriteSyncKey {
                standbys,
                quorum,
                revision,
            } => {
                if cut || !self.sync_key_at(*revision) {
                    return false;
                }
                self.etcd.rev += 1;
                self.etcd.sync = Some(SyncRec {
                    leader: i,
                    standbys: standbys
                        .iter()
                        .filter_map(index)
                        .fold(0, |m, j| m | (1 << j)),
                    quorum: *quorum,
                    rev: self.etcd.rev,
                });
                true
            }
            Action::DeleteSyncKey { revision } => {
                if cut || !self.sync_key_at(Some(*revision)) {
                    return false;
                }
                self.etcd.rev += 1;
                self.etcd.sync = None;
                true
            }
            // Housekeeping without bearing on who writes.
            _ => !cut || !writes_etcd(a),
        }
    }
}

impl World {
    /// The `sync` key's compare: absent (`None`), or at this mod_revision.
    fn sync_key_at(&self, revision: Option<Revision>) -> bool {
        let now = self
            .etcd
            .sync
            .map(|s| Revision(i64::try_from(s.rev).unwrap_or(0)));
        now == revision
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
