//! PostgreSQL killed under a live leader agent: restarted in place, no failover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::procs::{init_tracing, wait_for};
use tracing::info;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_under_the_leader_is_restarted_in_place() {
    init_tracing();
    let c = TestCluster::start("pg_crash", Opts::default()).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    let replicas = c.others(&[&leader]);

    info!("--- kill -9 of the leader's postmaster");
    let old_pm = c.node(&leader).kill_postmaster().expect("postmaster runs");
    let loops = Duration::from_secs(c.settings.loop_wait * 4 + 15);
    wait_for("the leader's PostgreSQL back in place", loops, || async {
        assert_eq!(
            c.etcd_get("leader").await.as_deref(),
            Some(leader.as_str()),
            "no failover while the agent restarts PostgreSQL"
        );
        let pm = c.node(&leader).postmaster_pid()?;
        (pm != old_pm && c.is_writable(&leader).await).then_some(())
    })
    .await;
    for r in &replicas {
        assert!(!c.is_writable(r).await, "{r} stays a replica");
    }
    let rs: Vec<&str> = replicas.iter().map(String::as_str).collect();
    c.wait_streaming(&leader, &rs, Duration::from_secs(60))
        .await;
}
