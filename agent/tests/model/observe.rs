//! What one member's agent observes: its PostgreSQL, its cached copy of etcd, the peers it
//! reaches, its lease, fence and (on a primary) its WAL senders, `synchronous_standby_names`
//! and the standbys the shell confirmed synchronous, as the core's `Observation`.
//!
//! Not observed: `following_since` and `not_streaming_since` stay `None`, so the core never
//! asks for `RetryStreaming` (a reload with no effect on the modelled state, which `execute`
//! would take as done) nor rewinds a diverged replica (jobs are not modelled either): a
//! replica whose WAL is not on its leader's history stays behind, never streams, and so is
//! never chosen synchronous.

use ha_agent::ha::{
    ControlState, DcsView, FenceState, HaConfig, LeaderSeen, Lsn, Observation, PeerStatus, PgRole,
    PgState, RunningPg, StoppedPg, WatchdogState,
};

use super::etcd::view_of;
use super::world::{N, Pg, SYSID, World, abs, name};

impl World {
    pub(super) fn observation(&self, i: usize, cfg: &HaConfig) -> Observation {
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
                checkpoint_lsn: Lsn(me.lsn()),
            }),
            Pg::Primary | Pg::Replica(_) => PgState::Running(RunningPg {
                role: if me.pg == Pg::Primary {
                    PgRole::Primary
                } else {
                    PgRole::Replica
                },
                sysid: SYSID.into(),
                timeline: me.timeline,
                lsn: Lsn(me.lsn()),
                replay_lsn: Lsn(me.lsn()),
                streaming: self.upstream(i).is_some(),
            }),
        };
        let peers = match &dcs {
            DcsView::Reachable(v) if ha_agent::ha::needs_peers(v, &name(i), &pg) => (0..N)
                // A frozen agent does not answer; an isolated member is not reached.
                .filter(|j| *j != i && !self.m[*j].stalled && !me.isolated && !self.m[*j].isolated)
                .map(|j| PeerStatus {
                    // What it last read of the leader key (quorum mode's votes need it).
                    leader_seen: match (self.m[j].cut_since, self.m[j].view.leader) {
                        (Some(_), _) => LeaderSeen::Unknown,
                        (None, None) => LeaderSeen::Vacant,
                        (None, Some((h, _, _))) => LeaderSeen::Held(name(h)),
                    },
                    name: name(j),
                    running_primary: self.m[j].pg == Pg::Primary,
                    timeline: Some(self.m[j].timeline),
                    lsn: Some(Lsn(self.m[j].lsn())),
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
            streaming_replicas: self.streaming_from(i).into_iter().map(name).collect(),
            // The shell's confirmation (`postgres.rs`), and the value in force on a primary.
            sync_replicas: (0..N)
                .filter(|j| me.confirm.ready & (1 << j) != 0)
                .map(name)
                .collect(),
            sync_names: (me.pg == Pg::Primary).then(|| me.names.core()),
        }
    }
}
