//! Decisions while another member holds the `leader` key.
//!
//! A node that runs as primary without the key stops accepting writes at once (immediate
//! stop): two writable primaries are the one outcome worse than downtime. Otherwise the node
//! makes its PostgreSQL a streaming replica of the leader: clone when there is no data, start
//! when stopped, re-point replication when it follows someone else, and rewind (or, when
//! rewinding is off or did not help, clone again) when its timeline diverged from the leader's.

use super::{
    Action, ClusterView, Decision, HaConfig, JobKind, LeaderKey, LocalRequest, Millis, Observation,
    PgState, Reason, RunningPg, StartAs, StopMode, TimelineSwitch, sysid_mismatch, upstream_of,
};

pub(super) fn decide(
    obs: &Observation,
    view: &ClusterView,
    key: &LeaderKey,
    cfg: &HaConfig,
) -> Decision {
    let leader = &key.holder;
    // Safety before anything else: a primary, or a job that may start one, stops at once. Only
    // maintenance mode overrides this, because there the operator owns PostgreSQL (as in
    // Patroni).
    if super::fencing::writes_possible(obs) && !cfg.pause {
        return Decision::new(
            [Action::Demote {
                mode: StopMode::Immediate,
            }],
            Reason::LeaderKeyHeldByOther(leader.clone()),
        );
    }
    if let Some(d) = sysid_mismatch(obs, view) {
        return d;
    }
    if let Some(job) = obs.job {
        return Decision::idle(Reason::JobInProgress(job.kind));
    }
    if cfg.pause {
        return Decision::idle(Reason::Paused);
    }
    let Some(upstream) = upstream_of(view, leader) else {
        return Decision::idle(Reason::WaitingForLeaderRecord(leader.clone()));
    };
    if obs.request == Some(LocalRequest::Reinitialize) {
        return Decision::new(
            [Action::Reinitialize { upstream }],
            Reason::Requested(JobKind::Reinitialize),
        );
    }
    match &obs.pg {
        PgState::NoData => Decision::new(
            [Action::Clone { upstream }],
            Reason::CloningFromLeader(leader.clone()),
        ),
        PgState::Stopped(_) => {
            // Started as a standby it replays its own WAL first; whether it diverged from the
            // leader's timeline is judged once it runs and reports its replay position.
            Decision::new(
                [Action::Start {
                    role: StartAs::Replica {
                        upstream: Some(upstream),
                    },
                }],
                Reason::StartingAsReplica,
            )
        }
        PgState::Starting => Decision::idle(Reason::PostgresStarting),
        PgState::Unknown => Decision::idle(Reason::PostgresUnresponsive),
        PgState::Running(r) => {
            let leader_tl = view.member(leader).and_then(|m| m.timeline);
            // A replica that streams cannot have diverged (the leader would refuse it), and
            // while it follows a timeline switch its reported timeline lags its replay
            // position for a moment: only a replica that stays unable to stream is rewound.
            let stuck = obs
                .not_streaming_since
                .is_some_and(|since| obs.now.since(since) >= DIVERGENCE_CONFIRM);
            if stuck && diverged(r, leader_tl, &view.history) == Some(true) {
                // Throwing data away is only right when rewinding is off or demonstrably did
                // not help; a rewind that failed (most often because the leader could not be
                // reached) is retried after a pause, never escalated to a wipe.
                if !cfg.use_pg_rewind || rewound_recently(obs, cfg) {
                    return Decision::new(
                        [Action::Reinitialize { upstream }],
                        Reason::ReinitializingDiverged(leader.clone()),
                    );
                }
                if rewind_failed_recently(obs, cfg) {
                    return Decision::idle(Reason::RewindRetryLater(leader.clone()));
                }
                return Decision::new(
                    [Action::Rewind { upstream }],
                    Reason::RewindingDiverged(leader.clone()),
                );
            }
            if obs.request == Some(LocalRequest::Restart) {
                return Decision::new([Action::Restart], Reason::Requested(JobKind::Restart));
            }
            if obs.following.as_ref() != Some(leader) {
                return Decision::new(
                    [Action::Follow { upstream }],
                    Reason::ReconfiguringToFollow(leader.clone()),
                );
            }
            Decision::idle(Reason::FollowingLeader(leader.clone()))
        }
    }
}

/// How long a replica that looks diverged must fail to stream before it is rewound.
pub(super) const DIVERGENCE_CONFIRM: Millis = Millis(2_000);

/// The last job was a rewind that failed within the last ttl: wait before trying again.
fn rewind_failed_recently(obs: &Observation, cfg: &HaConfig) -> bool {
    obs.last_job
        .is_some_and(|j| j.kind == JobKind::Rewind && !j.ok && obs.now.since(j.at) < cfg.ttl)
}

/// A rewind succeeded within the last ttl and yet the node still diverges: rewinding again
/// would loop, so it is cloned afresh instead (the clone only replaces the data once the copy
/// is complete).
fn rewound_recently(obs: &Observation, cfg: &HaConfig) -> bool {
    obs.last_job
        .is_some_and(|j| j.kind == JobKind::Rewind && j.ok && obs.now.since(j.at) < cfg.ttl)
}

/// Whether a replica on `r`'s timeline and replay position can stream from a leader on
/// `leader_tl`: `Some(true)` when it holds WAL the leader's history does not (it replayed past
/// the point where the leader's timeline forked off its own, or is on a newer timeline),
/// `None` when the history does not say.
pub(super) fn diverged(
    r: &RunningPg,
    leader_tl: Option<u32>,
    history: &[TimelineSwitch],
) -> Option<bool> {
    let leader_tl = leader_tl?;
    if r.timeline == leader_tl {
        return Some(false);
    }
    if r.timeline > leader_tl {
        return Some(true);
    }
    let fork = history.iter().find(|h| h.timeline == r.timeline)?;
    Some(r.replay_lsn > fork.switch_lsn)
}
