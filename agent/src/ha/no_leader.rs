//! Decisions while the `leader` key is vacant.
//!
//! Three situations: the cluster was never initialized (race on `initialize`, the winner runs
//! initdb), we are bootstrapping it (take the lease, publish the system id), or a leader went
//! away (the leader race). In the race, a member takes the lease only if it is eligible:
//! not `nofailover`, within `maximum_lag_on_failover` of the last leader position, not behind
//! any other eligible member that answered (WAL position, then `failover_priority`), and no
//! member reports itself a running primary. Equally good members all try; etcd's
//! compare-and-create lets exactly one win, and `Promote` follows only a won `AcquireLease`.

use super::action::lag;
use super::fencing::{guards_missing, proven};
use super::{
    Action, ClusterView, Decision, HaConfig, Ineligible, JobKind, Observation, PgRole, PgState,
    Reason, RunningPg, StartAs, StopMode, slot_members, sysid_mismatch,
};

pub(super) fn decide(obs: &Observation, view: &ClusterView, cfg: &HaConfig) -> Decision {
    if let Some(d) = sysid_mismatch(obs, view) {
        return d;
    }
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
                Action::SeedConfig,
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
fn vacant(obs: &Observation, view: &ClusterView, cfg: &HaConfig) -> Decision {
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
                actions.push(Action::Promote);
            }
            if view.initialize.is_none() {
                actions.push(Action::WriteInitialize {
                    sysid: r.sysid.clone(),
                });
            }
            if !view.has_config {
                actions.push(Action::SeedConfig);
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
    // A failover request names who takes over, as long as that member is around.
    let forced = match view.failover.as_ref().and_then(|f| f.candidate.as_ref()) {
        Some(c) if c == &obs.me => true,
        Some(c) if view.member(c).is_some() => return Err(Ineligible::OtherCandidate(c.clone())),
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
