//! Who may take over from the leader: one check, used by the leader when it acts on a
//! switchover (`leader.rs`), by the REST API before it writes the request, and by `hactl`
//! (through the API), with one time limit for the whole handover.
//!
//! A candidate must be a member, not tagged `nofailover`, running, and (while a leader exists)
//! a replica that *streams* on the leader's timeline (no lag limit: see [`member_problem`]).
//! The leader also requires the candidate among its own WAL senders: a
//! graceful shutdown sends the whole WAL, timeline switch included, only to the replicas
//! connected at that moment. A candidate that has not yet followed the leader's last timeline
//! switch could otherwise promote from the old timeline and pick the *same* new timeline id as
//! the leader did, so two different histories would share one timeline id (found by the fault
//! campaign's switchover storm: PostgreSQL then PANICs on the mixed WAL).
//!
//! With `synchronous_mode` on, a candidate must also be named in the `sync` key
//! (`sync::may_take_over`), or it may miss commits the leader acknowledged. In quorum mode it
//! must be one of the key's voters, and a request without a candidate needs `quorum + 1`
//! healthy voters besides the leader (Patroni's `is_failover_possible`); the one that takes
//! over still needs its votes (`quorum_vote`).

use super::{ClusterView, HaConfig, MemberName, MemberView, Millis, PgRole, SyncMode};

/// Why `m` cannot take over from the leader now, if it cannot. `leader` is the leader's
/// member record when one leads; `streaming` the leader's WAL senders when it is asked itself.
pub fn member_problem(
    m: &MemberView,
    leader: Option<&MemberView>,
    streaming: Option<&[MemberName]>,
) -> Option<String> {
    if m.nofailover {
        return Some("is tagged nofailover".into());
    }
    if !m.running {
        return Some("is not running".into());
    }
    // Without a leader (a failover) only the member itself counts.
    let leader = leader?;
    if m.role != PgRole::Replica {
        return Some("is not a replica".into());
    }
    // The leader's own WAL senders are live; the member record is as old as the candidate's
    // last loop. A candidate the leader streams to now is not refused on its record.
    let live = match streaming {
        Some(s) if s.contains(&m.name) => true,
        Some(_) => return Some("is not streaming from the leader".into()),
        None => false,
    };
    if !live && !m.streaming {
        return Some("is not streaming".into());
    }
    if let (Some(tl), Some(ltl)) = (m.timeline, leader.timeline)
        && tl != ltl
    {
        return Some(format!(
            "is on timeline {tl}, the leader on {ltl} (it has not followed the last timeline switch yet)"
        ));
    }
    // No lag limit here: a candidate's position is only known from its member record, as
    // old as its last loop, and at a steady write rate that alone exceeds any
    // `maximum_lag_on_failover` (the leader and the REST API refused caught-up candidates as
    // 16 MB behind). A WAL sender in state `streaming` (not `catchup`) has caught up with the
    // leader, and the handover loses nothing whatever the lag: the candidate promotes only
    // past the old leader's WAL end. `maximum_lag_on_failover` still bounds the failover race,
    // on the live positions the members answer.
    None
}

/// Why a switchover (`leader` given) or failover to `candidate` (or, without one, to any
/// member) cannot happen now, in the words the REST API answers 412 with.
pub fn request_problem(
    view: &ClusterView,
    leader: Option<&MemberName>,
    candidate: Option<&MemberName>,
    cfg: &HaConfig,
    action: &str,
) -> Option<String> {
    let current = view.leader.as_ref().map(|l| &l.holder);
    if let Some(l) = leader
        && current != Some(l)
    {
        return Some(match current {
            Some(cur) => format!("leader name does not match: {l} is not the leader, {cur} is"),
            None => "leader name does not match: the cluster has no leader (use failover)".into(),
        });
    }
    let leader_rec = current.and_then(|c| view.member(c));
    let problem = |name: &MemberName| -> Option<String> {
        let Some(m) = view.member(name) else {
            return Some(format!("candidate {name} does not exist"));
        };
        member_problem(m, leader_rec, None)
            .or_else(|| sync_problem(view, cfg, name))
            .map(|why| format!("candidate {name} {why}"))
    };
    match candidate {
        Some(name) => problem(name),
        None => {
            let others: Vec<&MemberName> = view
                .members
                .iter()
                .map(|m| &m.name)
                .filter(|n| Some(*n) != current)
                .collect();
            if others.is_empty() {
                return Some(format!(
                    "{action} is not possible: cluster does not have members except leader"
                ));
            }
            let why: Vec<String> = others.iter().filter_map(|n| problem(n)).collect();
            if why.len() == others.len() {
                return Some(format!(
                    "{action} is not possible: no good candidates have been found ({})",
                    why.join("; ")
                ));
            }
            quorum_problem(view, cfg, others.len() - why.len())
                .map(|why| format!("{action} is not possible: {why}"))
        }
    }
}

/// Why `name` may not take over under the synchronous-mode rule (`sync::may_take_over`).
pub fn sync_problem(view: &ClusterView, cfg: &HaConfig, name: &MemberName) -> Option<String> {
    if super::sync::may_take_over(view, cfg, name) {
        return None;
    }
    Some(match cfg.synchronous_mode {
        SyncMode::Quorum => "is not a quorum standby (synchronous_mode is quorum)".to_string(),
        _ => "is not a synchronous standby (synchronous_mode is on)".to_string(),
    })
}

/// Quorum mode, a request without a candidate: why `healthy` good candidates (voters, as
/// `sync_problem` lets only voters through) cannot reach the key's quorum.
pub fn quorum_problem(view: &ClusterView, cfg: &HaConfig, healthy: usize) -> Option<String> {
    let key = view.sync.as_ref().filter(|k| k.leader.is_some())?;
    let quorum_mode = cfg.synchronous_mode == SyncMode::Quorum
        || (cfg.synchronous_mode == SyncMode::On && key.quorum > 0);
    (quorum_mode && healthy < key.quorum.saturating_add(1)).then(|| {
        format!(
            "quorum requirement {} can not be reached ({healthy} healthy quorum standby(s))",
            key.quorum
        )
    })
}

/// How long a switchover or failover may take before whoever waits for it (the REST API,
/// `hactl`) reports it as not confirmed: long enough for a lease to expire and two loops
/// (a candidate that cannot take over lets the others race), and at least 30 s.
pub fn handover_timeout(cfg: &HaConfig) -> Millis {
    Millis(
        cfg.ttl
            .0
            .saturating_add(cfg.loop_wait.0.saturating_mul(2))
            .max(30_000),
    )
}
