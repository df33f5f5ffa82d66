//! The modelled PostgreSQL's replication: which replicas stream from a running primary, how
//! they catch up, `synchronous_standby_names` and when a commit is acknowledged (PostgreSQL's
//! rules for `FIRST n`, `ANY n`, `'*'` and empty), and the shell's confirmation of synchronous
//! standbys (`runtime::sync::SyncConfirm`), which the core reads as `sync_replicas`.
//!
//! A member's WAL is the list of commits it holds, in order (a commit is an id; the WAL
//! position is [`BASE_LSN`] plus their number). A replica streams only while its WAL is a
//! prefix of its upstream's (a diverged one would be refused), so positions compare as WAL.

use ha_agent::ha::{MemberName, SyncStandbyNames};

use super::world::{Member, N, Pg, World, index, name};

/// The WAL position of the cluster's data before any modelled commit.
pub const BASE_LSN: u64 = 10;

/// `synchronous_standby_names` in a member's configuration (member indices, in order).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Names {
    /// Empty: commits are acknowledged without waiting.
    #[default]
    Off,
    /// `'*'`: one streaming standby (the first by index) confirms.
    Any,
    /// `FIRST n (...)`: the first `n` streaming standbys listed, by priority, confirm.
    First(usize, Vec<usize>),
    /// `ANY n (...)`: any `n` streaming standbys listed confirm.
    Quorum(usize, Vec<usize>),
}

impl Names {
    /// From the core's value.
    pub fn of(s: &SyncStandbyNames) -> Names {
        let idx = |v: &[MemberName]| v.iter().filter_map(index).collect();
        match s {
            SyncStandbyNames::Off => Names::Off,
            SyncStandbyNames::Any => Names::Any,
            SyncStandbyNames::First { count, names } => Names::First(*count, idx(names)),
            SyncStandbyNames::Quorum { count, names } => Names::Quorum(*count, idx(names)),
        }
    }
    /// To the core's value.
    pub fn core(&self) -> SyncStandbyNames {
        let names = |v: &[usize]| v.iter().map(|i| name(*i)).collect();
        match self {
            Names::Off => SyncStandbyNames::Off,
            Names::Any => SyncStandbyNames::Any,
            Names::First(count, v) => SyncStandbyNames::First {
                count: *count,
                names: names(v),
            },
            Names::Quorum(count, v) => SyncStandbyNames::Quorum {
                count: *count,
                names: names(v),
            },
        }
    }
}

/// The shell's confirmation of synchronous standbys under the value in force: the value it
/// last saw, the primary's position when it first saw it (the mark), and the standbys seen
/// synchronous with a flush at or past the mark (bit j: member j).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Confirm {
    /// The value seen; `None` while PostgreSQL is not a running primary.
    pub seen: Option<Names>,
    /// The mark.
    pub mark: u64,
    /// Confirmed standbys.
    pub ready: u8,
}

impl Member {
    /// The WAL position (flushed and replayed are one in the model).
    pub fn lsn(&self) -> u64 {
        BASE_LSN + u64::try_from(self.wal.len()).unwrap_or(0)
    }
}

impl World {
    /// The primary member `j` streams from now, if any: `j` is a replica pointed at a
    /// running primary, neither is cut off from the other members, and `j`'s WAL is on the
    /// primary's history.
    pub fn upstream(&self, j: usize) -> Option<usize> {
        let Pg::Replica(Some(u)) = self.m[j].pg else {
            return None;
        };
        let (me, up) = (&self.m[j], &self.m[u]);
        (up.pg == Pg::Primary
            && !me.isolated
            && !up.isolated
            && up.timeline >= me.timeline
            && up.wal.starts_with(&me.wal))
        .then_some(u)
    }

    /// The members streaming from `p`, by index.
    pub fn streaming_from(&self, p: usize) -> Vec<usize> {
        (0..N).filter(|j| self.upstream(*j) == Some(p)).collect()
    }

    /// Replica `j` receives and flushes everything its upstream has.
    pub fn replicate(&mut self, j: usize) {
        if let Some(u) = self.upstream(j) {
            self.m[j].wal = self.m[u].wal.clone();
            self.m[j].timeline = self.m[u].timeline;
        }
    }

    /// Whether `replicate(j)` would change anything.
    pub fn behind(&self, j: usize) -> bool {
        self.upstream(j).is_some_and(|u| {
            self.m[j].wal != self.m[u].wal || self.m[j].timeline != self.m[u].timeline
        })
    }

    /// The standbys of primary `p` that PostgreSQL counts for commits now (`sync_state`
    /// `sync` or `quorum` in `pg_stat_replication`), and how many of them must confirm.
    fn synchronous(&self, p: usize) -> Option<(usize, Vec<usize>)> {
        let streaming = self.streaming_from(p);
        match &self.m[p].names {
            Names::Off => None,
            Names::Any => Some((1, streaming.into_iter().take(1).collect())),
            Names::First(n, list) => Some((
                *n,
                list.iter()
                    .filter(|j| streaming.contains(j))
                    .take(*n)
                    .copied()
                    .collect(),
            )),
            Names::Quorum(n, list) => Some((
                *n,
                list.iter()
                    .filter(|j| streaming.contains(j))
                    .copied()
                    .collect(),
            )),
        }
    }

    /// How much of primary `p`'s WAL is acknowledged under its setting (PostgreSQL's rule:
    /// empty waits for nobody; otherwise the `n`-th most advanced of the synchronous
    /// standbys, and nothing while fewer than `n` of them stream).
    fn ackable(&self, p: usize) -> usize {
        let len = self.m[p].wal.len();
        match self.synchronous(p) {
            None | Some((0, _)) => len,
            // Commits wait (nothing more is acknowledged).
            Some((n, sync)) if sync.len() < n => 0,
            Some((n, sync)) => {
                let mut flushed: Vec<usize> = sync.iter().map(|j| self.m[*j].wal.len()).collect();
                flushed.sort_unstable_by(|a, b| b.cmp(a));
                flushed[n - 1].min(len)
            }
        }
    }

    /// Acknowledges to clients every commit a running primary may acknowledge now.
    pub fn acknowledge(&mut self) {
        for p in 0..N {
            if self.m[p].pg != Pg::Primary {
                continue;
            }
            let k = self.ackable(p);
            let from = self.m[p].sessions_from.min(k);
            for c in &self.m[p].wal[from..k] {
                if !self.acked.contains(c) {
                    self.acked.push(*c);
                }
            }
        }
        self.acked.sort_unstable();
    }

    /// The acknowledged commits member `i` lacks.
    pub fn missing_commits(&self, i: usize) -> Vec<u8> {
        self.acked
            .iter()
            .filter(|c| !self.m[i].wal.contains(c))
            .copied()
            .collect()
    }

    /// The shell's confirmation step at the start of member `i`'s cycle.
    pub fn confirm_sync(&mut self, i: usize) {
        if self.m[i].pg != Pg::Primary {
            self.m[i].confirm = Confirm::default();
            return;
        }
        let names = self.m[i].names.clone();
        if self.m[i].confirm.seen.as_ref() != Some(&names) {
            self.m[i].confirm = Confirm {
                seen: Some(names),
                mark: self.m[i].lsn(),
                ready: 0,
            };
        }
        let mark = self.m[i].confirm.mark;
        for j in self.synchronous(i).map(|(_, s)| s).unwrap_or_default() {
            if self.m[j].lsn() >= mark {
                self.m[i].confirm.ready |= 1 << j;
            }
        }
    }
}
