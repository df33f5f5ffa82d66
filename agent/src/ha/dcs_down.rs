//! Decisions while etcd cannot be read.
//!
//! Nobody can take the lease from us while etcd is unreachable for us *and* reachable for
//! others only after our lease expired in etcd. So a primary may keep running as long as its
//! lease is valid, but must have stopped accepting writes before it could expire: it demotes
//! (immediate stop) once less than `retry_timeout` of the lease is left, which leaves
//! `retry_timeout` for the stop to finish. `loop_wait + 2 * retry_timeout <= ttl` (enforced by
//! config validation) guarantees a full retry window before that point.

use super::{
    Action, Decision, HaConfig, Millis, Observation, PgRole, PgState, Reason, StartAs, StopMode,
};

pub(super) fn decide(obs: &Observation, _since: Millis, cfg: &HaConfig) -> Decision {
    let may_write = obs.pg.role() == PgRole::Primary || obs.job.is_some_and(|j| j.primary);
    if may_write {
        if cfg.pause {
            return Decision::idle(Reason::Paused);
        }
        let left = obs
            .lease_valid_until
            .map_or(Millis(0), |until| until.since(obs.now));
        if left <= cfg.retry_timeout {
            return Decision::new(
                [Action::Demote {
                    mode: StopMode::Immediate,
                }],
                Reason::LeaseExpiringWithoutDcs,
            );
        }
        return Decision::new([Action::RenewLease], Reason::DcsUnreachableRetrying);
    }
    if let Some(job) = obs.job {
        return Decision::idle(Reason::JobInProgress(job.kind));
    }
    match obs.pg {
        // Serve reads meanwhile: a read-only standby with no upstream cannot conflict with
        // whoever leads once etcd is back.
        PgState::Stopped(_) if !cfg.pause => Decision::new(
            [Action::Start {
                role: StartAs::Replica { upstream: None },
            }],
            Reason::StartingAsReplica,
        ),
        _ => Decision::idle(Reason::DcsUnreachable),
    }
}
