//! Decisions while another member holds the `leader` key.
//!
//! A node that runs as primary without the key stops accepting writes at once (immediate
//! stop): two writable primaries are the one outcome worse than downtime. Otherwise the node
//! makes its PostgreSQL a streaming replica of the leader: clone when there is no data, start
//! when stopped, re-point replication when it follows someone else, and rewind (or, when
//! rewinding is off or did not help, clone again) when its timeline diverged from the leader's.

use super::keys::{self, Initialize};
use super::{
    Action, ClusterView, Decision, HaConfig, JobKind, LeaderKey, LocalRequest, Millis, Observation,
    PgState, Reason, RunningPg, StartAs, StopMode, TimelineSwitch, upstream_of,
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
    if let Some(job) = obs.job {
        return Decision::idle(Reason::JobInProgress(job.kind));
    }
    if cfg.pause {
        return Decision::idle(Reason::Paused);
    }
    let Some(upstream) = upstream_of(view, leader) else {
        return Decision::idle(Reason::WaitingForLeaderRecord(leader.clone()));
    };
    // Copying the leader's data needs its identity confirmed: `initialize` valid, the leader
    // (when it answers) running that very system, and our own data (if any) not in conflict.
    let verified = match verified_sysid(obs, view, leader) {
        Ok(sysid) => Some(sysid),
        Err(d) if obs.pg == PgState::NoData || obs.request == Some(LocalRequest::Reinitialize) => {
            return d;
        }
        Err(_) => None,
    };
    if obs.request == Some(LocalRequest::Reinitialize)
        && let Some(sysid) = verified.clone()
    {
        return Decision::new(
            [Action::Reinitialize { upstream, sysid }],
            Reason::Requested(JobKind::Reinitialize),
        );
    }
    match &obs.pg {
        PgState::NoData => match verified {
            // A copy that failed is tried again a loop later, not at once (it loads the leader).
            _ if failed_recently(obs, &[JobKind::Clone, JobKind::Reinitialize], cfg.loop_wait) => {
                Decision::idle(Reason::CloneRetryLater(leader.clone()))
            }
            Some(sysid) => Decision::new(
                [Action::Clone { upstream, sysid }],
                Reason::CloningFromLeader(leader.clone()),
            ),
            None => Decision::idle(Reason::SystemIdUnverified),
        },
        PgState::Stopped(_) => {
            // It would not start as a replica (PostgreSQL refuses a leader whose timeline is
            // not a child of its own history): rewind it. pg_rewind says "no rewind required"
            // when that was not the problem. A rewind that failed too is retried later.
            if failed_recently(obs, &[JobKind::Start], cfg.ttl) && cfg.use_pg_rewind {
                if rewind_failed_recently(obs, cfg) {
                    return Decision::idle(Reason::RewindRetryLater(leader.clone()));
                }
                if verified.is_some() {
                    return Decision::new(
                        [Action::Rewind { upstream }],
                        Reason::RewindingDiverged(leader.clone()),
                    );
                }
            }
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
                // Never rewrite data because of an identity etcd cannot vouch for.
                let Some(sysid) = verified else {
                    return Decision::idle(conflict_reason(obs, view));
                };
                // Throwing data away is only right when rewinding is off or demonstrably did
                // not help; a rewind that failed (most often because the leader could not be
                // reached) is retried after a pause, never escalated to a wipe.
                if !cfg.use_pg_rewind || rewound_recently(obs, cfg) {
                    return Decision::new(
                        [Action::Reinitialize { upstream, sysid }],
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
                return Decision::new(
                    [Action::Restart {
                        role: StartAs::Replica {
                            upstream: Some(upstream),
                        },
                    }],
                    Reason::Requested(JobKind::Restart),
                );
            }
            if obs.following.as_ref() != Some(leader) {
                return Decision::new(
                    [Action::Follow { upstream }],
                    Reason::ReconfiguringToFollow(leader.clone()),
                );
            }
            if !r.streaming && retry_streaming_due(obs) {
                return Decision::new(
                    [Action::RetryStreaming],
                    Reason::RetryingStreaming(leader.clone()),
                );
            }
            Decision::idle(Reason::FollowingLeader(leader.clone()))
        }
    }
}

/// How long a replica re-pointed at a leader may go without streaming before it asks
/// PostgreSQL to retry at once.
pub const STREAM_RETRY_AFTER: Millis = Millis(250);

/// For how long after being re-pointed a replica keeps asking PostgreSQL to retry.
pub const STREAM_RETRY_WINDOW: Millis = Millis::secs(5);

/// Rule: a replica re-pointed at the leader (or started towards it) less than
/// [`STREAM_RETRY_WINDOW`] ago that has not streamed for [`STREAM_RETRY_AFTER`] asks
/// PostgreSQL to retry now (every cycle, which the cadence runs every
/// [`STREAM_RETRY_AFTER`] then). Why: a WAL receiver that failed (the new leader was not
/// promoted yet, or had not created our slot) makes PostgreSQL wait
/// `wal_retrieve_retry_interval` (5 s by default) before it tries again, which was measured
/// here as 5 s without full redundancy after one switchover in two. Bounded to the window so
/// that a replica whose leader is gone is not reloaded forever (and none is reloaded right
/// before it might race for a vacant lease: the window starts when it follows a new leader).
pub fn retry_streaming_due(obs: &Observation) -> bool {
    let (Some(following), Some(not_streaming)) = (obs.following_since, obs.not_streaming_since)
    else {
        return false;
    };
    obs.now.since(following) < STREAM_RETRY_WINDOW
        && obs.now.since(not_streaming) >= STREAM_RETRY_AFTER
}

/// The system identifier a copy of `leader`'s data must have, or the decision to wait: the
/// `initialize` key must be a valid identifier, the leader (when it answered) must run that
/// system, and our own data directory (if any) must not contradict it.
fn verified_sysid(
    obs: &Observation,
    view: &ClusterView,
    leader: &super::MemberName,
) -> Result<String, Decision> {
    let Initialize::Valid(cluster) = keys::initialize(view) else {
        return Err(Decision::idle(Reason::SystemIdUnverified));
    };
    let leader_sysid = obs
        .peers
        .iter()
        .find(|p| &p.name == leader)
        .and_then(|p| p.sysid.as_deref());
    if let Some(l) = leader_sysid.filter(|l| *l != cluster) {
        return Err(Decision::idle(Reason::SystemIdConflict {
            cluster: cluster.to_string(),
            local: l.to_string(),
        }));
    }
    if keys::system_id_conflict(obs, view).is_some() {
        return Err(Decision::idle(conflict_reason(obs, view)));
    }
    Ok(cluster.to_string())
}

/// `SystemIdConflict` with what is known, else `SystemIdUnverified`.
fn conflict_reason(obs: &Observation, view: &ClusterView) -> Reason {
    match keys::system_id_conflict(obs, view) {
        Some((cluster, local)) => Reason::SystemIdConflict {
            cluster: cluster.to_string(),
            local: local.to_string(),
        },
        None => Reason::SystemIdUnverified,
    }
}

/// How long a replica that looks diverged must fail to stream before it is rewound.
pub(super) const DIVERGENCE_CONFIRM: Millis = Millis(2_000);

/// The last job was one of `kinds` and failed less than `within` ago.
fn failed_recently(obs: &Observation, kinds: &[JobKind], within: Millis) -> bool {
    obs.last_job
        .is_some_and(|j| kinds.contains(&j.kind) && !j.ok && obs.now.since(j.at) < within)
}

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
