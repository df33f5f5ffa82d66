//! Decisions while the `leader` key is vacant.
//!
//! Three situations: the cluster was never initialized (race on `initialize`, the winner runs
//! initdb), we are bootstrapping it (take the lease, publish the system id), or a leader went
//! away (the leader race). In the race, a member takes the lease only if it is eligible:
//! not `nofailover`, within `maximum_lag_on_failover` of the last leader position, not behind
//! any other eligible member that answered (WAL position, then `failover_priority`), and no
//! member reports itself a running primary. Equally good members all try; etcd's
//! compare-and-create lets exactly one win, and `Promote` follows only a won `AcquireLease`.
//! With `synchronous_mode` on, only a member the `sync` key names may race (`sync`); in
//! quorum mode, a member that has the votes of enough voters (`quorum_vote`).

use super::action::lag;
use super::fencing::{guards_missing, proven};
use super::keys;
use super::{
    Action, ClusterView, Decision, HaConfig, Ineligible, JobKind, Observation, PgRole, PgState,
    Reason, RunningPg, StartAs, StopMode, slot_members,
};

pub(super) fn decide(obs: &Observation, view: &ClusterView, cfg: &HaConfig) -> Decision {
    match view.initialize.as_deref() {
        None if !obs.pg.has_data() => uninitialized(obs, cfg),
        Some("") => being_bootstrapped(obs, cfg),
        // Initialized (or data without an `initialize` key: etcd was wiped): the leader race.
        _ => vacant(obs, view, cfg),
    }
}

/// No cluster yet and no data: race to initialize it.
fn uninitialized(obs: &Observation, cfg: &HaConfig) -> Decision {
    if let Some(job) = obs.job {
        return Decision::idle(Reason::JobInProgress(job.kind));
    }
    if !cfg.can_bootstrap || cfg.nofailover {
        return Decision::idle(Reason::CannotBootstrap);
    }
    // The member that bootstraps leads: not without its fence or a required watchdog.
    if let Some(why) = guards_missing(obs, cfg) {
        return Decision::idle(Reason::NotRacing(why));
    }
    if cfg.pause {
        return Decision::idle(Reason::Paused);
    }
    Decision::new(
        [Action::ClaimInitialize, Action::Bootstrap],
        Reason::RacingToBootstrap,
    )
}

/// `initialize` is claimed but empty: a bootstrap runs, ours or someone else's.
fn being_bootstrapped(obs: &Observation, cfg: &HaConfig) -> Decision {
    if !obs.bootstrapping {
        return Decision::idle(Reason::WaitingForLeaderToBootstrap);
    }
    if obs.job.is_some() {
        return Decision::idle(Reason::Bootstrapping);
    }
    if obs
        .last_job
        .is_some_and(|j| j.kind == JobKind::Bootstrap && !j.ok)
    {
        return Decision::new([Action::CancelInitialize], Reason::BootstrapFailed);
    }
    match &obs.pg {
        PgState::Running(r) if r.role == PgRole::Primary => {
            let mut actions = proven(Action::AcquireLease, cfg);
            actions.extend([
                Action::WriteInitialize {
                    sysid: r.sysid.clone(),
                },
                Action::SeedConfig { replacing: None },
            ]);
            if cfg.use_slots {
                actions.push(Action::SyncSlots {
                    members: Vec::new(),
                });
            }
            Decision::new(actions, Reason::InitializedNewCluster)
        }
        // Bootstrapped, then PostgreSQL stopped before we took the lease: take it, then start.
        PgState::Stopped(_) if !cfg.pause => {
            let mut actions = proven(Action::AcquireLease, cfg);
            actions.push(Action::Start {
                role: StartAs::Primary,
            });
            Decision::new(actions, Reason::InitializedNewCluster)
        }
        _ => Decision::idle(Reason::Bootstrapping),
    }
}

/// The leader went away (or etcd lost its keys): race if we are the best candidate.
pub(super) fn vacant(obs: &Observation, view: &ClusterView, cfg: &HaConfig) -> Decision {
    // A start-as-primary in flight from when we held the lease: it no longer may.
    if obs.job.is_some_and(|j| j.primary) && !cfg.pause {
        return Decision::new(
            [Action::Demote {
                mode: StopMode::Immediate,
            }],
            Reason::DemotingIneligiblePrimary(Ineligible::NotRunning),
        );
    }
    if let Some(job) = obs.job {
        return Decision::idle(Reason::JobInProgress(job.kind));
    }
    if cfg.pause {
        // Patroni's pause: a running primary keeps (re)taking the lock; nothing is promoted.
        return match obs.pg.role() {
            PgRole::Primary => Decision::new([Action::AcquireLease], Reason::Paused),
            _ => Decision::idle(Reason::Paused),
        };
    }
    let r = match &obs.pg {
        PgState::NoData => return Decision::idle(Reason::WaitingForLeaderToBootstrap),
        // Join the race as a standby first: its replay position is what the race compares.
        PgState::Stopped(_) => {
            return Decision::new(
                [Action::Start {
                    role: StartAs::Replica { upstream: None },
                }],
                Reason::StartingAsReplica,
            );
        }
        PgState::Starting => return Decision::idle(Reason::PostgresStarting),
        PgState::Unknown => return Decision::idle(Reason::PostgresUnresponsive),
        PgState::Running(r) => r,
    };
    match eligibility(obs, view, cfg, r) {
        Ok(()) => {
            let mut actions = proven(Action::AcquireLease, cfg);
            if r.role == PgRole::Replica {
                actions.extend(super::sync::before_promote(view, cfg));
                actions.push(Action::Promote);
            }
            match keys::initialize(view) {
                keys::Initialize::Absent => actions.push(Action::WriteInitialize {
                    sysid: r.sysid.clone(),
                }),
                keys::Initialize::Corrupt(found) => actions.push(Action::RepairInitialize {
                    found: found.to_string(),
                    sysid: r.sysid.clone(),
                }),
                keys::Initialize::Claimed | keys::Initialize::Valid(_) => {}
            }
            if !view.has_config {
                actions.push(Action::SeedConfig {
                    replacing: view.config_garbage,
                });
            }
            if let Some(fo) = &view.failover {
                // A failover or switchover request is consumed by whoever takes over.
                actions.push(Action::ClearFailover {
                    revision: fo.revision,
                });
            }
            if cfg.use_slots {
                actions.push(Action::SyncSlots {
                    members: slot_members(view, &obs.me),
                });
            }
            Decision::new(actions, Reason::RacingForVacantLease)
        }
        Err(why) if r.role == PgRole::Primary => Decision::new(
            [Action::Demote {
                mode: StopMode::Fast,
            }],
            Reason::DemotingIneligiblePrimary(why),
        ),
        Err(why) => Decision::idle(Reason::NotRacing(why)),
    }
}

/// Whether the candidate a failover request names looks able to take over, from what it
/// answered on its REST API: running, and after a switchover past the old leader's WAL end.
///
/// A member's REST status is refreshed once per loop, so right after the old leader released
/// the candidate may still show a position from before the old leader's last WAL (its
/// shutdown checkpoint). For one `loop_wait` after this member saw the leader key vanish, a
/// candidate within `maximum_lag_on_failover` of that end is therefore still waited for: it
/// takes over itself once it is past the end. After that a candidate still short of the end
/// cannot take over and no longer holds the others back.
fn candidate_can_take_over(
    obs: &Observation,
    view: &ClusterView,
    cfg: &HaConfig,
    candidate: &super::MemberName,
    switchover: bool,
) -> bool {
    if view.member(candidate).is_none() || !super::sync::may_take_over(view, cfg, candidate) {
        return false;
    }
    let Some(p) = obs.peers.iter().find(|p| &p.name == candidate) else {
        // Not asked (no probe this cycle) is not the same as not answering.
        return obs.peers.is_empty();
    };
    let in_grace = obs
        .leader_vacant_since
        .is_some_and(|t| obs.now.since(t) < cfg.loop_wait);
    // Quorum rule: a candidate that, as far as we see, lacks the votes cannot take over (it
    // may be behind a voter), so it does not hold us back; not within the first loop, while
    // its answer may predate WAL we have since received (a switchover candidate would then
    // look behind us and lose the race it was named for).
    if !in_grace && let Some(key) = super::quorum_vote::rule_key(view, cfg) {
        let mut answers = super::quorum_vote::answers(obs, key);
        if let PgState::Running(me) = &obs.pg {
            answers.push((obs.me.clone(), Some(me.lsn)));
        }
        let has = p
            .lsn
            .is_some_and(|l| super::quorum_vote::has_quorum(key, candidate, l, &answers));
        if !has {
            return false;
        }
    }
    match (switchover, view.optime, p.lsn) {
        (true, Some(end), Some(lsn)) => {
            lsn > end || (in_grace && lag(end, lsn) <= cfg.maximum_lag_on_failover)
        }
        (true, Some(_), None) => false,
        _ => true,
    }
}

/// Whether this member may take the vacant lease (Patroni's `is_healthiest_node`).
pub(super) fn eligibility(
    obs: &Observation,
    view: &ClusterView,
    cfg: &HaConfig,
    me: &RunningPg,
) -> Result<(), Ineligible> {
    if cfg.nofailover {
        return Err(Ineligible::NoFailoverTag);
    }
    if let Some(why) = guards_missing(obs, cfg) {
        return Err(why);
    }
    // Synchronous mode: only a member the `sync` key names (or its leader) may have every
    // acknowledged commit; nobody else takes over, not even a failover candidate.
    super::sync::eligible(obs, view, cfg, me.lsn)?;
    // A system-ID conflict lets the running primary keep (re)taking the lease, and nobody
    // else become one.
    if me.role != PgRole::Primary && keys::system_id_conflict(obs, view).is_some() {
        return Err(Ineligible::SystemIdConflict);
    }
    if cfg.failsafe_mode {
        // A leader that cannot reach etcd but reached us keeps running for ttl after its
        // last `POST /failsafe`: racing now could make a second primary.
        if let Some(l) = obs.failsafe_leader.as_ref().filter(|l| *l != &obs.me) {
            return Err(Ineligible::FailsafeLeader(l.clone()));
        }
        if let Some(names) = view.failsafe.as_ref().filter(|n| !n.is_empty())
            && !names.contains(&obs.me)
        {
            return Err(Ineligible::NotInFailsafeTopology);
        }
    }
    // A failover request names who takes over, as long as that member can: after a
    // switchover it must have received the old leader's whole WAL (`status.optime` holds
    // where it ends), or promoting it would lose what the old leader acknowledged. A
    // candidate that cannot (or does not answer) does not hold the others back.
    let request = view.failover.as_ref();
    let switchover = request.is_some_and(|f| f.leader.is_some());
    let forced = match request.and_then(|f| f.candidate.as_ref()) {
        Some(c) if c == &obs.me => {
            if switchover
                && let Some(end) = view.optime
                && me.lsn <= end
            {
                return Err(Ineligible::Lagging {
                    lag: lag(end, me.lsn) + 1,
                });
            }
            true
        }
        Some(c) if candidate_can_take_over(obs, view, cfg, c, switchover) => {
            return Err(Ineligible::OtherCandidate(c.clone()));
        }
        _ => false,
    };
    if let Some(p) = obs
        .peers
        .iter()
        .find(|p| p.name != obs.me && p.running_primary)
    {
        return Err(Ineligible::PeerIsPrimary(p.name.clone()));
    }
    if forced {
        return Ok(());
    }
    if me.role == PgRole::Replica
        && let Some(optime) = view.optime
    {
        let behind = lag(optime, me.lsn);
        if behind > cfg.maximum_lag_on_failover {
            return Err(Ineligible::Lagging { lag: behind });
        }
    }
    for p in obs
        .peers
        .iter()
        .filter(|p| p.name != obs.me && !p.nofailover)
    {
        let Some(lsn) = p.lsn else { continue };
        let better = lsn > me.lsn || (lsn == me.lsn && p.failover_priority > cfg.failover_priority);
        if better {
            return Err(Ineligible::NotHealthiest(p.name.clone()));
        }
    }
    Ok(())
}
