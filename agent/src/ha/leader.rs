//! Decisions while this member holds the `leader` key.
//!
//! Every batch starts by renewing the lease (a lost renewal aborts the rest), except when we
//! hand the lease away. The leader keeps PostgreSQL running as primary: it promotes a replica it
//! finds under its own key, restarts a crashed primary in place for up to
//! `primary_start_timeout`, and executes switchovers requested through the `failover` key by
//! demoting gracefully and releasing the key, so the candidate can take it at once.

use super::candidate;
use super::fencing::{self, proven};
use super::keys::{self, Initialize};
use super::{
    Action, ClusterView, Decision, FailoverRequest, HaConfig, LeaderKey, LocalRequest, MemberView,
    Observation, PgRole, PgState, Reason, RunningPg, StartAs, StopMode, may_write, slot_members,
};

pub(super) fn decide(
    obs: &Observation,
    view: &ClusterView,
    _key: &LeaderKey,
    cfg: &HaConfig,
) -> Decision {
    if cfg.pause {
        // Maintenance mode: keep the key so nobody else races, touch nothing else.
        return Decision::new([Action::RenewLease], Reason::Paused);
    }
    if let Some(why) = fencing::guards_missing(obs, cfg) {
        // Without its fence (or a required watchdog) this member must not lead: hand over as
        // in a switchover, stopping PostgreSQL first so nobody else starts while it writes.
        let mut actions = Vec::new();
        if fencing::writes_possible(obs) {
            actions.push(Action::Demote {
                mode: StopMode::Fast,
            });
        }
        actions.push(Action::ReleaseLease);
        return Decision::new(actions, Reason::CannotLead(why));
    }
    // A restart or start in flight: keep the lease while it runs; its outcome is judged later.
    if let Some(job) = obs.job {
        let proof = if may_write(obs) {
            proven(Action::RenewLease, cfg)
        } else {
            vec![Action::RenewLease]
        };
        return Decision::new(proof, Reason::JobInProgress(job.kind));
    }
    match &obs.pg {
        PgState::Running(r) if r.role == PgRole::Primary => running_primary(obs, view, cfg, r),
        PgState::Running(r) => {
            // Failsafe mode: we promised another leader, cut off from etcd, not to take over;
            // a key under our name (from before) is handed back rather than used.
            if cfg.failsafe_mode
                && let Some(l) = obs.failsafe_leader.as_ref().filter(|l| *l != &obs.me)
            {
                return Decision::new(
                    [Action::ReleaseLease],
                    Reason::CannotLead(super::Ineligible::FailsafeLeader(l.clone())),
                );
            }
            // Synchronous mode: a replica the `sync` key does not name may miss acknowledged
            // commits; it hands the key back rather than promote.
            if let Err(why) = super::sync::eligible(obs, view, cfg, r.lsn) {
                return Decision::new([Action::ReleaseLease], Reason::CannotLead(why));
            }
            // Our key, a replica under it (agent restarted after a crash, or a promotion that
            // failed last cycle). The renewal first proves the key is still ours, and the
            // fence is armed before PostgreSQL can accept a write.
            let mut actions = proven(Action::RenewLease, cfg);
            actions.extend(super::sync::before_promote(view, cfg));
            actions.push(Action::Promote);
            actions.extend(housekeeping(obs, view, cfg));
            Decision::new(actions, Reason::PromotingHeldLease)
        }
        PgState::Stopped(_) | PgState::Starting => {
            let down_for = obs.pg_down_since.map(|s| obs.now.since(s));
            if down_for.is_some_and(|d| d >= cfg.primary_start_timeout) {
                // Give up the lease. A postmaster still recovering would come up as a primary
                // without it, so it is stopped first.
                let mut actions = Vec::new();
                if obs.pg == PgState::Starting {
                    actions.push(Action::Demote {
                        mode: StopMode::Immediate,
                    });
                }
                actions.push(Action::ReleaseLease);
                return Decision::new(actions, Reason::PrimaryStartTimeout);
            }
            if obs.pg == PgState::Starting {
                // A postmaster in crash recovery comes up as a primary: keep it fenced.
                return Decision::new(proven(Action::RenewLease, cfg), Reason::PostgresStarting);
            }
            let mut actions = proven(Action::RenewLease, cfg);
            actions.push(Action::Start {
                role: StartAs::Primary,
            });
            Decision::new(actions, Reason::RestartingPrimary)
        }
        // Hung or SIGSTOPped: nobody else could do better with our data; keep the lease, and
        // keep the fence on it (it may wake up as a primary).
        PgState::Unknown => Decision::new(
            proven(Action::RenewLease, cfg),
            Reason::PostgresUnresponsive,
        ),
        PgState::NoData => Decision::new([Action::ReleaseLease], Reason::LeaderWithoutData),
    }
}

fn running_primary(
    obs: &Observation,
    view: &ClusterView,
    cfg: &HaConfig,
    me: &RunningPg,
) -> Decision {
    if let Some(fo) = &view.failover
        && let Some(d) = switchover(obs, view, cfg, fo)
    {
        return d;
    }
    if obs.request == Some(LocalRequest::Restart) {
        let mut actions = proven(Action::RenewLease, cfg);
        actions.push(Action::Restart {
            role: StartAs::Primary,
        });
        return Decision::new(actions, Reason::Requested(super::JobKind::Restart));
    }
    let mut actions = proven(Action::RenewLease, cfg);
    actions.extend(housekeeping(obs, view, cfg));
    actions.extend(super::sync::leader_actions(obs, view, cfg, me.lsn));
    let reason = match &view.failover {
        Some(_) => Reason::SwitchoverScheduled,
        None => Reason::LeaderRenewed,
    };
    Decision::new(actions, reason)
}

/// What a leader keeps in order besides its lease: the system id in `initialize` (after a
/// bootstrap, when we took over a cluster whose key was lost, or replacing a corrupt one; a
/// *foreign* valid identifier is left for an operator), a usable `config`, the `failsafe`
/// key, and one replication slot per member.
pub(super) fn housekeeping(obs: &Observation, view: &ClusterView, cfg: &HaConfig) -> Vec<Action> {
    let mut actions = Vec::new();
    if let Some(sysid) = keys::local_sysid(&obs.pg) {
        match keys::initialize(view) {
            Initialize::Absent | Initialize::Claimed => actions.push(Action::WriteInitialize {
                sysid: sysid.to_string(),
            }),
            Initialize::Corrupt(found) => actions.push(Action::RepairInitialize {
                found: found.to_string(),
                sysid: sysid.to_string(),
            }),
            Initialize::Valid(_) => {}
        }
    }
    if !view.has_config {
        actions.push(Action::SeedConfig {
            replacing: view.config_garbage,
        });
    }
    if cfg.failsafe_mode {
        let mut members: Vec<_> = view.members.iter().map(|m| m.name.clone()).collect();
        if !members.contains(&obs.me) {
            members.push(obs.me.clone());
        }
        members.sort();
        let mut listed = view.failsafe.clone().unwrap_or_default();
        listed.sort();
        if listed != members {
            actions.push(Action::WriteFailsafeKey { members });
        }
    }
    if cfg.use_slots {
        actions.push(Action::SyncSlots {
            members: slot_members(view, &obs.me),
        });
    }
    actions
}

/// A `failover` key while we lead: hand over gracefully when it is due and valid, clear it when
/// it cannot be acted on, or `None` to carry on (not due yet).
fn switchover(
    obs: &Observation,
    view: &ClusterView,
    cfg: &HaConfig,
    fo: &FailoverRequest,
) -> Option<Decision> {
    let clear = |why: String| {
        let mut actions = proven(Action::RenewLease, cfg);
        actions.push(Action::ClearFailover {
            revision: fo.revision,
        });
        Decision::new(actions, Reason::FailoverRequestInvalid(why))
    };
    if let Some(l) = &fo.leader
        && l != &obs.me
    {
        return Some(clear(format!(
            "leader name does not match: {l} != {}",
            obs.me
        )));
    }
    if fo.scheduled_at_ms.is_some_and(|at| at > obs.wall_ms) {
        return None;
    }
    let leader = view.member(&obs.me);
    let problem =
        |m: &MemberView| candidate::member_problem(m, leader, Some(&obs.streaming_replicas));
    let ok = match &fo.candidate {
        Some(c) if c == &obs.me => {
            return Some(clear(
                "I am already the leader, no need to fail over".into(),
            ));
        }
        Some(c) => match view.member(c) {
            None => return Some(clear(format!("candidate {c} is not a member"))),
            Some(m) => match problem(m).or_else(|| candidate::sync_problem(view, cfg, c)) {
                Some(why) => return Some(clear(format!("candidate {c} {why}"))),
                None => true,
            },
        },
        None => {
            let healthy = view
                .members
                .iter()
                .filter(|m| {
                    m.name != obs.me
                        && problem(m).is_none()
                        && candidate::sync_problem(view, cfg, &m.name).is_none()
                })
                .count();
            if let Some(why) = candidate::quorum_problem(view, cfg, healthy) {
                return Some(clear(why));
            }
            healthy > 0
        }
    };
    if !ok {
        return Some(clear("no healthy replica to switch over to".into()));
    }
    // Stop first (fast shutdown ships all WAL to connected replicas), publish where the WAL
    // ends (the candidate promotes only once it has received that much), then release.
    Some(Decision::new(
        [
            Action::Demote {
                mode: StopMode::Graceful,
            },
            Action::PublishPosition,
            Action::ReleaseLease,
        ],
        Reason::SwitchingOver {
            candidate: fo.candidate.clone(),
        },
    ))
}
