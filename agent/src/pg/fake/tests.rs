use super::*;
use crate::ha::{ConnTarget, ControlState, StartAs, StopMode, StoppedPg};
use crate::pg::Postgres;
use std::time::Duration;

fn leader() -> Upstream {
    Upstream {
        name: MemberName::new("pg1"),
        conn: ConnTarget {
            host: "10.0.0.1".into(),
            port: 5432,
        },
    }
}

#[tokio::test]
async fn bootstrap_stop_start_and_promote_move_the_state_plausibly() {
    let pg = FakePostgres::new();
    assert_eq!(pg.status().await.state, PgState::NoData);
    pg.bootstrap().await.unwrap();
    let r = pg.status().await.state.running().cloned().unwrap();
    assert_eq!((r.role, r.timeline), (PgRole::Primary, 1));
    assert!(pg.bootstrap().await.is_err());

    pg.stop(StopMode::Immediate).await.unwrap();
    assert!(matches!(
        pg.status().await.state,
        PgState::Stopped(StoppedPg {
            control_state: ControlState::InProduction,
            ..
        })
    ));
    pg.rewind_from(&leader()).await.unwrap();
    pg.start(&StartAs::Replica {
        upstream: Some(leader()),
    })
    .await
    .unwrap();
    let r = pg.status().await.state.running().cloned().unwrap();
    assert!(r.role == PgRole::Replica && r.streaming);
    pg.follow(None).await.unwrap();
    assert!(!pg.status().await.state.running().unwrap().streaming);

    let p = pg.promote().await.unwrap();
    assert_eq!(p.timeline, 2);
    assert_eq!(p.history[0].0, 1);
    assert_eq!(pg.status().await.state.role(), PgRole::Primary);
    assert!(pg.promote().await.is_err(), "a primary cannot be promoted");
    pg.stop(StopMode::Fast).await.unwrap();
    pg.restart(&StartAs::Primary).await.unwrap();
    assert_eq!(pg.status().await.state.role(), PgRole::Primary);
    assert_eq!(pg.calls().len(), 10);
    assert_eq!(pg.take_calls()[0], Call::Bootstrap);
    assert!(pg.calls().is_empty());
}

#[tokio::test]
async fn clone_leaves_a_stopped_cluster_to_start_as_replica() {
    let pg = FakePostgres::new();
    pg.set_sysid("42");
    pg.create_replica(&leader(), "42").await.unwrap();
    match pg.status().await.state {
        PgState::Stopped(s) => assert_eq!(s.sysid, "42"),
        other => panic!("{other:?}"),
    }
    pg.restart(&StartAs::Replica {
        upstream: Some(leader()),
    })
    .await
    .unwrap();
    assert_eq!(pg.status().await.state.role(), PgRole::Replica);
}

#[tokio::test]
async fn injected_failures_hit_once_and_change_nothing() {
    let pg = FakePostgres::new();
    pg.fail_next(Op::Bootstrap);
    assert!(pg.bootstrap().await.is_err());
    assert_eq!(pg.status().await.state, PgState::NoData);
    pg.bootstrap().await.unwrap();
    assert_eq!(pg.calls(), vec![Call::Bootstrap, Call::Bootstrap]);
    pg.set_state(PgState::Starting);
    assert_eq!(pg.status().await.state, PgState::Starting);
}

#[tokio::test]
async fn a_hung_fake_blocks_operations_but_not_status() {
    let pg = std::sync::Arc::new(FakePostgres::new());
    pg.bootstrap().await.unwrap();
    pg.hang(true);
    assert_eq!(pg.status().await.state, PgState::Unknown);
    let blocked = tokio::time::timeout(Duration::from_millis(50), pg.stop(StopMode::Fast)).await;
    assert!(blocked.is_err(), "stop finished while hung");
    let pg2 = pg.clone();
    let stop = tokio::spawn(async move { pg2.stop(StopMode::Fast).await });
    tokio::task::yield_now().await;
    pg.hang(false);
    stop.await.unwrap().unwrap();
    assert!(matches!(pg.status().await.state, PgState::Stopped(_)));
}
