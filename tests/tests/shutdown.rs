//! SIGTERM to the leader's agent: it stops PostgreSQL, releases the key, and a replica is
//! primary well before the lease could have expired.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::procs::init_tracing;
use tracing::info;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_leader_hands_over_before_ttl() {
    init_tracing();
    let mut c = TestCluster::start("shutdown_sigterm", Opts::default()).await;
    let old = c.wait_healthy(Duration::from_secs(90)).await;

    info!("--- SIGTERM to the leader's agent");
    let t0 = Instant::now();
    let code = c.node_mut(&old).stop(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "the agent exits cleanly");
    assert!(
        c.node(&old).postmaster_pid().is_none(),
        "the agent stopped its PostgreSQL"
    );
    let new = c
        .wait_for_leader_other_than(&old, Duration::from_secs(30))
        .await;
    let took = t0.elapsed();
    info!(new = %new, took_ms = took.as_millis() as u64, "new primary after SIGTERM");
    // Without the release the replicas would wait for the lease to expire (ttl).
    assert!(
        took < Duration::from_secs(c.settings.ttl),
        "handover took {took:?}, not before ttl"
    );
    assert!(
        c.etcd_get(&format!("members/{old}")).await.is_none(),
        "the stopped member's key is gone"
    );
    let other = c.others(&[&old, &new]).pop().unwrap();
    c.wait_streaming(&new, &[&other], Duration::from_secs(30))
        .await;
}
