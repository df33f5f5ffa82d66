//! How far the cluster's keys in etcd can be trusted. etcd holds coordination state; the data
//! lives in PostgreSQL. A missing, stale, garbage or foreign value is something to survive and
//! repair, never a reason to stop a healthy primary or to hand the leadership to a member that
//! may be behind it.
//!
//! - `initialize` is *valid* when it is a system identifier (decimal digits), *claimed* while
//!   empty (a bootstrap runs), *corrupt* otherwise. A leader rewrites a corrupt one with its own
//!   identifier. A valid identifier that differs from the members' data directories is a
//!   *conflict*: nothing is stopped or re-initialised because of it, the running primary keeps
//!   serving, no member is promoted and no member without data clones until an operator
//!   resolves it (it is reported everywhere).
//! - The `leader` key is *ours* when it names us under our current lease, held by *another*
//!   member when it names someone else under a lease (some agent keeps that lease alive; if
//!   its member record is missing or garbled, it will be published again, or the key expires
//!   with the lease), and *untrusted* otherwise: it is attached to no lease (written by hand,
//!   so it names whatever the operator typed and would never expire), or names us under a
//!   lease that is not ours (written by an earlier process of this agent, or by hand). An
//!   untrusted key is taken over with a compare-and-set on its revision by the member that
//!   leads in fact (a running primary with authority), or by the winner of a normal leader
//!   race; it never makes a primary demote.

use super::{ClusterView, KeyLease, LeaderKey, Observation, PgState};

/// What `initialize` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initialize<'a> {
    /// No key: the cluster was never initialized, or its keys were wiped.
    Absent,
    /// Empty: a member won the bootstrap race and is running initdb.
    Claimed,
    /// A system identifier.
    Valid(&'a str),
    /// Anything else.
    Corrupt(&'a str),
}

/// Classifies `initialize`.
pub fn initialize(view: &ClusterView) -> Initialize<'_> {
    match view.initialize.as_deref() {
        None => Initialize::Absent,
        Some("") => Initialize::Claimed,
        Some(s) if is_system_id(s) => Initialize::Valid(s),
        Some(s) => Initialize::Corrupt(s),
    }
}

/// PostgreSQL's database system identifier: an unsigned 64-bit number in decimal.
pub fn is_system_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u64>().is_ok()
}

/// The system identifier of the local data directory, if PostgreSQL told us.
pub fn local_sysid(pg: &PgState) -> Option<&str> {
    let sysid = match pg {
        PgState::Stopped(s) => s.sysid.as_str(),
        PgState::Running(r) => r.sysid.as_str(),
        _ => return None,
    };
    (!sysid.is_empty()).then_some(sysid)
}

/// A valid `initialize` that is not our data directory's identifier: `(cluster, local)`.
pub fn system_id_conflict<'a>(
    obs: &'a Observation,
    view: &'a ClusterView,
) -> Option<(&'a str, &'a str)> {
    let Initialize::Valid(cluster) = initialize(view) else {
        return None;
    };
    let local = local_sysid(&obs.pg)?;
    (cluster != local).then_some((cluster, local))
}

/// The `leader` key, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderState<'a> {
    /// No key.
    Vacant,
    /// Ours, under our current lease.
    Ours(&'a LeaderKey),
    /// Held by another member (under a lease).
    Other(&'a LeaderKey),
    /// Not to be trusted: under no lease, or naming us under a lease that is not ours.
    Untrusted(&'a LeaderKey),
}

/// Classifies the `leader` key as `me` sees it.
pub fn leader_state<'a>(view: &'a ClusterView, me: &super::MemberName) -> LeaderState<'a> {
    let Some(key) = view.leader.as_ref() else {
        return LeaderState::Vacant;
    };
    if &key.holder == me {
        return match key.lease {
            KeyLease::Ours => LeaderState::Ours(key),
            KeyLease::Other | KeyLease::None => LeaderState::Untrusted(key),
        };
    }
    match key.lease {
        KeyLease::None => LeaderState::Untrusted(key),
        KeyLease::Ours | KeyLease::Other => LeaderState::Other(key),
    }
}
