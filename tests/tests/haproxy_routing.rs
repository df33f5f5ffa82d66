//! Applications connect through HAProxy and keep writing across a leader kill and a
//! switchover; after a switchover every acknowledged write is on the new leader; sessions on a
//! demoted primary are cut off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ha_tests::agent::{connect, http};
use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::procs::init_tracing;
use ha_tests::writer::{Writer, longest_gap};
use tracing::info;

async fn cluster_with_haproxy(test: &str) -> (TestCluster, String) {
    let opts = Opts {
        haproxy: true,
        ..Opts::default()
    };
    let c = TestCluster::start(test, opts).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    c.haproxy
        .as_ref()
        .unwrap()
        .wait_routes_to(&leader, Duration::from_secs(20))
        .await;
    (c, leader)
}

async fn rows_on(c: &TestCluster, node: &str) -> Vec<i64> {
    let cl = c.node(node).client().await.unwrap();
    cl.query("select id from w order by id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_haproxy_survive_a_switchover() {
    init_tracing();
    let (c, old) = cluster_with_haproxy("haproxy_switchover").await;
    let hp = c.haproxy.as_ref().unwrap();
    let w = Writer::start(hp.primary_port, Duration::from_millis(10)).await;
    w.wait_for_ack_from(c.node(&old).pg_port, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    info!("--- switchover through the leader's REST API while the client writes");
    let candidate = c.others(&[&old]).remove(0);
    let t0 = Instant::now();
    let resp = http()
        .post(format!("{}/switchover", c.node(&old).api_base()))
        .json(&serde_json::json!({"leader": old, "candidate": candidate}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    w.wait_for_ack_from(c.node(&candidate).pg_port, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (acks, failures) = w.stop().await;
    let gap = longest_gap(&acks, t0 - Duration::from_millis(200));
    info!(
        gap_ms = gap.as_millis() as u64,
        acked = acks.len(),
        failed_attempts = failures,
        "write gap across the switchover"
    );

    info!("--- the client ends on the new leader and every acknowledged write is there");
    let last = acks.last().unwrap();
    assert_eq!(
        last.port,
        c.node(&candidate).pg_port,
        "the client writes to the new leader"
    );
    let present = rows_on(&c, &candidate).await;
    let missing: Vec<i64> = acks
        .iter()
        .map(|a| a.id)
        .filter(|id| present.binary_search(id).is_err())
        .collect();
    info!(
        acknowledged = acks.len(),
        present = present.len(),
        "acknowledged writes after the switchover"
    );
    assert!(
        missing.is_empty(),
        "{} acknowledged writes missing on the new leader: {missing:?}",
        missing.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_haproxy_resume_after_the_leader_is_killed() {
    init_tracing();
    let (mut c, old) = cluster_with_haproxy("haproxy_kill").await;
    let hp_port = c.haproxy.as_ref().unwrap().primary_port;
    let w = Writer::start(hp_port, Duration::from_millis(10)).await;
    w.wait_for_ack_from(c.node(&old).pg_port, Duration::from_secs(20))
        .await;

    info!("--- kill -9 of the leader node while the client writes");
    let t0 = Instant::now();
    c.node_mut(&old).kill_node().await;
    let new = c
        .wait_for_leader_other_than(&old, Duration::from_secs(c.settings.ttl + 30))
        .await;
    let first = w
        .wait_for_ack_from(c.node(&new).pg_port, Duration::from_secs(20))
        .await;
    info!(
        new = %new,
        writes_resumed_after_ms = (first.acked - t0).as_millis() as u64,
        "writes resumed through HAProxy"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (acks, _) = w.stop().await;
    let after: Vec<_> = acks.iter().filter(|a| a.sent > t0).collect();
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|a| a.port == c.node(&new).pg_port),
        "after the kill only the new leader took writes"
    );
    let present = rows_on(&c, &new).await;
    let lost = acks
        .iter()
        .filter(|a| present.binary_search(&a.id).is_err())
        .count();
    info!(
        acknowledged = acks.len(),
        lost_in_async_replication = lost,
        "acknowledged writes after the kill"
    );
    assert!(
        acks.iter()
            .filter(|a| a.port == c.node(&new).pg_port)
            .all(|a| present.binary_search(&a.id).is_ok())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_a_demoted_primary_are_cut_off() {
    init_tracing();
    let (c, old) = cluster_with_haproxy("haproxy_sessions").await;
    let hp_port = c.haproxy.as_ref().unwrap().primary_port;
    let session = connect(hp_port).await.unwrap();
    let port: i32 = session
        .query_one("select inet_server_port()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        port as u16,
        c.node(&old).pg_port,
        "HAProxy routes writes to the leader"
    );

    info!("--- switchover: the old primary is demoted");
    let candidate = c.others(&[&old]).remove(0);
    let resp = http()
        .post(format!("{}/switchover", c.node(&old).api_base()))
        .json(&serde_json::json!({"leader": old, "candidate": candidate}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    info!("--- the open session is gone; a new one lands on the new leader");
    let r = tokio::time::timeout(Duration::from_secs(5), session.query_one("select 1", &[])).await;
    assert!(
        matches!(r, Ok(Err(_))),
        "the session to the demoted primary must be closed: {r:?}"
    );
    assert!(session.is_closed());
    let fresh = ha_tests::procs::wait_for(
        "a new session through HAProxy",
        Duration::from_secs(10),
        || async {
            let s = connect(hp_port).await.ok()?;
            let p: i32 = s
                .query_one("select inet_server_port()", &[])
                .await
                .ok()?
                .get(0);
            (p as u16 == c.node(&candidate).pg_port).then_some(s)
        },
    )
    .await;
    let ro: bool = fresh
        .query_one("select pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!ro);
}
