//! Decisions while the `leader` key cannot be trusted (`keys::LeaderState::Untrusted`): it is
//! attached to no lease (written by hand), or names us under a lease that is not ours.
//!
//! Such a key must neither stop a healthy primary (Patroni's agent would demote when it finds
//! a name that is not its own) nor block the cluster forever (a key without a lease never
//! expires). So:
//! - a member that may be writing (and still has authority: the demotion point is checked
//!   before this module is asked) leads in fact: it takes the key over (compare-and-set on the
//!   revision it saw), moves its fence and carries on, without stopping PostgreSQL;
//! - any other member treats the key as vacant: the normal leader race decides (a running
//!   primary among the peers keeps everybody else out), and its winner takes the key over
//!   instead of creating it.

use super::fencing::proven;
use super::{Action, ClusterView, Decision, HaConfig, LeaderKey, Observation, Reason, leader};

pub(super) fn decide(
    obs: &Observation,
    view: &ClusterView,
    key: &LeaderKey,
    cfg: &HaConfig,
) -> Decision {
    if cfg.pause {
        return Decision::idle(Reason::Paused);
    }
    let take = Action::TakeOverLeaderKey {
        revision: key.revision,
    };
    if super::fencing::writes_possible(obs) {
        if let Some(why) = super::fencing::guards_missing(obs, cfg) {
            return Decision::new(
                [Action::Demote {
                    mode: super::StopMode::Fast,
                }],
                Reason::CannotLead(why),
            );
        }
        let mut actions = proven(take, cfg);
        actions.extend(leader::housekeeping(obs, view, cfg));
        return Decision::new(actions, Reason::ReclaimingLeaderKey);
    }
    let d = super::no_leader::vacant(obs, view, cfg);
    Decision {
        actions: d
            .actions
            .into_iter()
            .map(|a| match a {
                Action::AcquireLease => take.clone(),
                other => other,
            })
            .collect(),
        reason: d.reason,
    }
}
