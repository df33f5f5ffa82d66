//! The fence: a stalled or killed leader agent leaves no second writable primary, because a
//! process outside the agent stops its PostgreSQL before the lease can expire. At the fastest
//! timing the agent accepts (ttl 10, loop_wait 2, retry_timeout 3), with HAProxy checking as
//! in Patroni's sample configuration (`inter 1s`, `timeout check 5s`), a writer through
//! HAProxy and direct writers on every member (new connection every 100 ms).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::direct::{DirectWriters, overlaps};
use ha_tests::procs::{init_tracing, signal, wait_for};
use ha_tests::writer::{Writer, longest_gap};
use nix::sys::signal::Signal;
use tracing::info;

fn opts() -> Opts {
    Opts {
        haproxy: true,
        haproxy_patroni_checks: true,
        ..Opts::default()
    }
}

/// What every fault here must end with: no overlap of writable members, every acknowledged
/// write (direct or through HAProxy) on the final leader, the cluster healthy again.
async fn check_outcome(
    c: &TestCluster,
    direct: &DirectWriters,
    through_haproxy: Writer,
    fault_at: Instant,
) {
    let leader = c.wait_for_leader(Duration::from_secs(60)).await;
    let others = c.others(&[&leader]);
    let os: Vec<&str> = others.iter().map(String::as_str).collect();
    c.wait_streaming(&leader, &os, Duration::from_secs(120))
        .await;
    direct.stop();
    let (acks, failures) = through_haproxy.stop().await;
    let gap = longest_gap(&acks, fault_at);
    let overlap = overlaps(&direct.acks());
    info!(
        longest_gap_ms = gap.as_millis() as u64,
        haproxy_acks = acks.len(),
        failures,
        direct_acks = direct.acks().len(),
        "outcome"
    );
    assert!(overlap.is_empty(), "two writable primaries: {overlap:?}");
    let missing = direct.missing_on(c, &leader).await;
    assert!(
        missing.is_empty(),
        "acknowledged direct writes lost: {missing:?}"
    );
    let ids: std::collections::BTreeSet<i64> = c
        .node(&leader)
        .client()
        .await
        .unwrap()
        .query("select id from w", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let lost: Vec<i64> = acks
        .iter()
        .map(|a| a.id)
        .filter(|id| !ids.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "writes acknowledged through HAProxy lost: {lost:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_leader_agent_is_fenced_before_its_lease_can_expire() {
    init_tracing();
    let mut c = TestCluster::start("fence_sigstop", opts()).await;
    let old = c.wait_healthy(Duration::from_secs(90)).await;
    let direct = DirectWriters::start(&c, &old).await;
    let w = Writer::start(
        c.haproxy.as_ref().unwrap().primary_port,
        Duration::from_millis(20),
    )
    .await;
    wait_for(
        "direct writes on the leader",
        Duration::from_secs(10),
        || async { direct.last_ack(&old).map(|_| ()) },
    )
    .await;

    info!(%old, "--- SIGSTOP of the leader's agent for 1.5 x ttl");
    let ttl = Duration::from_secs(c.settings.ttl);
    let agent = c.node(&old).pid().unwrap();
    let frozen_at = Instant::now();
    signal(agent, Signal::SIGSTOP);
    let new = c
        .wait_for_leader_other_than(&old, ttl + Duration::from_secs(30))
        .await;
    wait_for(
        "direct writes on the new leader",
        Duration::from_secs(10),
        || async { direct.last_ack(&new).map(|_| ()) },
    )
    .await;
    let last_old = direct.last_ack(&old).unwrap();
    info!(
        %new,
        old_last_write_after_ms = last_old.duration_since(frozen_at).as_millis() as u64,
        "fenced"
    );
    assert!(
        last_old < frozen_at + ttl,
        "the frozen leader's PostgreSQL accepted writes until its lease could have expired"
    );
    let until = frozen_at + ttl * 3 / 2;
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;

    info!("--- SIGCONT: the old leader rejoins as a replica");
    signal(agent, Signal::SIGCONT);
    check_outcome(&c, &direct, w, frozen_at).await;
    assert!(c.node_mut(&old).is_started());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_agent_leaves_no_writable_postgres_behind() {
    init_tracing();
    let mut c = TestCluster::start("fence_agent_killed", opts()).await;
    let old = c.wait_healthy(Duration::from_secs(90)).await;
    let direct = DirectWriters::start(&c, &old).await;
    let w = Writer::start(
        c.haproxy.as_ref().unwrap().primary_port,
        Duration::from_millis(20),
    )
    .await;
    wait_for(
        "direct writes on the leader",
        Duration::from_secs(10),
        || async { direct.last_ack(&old).map(|_| ()) },
    )
    .await;
    let fence = c.node(&old).fence_pid().expect("the leader's fence runs");

    info!(%old, "--- kill -9 of the leader's agent alone (PostgreSQL and fence keep running)");
    let ttl = Duration::from_secs(c.settings.ttl);
    let killed_at = Instant::now();
    c.node_mut(&old).kill_agent_only().await;
    assert!(
        c.node(&old).postmaster_pid().is_some(),
        "PostgreSQL still runs"
    );
    let new = c
        .wait_for_leader_other_than(&old, ttl + Duration::from_secs(30))
        .await;
    wait_for(
        "direct writes on the new leader",
        Duration::from_secs(10),
        || async { direct.last_ack(&new).map(|_| ()) },
    )
    .await;
    let last_old = direct.last_ack(&old).unwrap();
    info!(
        %new,
        old_last_write_after_ms = last_old.duration_since(killed_at).as_millis() as u64,
        "fenced"
    );
    assert!(last_old < killed_at + ttl);
    assert_eq!(
        c.node(&old).postmaster_pid(),
        None,
        "the fence stopped PostgreSQL"
    );
    assert_eq!(
        c.node(&old).fence_pid(),
        Some(fence),
        "the fence outlived its agent"
    );

    info!("--- after 1.5 x ttl the agent is started again: it adopts the fence and rejoins");
    let until = killed_at + ttl * 3 / 2;
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
    let settings = c.settings.clone();
    c.node_mut(&old).start(&settings);
    check_outcome(&c, &direct, w, killed_at).await;
    assert_eq!(
        c.node(&old).fence_pid(),
        Some(fence),
        "the restarted agent adopted the running fence rather than starting another"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_fence_is_replaced_within_one_loop() {
    init_tracing();
    let c = TestCluster::start("fence_killed", Opts::default()).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    wait_for(
        "the leader's fence is armed",
        Duration::from_secs(10),
        || async {
            let (_, v) = c.node(&leader).api_get("/patroni").await?;
            (v["fence"] == "armed").then_some(())
        },
    )
    .await;
    let old = c.node(&leader).kill_fence().expect("a fence runs");

    info!(%leader, old_fence = old, "--- kill -9 of the leader's fence");
    let killed_at = Instant::now();
    let loop_wait = Duration::from_secs(c.settings.loop_wait);
    let new = wait_for("a new fence", loop_wait * 3, || async {
        c.node(&leader).fence_pid().filter(|p| *p != old)
    })
    .await;
    info!(
        new_fence = new,
        after_ms = killed_at.elapsed().as_millis() as u64,
        "replaced"
    );
    wait_for("the new fence is armed", loop_wait * 3, || async {
        let (_, v) = c.node(&leader).api_get("/patroni").await?;
        (v["fence"] == "armed").then_some(())
    })
    .await;
    // The new fence's pid shows before the agent's cycle ends, and /patroni may still show
    // the old fence's state: wait for the agent's own word.
    wait_for("the agent says so", loop_wait * 3, || async {
        std::fs::read_to_string(c.node(&leader).log_path())
            .ok()?
            .contains("the fence process was gone; started a new one")
            .then_some(())
    })
    .await;
    assert_eq!(
        c.wait_for_leader(Duration::from_secs(5)).await,
        leader,
        "no failover"
    );
    assert!(c.is_writable(&leader).await);
}
