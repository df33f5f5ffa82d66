//! Quorum mode requests (`ha::candidate`, `ha::leader`): what switchovers the leader clears and
//! the REST API refuses, and `synchronous_standby_names` as the core writes and reads it.

use super::quorum::{any, key, leading, streaming};
use super::*;

#[test]
fn switchovers_go_only_to_voters_with_a_reachable_quorum() {
    let clear = |why: &str| {
        (
            vec![
                Action::RenewLease,
                Action::ClearFailover {
                    revision: Revision(42),
                },
            ],
            Reason::FailoverRequestInvalid(why.into()),
        )
    };
    let to = |k: SyncKey, c: Option<&str>| {
        leading(Some(k), any(1, &["pg2", "pg3"]), &["pg2", "pg3"]).cluster(|v| {
            v.failover(Some("pg1"), c);
        })
    };
    let (a, r) = clear("candidate pg3 is not a quorum standby (synchronous_mode is quorum)");
    let (a2, r2) = clear("quorum requirement 1 can not be reached (1 healthy quorum standby(s))");
    check([
        case("switchover to a member that is not a voter is cleared")
            .given(to(key("pg1", &["pg2"], 0), Some("pg3")))
            .want(a, r),
        case("switchover without a candidate needs quorum + 1 healthy voters")
            .given(streaming(
                to(key("pg1", &["pg2", "pg3"], 1), None),
                &["pg2"],
            ))
            .want(a2, r2),
    ]);
}

#[test]
fn the_rest_api_refuses_what_the_leader_would_clear() {
    let n = leading(
        Some(key("pg1", &["pg2", "pg3"], 1)),
        any(1, &["pg2", "pg3"]),
        &["pg2", "pg3"],
    );
    let DcsView::Reachable(view) = &n.obs.dcs else {
        panic!("reachable")
    };
    let ask = |view: &ClusterView, candidate: Option<&str>| {
        candidate::request_problem(
            view,
            Some(&name("pg1")),
            candidate.map(name).as_ref(),
            &n.cfg,
            "switchover",
        )
    };
    assert_eq!(ask(view, Some("pg2")), None);
    assert_eq!(ask(view, None), None);
    let mut one_voter = view.clone();
    one_voter.sync = Some(key("pg1", &["pg2"], 0));
    assert_eq!(
        ask(&one_voter, Some("pg3")),
        Some("candidate pg3 is not a quorum standby (synchronous_mode is quorum)".into())
    );
    let mut pg3_down = view.clone();
    if let Some(m) = pg3_down.members.iter_mut().find(|m| m.name == name("pg3")) {
        m.running = false;
    }
    assert_eq!(
        ask(&pg3_down, None),
        Some(
            "switchover is not possible: quorum requirement 1 can not be reached (1 healthy quorum standby(s))"
                .into()
        )
    );
}

#[test]
fn standby_names_round_trip() {
    let n = any(1, &["pg2", "a\"b, c"]);
    assert_eq!(n.to_string(), "ANY 1 (\"pg2\",\"a\"\"b, c\")");
    for v in [
        n,
        SyncStandbyNames::First {
            count: 2,
            names: vec![name("pg2"), name("pg3")],
        },
        SyncStandbyNames::Any,
        SyncStandbyNames::Off,
    ] {
        assert_eq!(
            SyncStandbyNames::parse(&v.to_string()),
            Some(v.clone()),
            "{v}"
        );
    }
    assert_eq!(
        SyncStandbyNames::parse("pg2, pg3"),
        Some(SyncStandbyNames::First {
            count: 1,
            names: vec![name("pg2"), name("pg3")],
        }),
        "a bare list is FIRST 1"
    );
    assert_eq!(
        SyncStandbyNames::parse("any 2 (a, b)"),
        Some(any(2, &["a", "b"]))
    );
    assert_eq!(SyncStandbyNames::parse("ANY 1 (\"a\""), None);
}
