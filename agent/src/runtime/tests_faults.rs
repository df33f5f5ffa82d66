//! The couplings between the core and the shell that the model checker cannot see, driven
//! by the fault injection of the in-memory etcd and the fake PostgreSQL: a lost
//! compare-and-set stops the batch before `Promote`; a failed promotion is retried under the
//! key still held; a hung PostgreSQL under a leader keeps its lease and is never stopped.

use super::*;
use crate::ha::{Lsn, PgState, RunningPg};
use crate::pg::fake::Op;

/// pg1 bootstraps and leads, then dies (its lease expires with the key); pg2 holds a copy of
/// its data as a running replica, its records and the cluster's keys still in etcd.
async fn vacant_with_a_replica() -> (MemoryStore, Node) {
    let store = MemoryStore::new();
    let mut first = node(&store, "pg1");
    cycles(&mut first, 20, is_leader).await;
    first.rt.cycle().await;
    drop(first);
    store.expire_lease_of("pg1");
    assert_eq!(
        store.get("/service/demo/leader"),
        None,
        "the lease took the key"
    );
    let n = node(&store, "pg2");
    n.pg.set_state(PgState::Running(RunningPg {
        role: PgRole::Replica,
        sysid: "7000000000000000001".into(),
        timeline: 1,
        lsn: Lsn(0x0100_0000),
        replay_lsn: Lsn(0x0100_0000),
        streaming: false,
    }));
    (store, n)
}

fn promotes(n: &Node) -> usize {
    n.pg.calls().iter().filter(|c| **c == Call::Promote).count()
}

/// STYLE: "a CAS action that returns Lost aborts the rest of the batch, so
/// `[AcquireLease, Promote]` cannot promote without the lease".
#[tokio::test(start_paused = true)]
async fn a_lost_race_for_the_key_stops_the_batch_before_promote() {
    let (store, mut n) = vacant_with_a_replica().await;
    n.dcs.lose_next_acquire_to("pg3");
    for _ in 0..20 {
        n.rt.cycle().await;
        if !n.dcs.rival_pending() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        !n.dcs.rival_pending(),
        "pg2 raced for the vacant key: {:?}",
        n.pg.calls()
    );
    assert_eq!(store.get("/service/demo/leader").as_deref(), Some("pg3"));
    assert_eq!(promotes(&n), 0, "{:?}", n.pg.calls());
    assert_eq!(n.pg.state_role(), PgRole::Replica);
    // The next cycles see pg3's key: still no promotion.
    n.rt.cycle().await;
    n.rt.cycle().await;
    assert_eq!(promotes(&n), 0, "{:?}", n.pg.calls());
}

/// `ha::leader`: a replica under our own key ("a promotion that failed last cycle") renews
/// and promotes again.
#[tokio::test(start_paused = true)]
async fn a_failed_promotion_is_retried_under_the_key_still_held() {
    let (store, mut n) = vacant_with_a_replica().await;
    n.pg.fail_next(Op::Promote);
    let done = cycles(&mut n, 40, |n| n.pg.state_role() == PgRole::Primary).await;
    assert!(done > 1, "the first promotion failed");
    assert_eq!(promotes(&n), 2, "{:?}", n.pg.calls());
    assert_eq!(store.get("/service/demo/leader").as_deref(), Some("pg2"));
}

/// `ha::leader`: a hung or SIGSTOPped PostgreSQL under the leader keeps the lease (nobody
/// could do better with its data) and is never stopped for it; it leads on once it answers.
#[tokio::test(start_paused = true)]
async fn a_hung_postgres_under_the_leader_keeps_the_lease_and_is_not_stopped() {
    let store = MemoryStore::new();
    let mut n = node(&store, "pg1");
    cycles(&mut n, 20, is_leader).await;
    n.rt.cycle().await;
    let before = n.rt.st.lease_valid_until.expect("leader holds a lease");
    n.pg.hang(true);
    // Three ttls of hung PostgreSQL.
    let end = tokio::time::Instant::now() + Duration::from_secs(3 * TTL);
    let mut rerun = false;
    while tokio::time::Instant::now() < end {
        tokio::time::sleep(n.rt.next_wait(rerun)).await;
        rerun = n.rt.cycle().await.1;
        assert_eq!(store.get("/service/demo/leader").as_deref(), Some("pg1"));
    }
    let after = n.rt.st.lease_valid_until.expect("still holds the lease");
    assert!(after > before, "renewed while PostgreSQL hung");
    assert!(
        !n.pg.calls().iter().any(|c| matches!(c, Call::Stop(_))),
        "{:?}",
        n.pg.calls()
    );
    n.pg.hang(false);
    cycles(&mut n, 5, is_leader).await;
}
