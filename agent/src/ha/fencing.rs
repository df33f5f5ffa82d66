//! The rules that keep a primary from writing without authority, whichever situation the
//! rest of the core is in: the demotion point, the fence, the watchdog.
//!
//! - **Demote in time**: a member that may be writing (PostgreSQL answers as primary, a job
//!   may start one, or a PostgreSQL that stopped answering while the fence was armed) and
//!   whose authority is not valid beyond `timing::demote_at` stops PostgreSQL at once
//!   (immediate). This is checked before anything else, so neither a stale etcd cache nor a
//!   renewal that might still succeed can postpone it. A renewal is never worth waiting for
//!   past that point: if it came back late, the lease could have expired in between.
//!   Maintenance mode and our own bootstrap (no other member can have data yet) are exempt.
//! - **The fence moves only after proof**: `ExtendFence` appears only right after an
//!   `AcquireLease`, a `RenewLease` or an accepted `FailsafeRound` in the same batch (a
//!   failure aborts the batch first), and before any `Promote` or start as primary.
//! - **No leader without its guards**: a member whose fence cannot be reached (fence on), or
//!   whose watchdog is unusable in `required` mode, may not take, keep or use the lease.
//! - **Disarm when there is nothing to guard**: demoted, stopped, paused.

use super::{
    Action, DcsView, Decision, FenceState, HaConfig, Ineligible, Observation, PgState, Reason,
    StopMode, WatchdogMode, WatchdogState, authority_until, may_write, timing,
};

/// The fence holds a deadline now.
pub(super) fn fence_armed(obs: &Observation) -> bool {
    matches!(obs.fence, FenceState::Ready { armed: Some(_) })
}

/// PostgreSQL may be accepting writes here: it answers as primary, a job may start it as
/// one, or it stopped answering while the fence guarded it as a primary.
pub fn writes_possible(obs: &Observation) -> bool {
    may_write(obs) || (obs.pg == PgState::Unknown && fence_armed(obs))
}

/// A primary whose authority does not reach past the demotion point: stop at once.
pub(super) fn authority_expired(obs: &Observation, cfg: &HaConfig) -> Option<Decision> {
    if cfg.pause || obs.bootstrapping || !writes_possible(obs) {
        return None;
    }
    let in_time =
        authority_until(obs, cfg).is_some_and(|until| obs.now < timing::demote_at(until, cfg));
    if in_time {
        return None;
    }
    let reason = match obs.dcs {
        DcsView::Unreachable { .. } => Reason::LeaseExpiringWithoutDcs,
        DcsView::Reachable(_) => Reason::LeaseNotRenewedInTime,
    };
    Some(Decision::new(
        [Action::Demote {
            mode: StopMode::Immediate,
        }],
        reason,
    ))
}

/// Why this member may not hold the leader lease now because of its guards, if so.
pub(super) fn guards_missing(obs: &Observation, cfg: &HaConfig) -> Option<Ineligible> {
    if cfg.fence && obs.fence == FenceState::Unavailable {
        return Some(Ineligible::FenceUnavailable);
    }
    if cfg.watchdog == WatchdogMode::Required && obs.watchdog != WatchdogState::Usable {
        return Some(Ineligible::WatchdogUnavailable);
    }
    None
}

/// `[proof, ExtendFence]`: the proof of authority followed by moving the fence deadline to
/// it, when the fence is on.
pub(super) fn proven(proof: Action, cfg: &HaConfig) -> Vec<Action> {
    let mut v = vec![proof];
    if cfg.fence {
        v.push(Action::ExtendFence);
    }
    v
}

/// Appends `DisarmFence` when the fence holds a deadline and nothing is left to guard (or
/// maintenance mode is on), unless the decision arms it again.
pub(super) fn disarm_when_idle(obs: &Observation, cfg: &HaConfig, mut d: Decision) -> Decision {
    let arms = d.actions.iter().any(|a| {
        matches!(
            a,
            Action::ExtendFence
                | Action::Promote
                | Action::Start {
                    role: super::StartAs::Primary
                }
        )
    });
    // A batch that demotes disarms right after the stop (a failed stop aborts the batch
    // first, leaving the fence armed).
    let demotes = d.actions.iter().any(|a| matches!(a, Action::Demote { .. }));
    let idle = cfg.pause || !writes_possible(obs) || demotes;
    if fence_armed(obs) && idle && !arms {
        d.actions.push(Action::DisarmFence);
    }
    d
}
