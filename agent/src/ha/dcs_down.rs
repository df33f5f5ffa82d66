//! Decisions while etcd cannot be read.
//!
//! Nobody can take the lease from us before it expired in etcd. So a primary keeps serving
//! while its authority lasts and keeps trying to renew; once the demotion point
//! (`timing::demote_at`) is reached, `fencing::authority_expired` stops it before this module
//! is even asked. In failsafe mode a primary instead asks every member to accept it
//! (`FailsafeRound`); each round every member accepts extends its authority by ttl from the
//! round's send time (Patroni's failsafe protocol).

use super::fencing::{proven, writes_possible};
use super::{Action, Decision, HaConfig, Millis, Observation, PgRole, PgState, Reason, StartAs};

pub(super) fn decide(obs: &Observation, _since: Millis, cfg: &HaConfig) -> Decision {
    if writes_possible(obs) {
        if cfg.pause {
            return Decision::idle(Reason::Paused);
        }
        if cfg.failsafe_mode && obs.pg.role() == PgRole::Primary {
            return Decision::new(
                proven(Action::FailsafeRound, cfg),
                Reason::FailsafeKeepsLeader,
            );
        }
        return Decision::new(
            proven(Action::RenewLease, cfg),
            Reason::DcsUnreachableRetrying,
        );
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
