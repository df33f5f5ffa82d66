//! Table tests of `decide`: one named case per situation, grouped by situation (one file
//! each). Cases compare the whole `Decision` (actions and reason enum), never log text.

mod bootstrap;
mod fencing;
mod keys;
mod leader;
mod quorum;
mod quorum_requests;
mod replica;
mod safety;
mod sync;
mod vacant;

pub(super) use super::builders::*;
pub(super) use super::*;

pub(super) fn check(cases: impl IntoIterator<Item = Case>) {
    for c in cases {
        let got = decide(&c.obs, &c.cfg);
        assert_eq!(got, c.want, "case: {}", c.name);
    }
}

pub(super) fn three_nodes(v: &mut ClusterView, leader: Option<&str>) {
    v.add(member("pg1", PgRole::Replica, 100));
    v.add(member("pg2", PgRole::Replica, 100));
    v.add(member("pg3", PgRole::Replica, 100));
    if let Some(l) = leader {
        v.leader(l);
        v.add(member(l, PgRole::Primary, 100));
    }
}

pub(super) fn slots(names: &[&str]) -> Action {
    Action::SyncSlots {
        members: names.iter().map(|n| name(n)).collect(),
    }
}

pub(super) fn start_replica_of(n: &str) -> Action {
    Action::Start {
        role: StartAs::Replica {
            upstream: Some(upstream(n)),
        },
    }
}

pub(super) const IMMEDIATE: Action = Action::Demote {
    mode: StopMode::Immediate,
};
