//! Failsafe mode and the watchdog, against real processes.
//!
//! - `failsafe_mode: true`, etcd frozen for 1.5 x ttl: the leader keeps running as primary
//!   because every member accepts it through `POST /failsafe`; writes through HAProxy go on.
//! - The same with one replica's agent frozen too: the leader cannot reach every member, so it
//!   demotes before its lease could expire.
//! - `watchdog.mode: required`: a member whose device cannot be opened never leads and says
//!   why; the leader's (test-driver) device is armed while it leads and closed cleanly when
//!   it stops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ha_tests::agent::ClusterSettings;
use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::direct::{DirectWriters, overlaps};
use ha_tests::procs::{init_tracing, signal, wait_for};
use ha_tests::writer::{Writer, longest_gap};
use nix::sys::signal::Signal;
use tracing::info;

fn failsafe_opts() -> Opts {
    Opts {
        haproxy: true,
        settings: ClusterSettings {
            extra_dcs: "    failsafe_mode: true\n".into(),
            ..ClusterSettings::default()
        },
        ..Opts::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_failsafe_mode_the_leader_keeps_writing_while_etcd_is_down() {
    init_tracing();
    let c = TestCluster::start("failsafe_etcd_down", failsafe_opts()).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    wait_for(
        "the failsafe key lists every member",
        Duration::from_secs(20),
        || async {
            let v = c.etcd_get("failsafe").await?;
            let m: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&v).ok()?;
            (m.len() == 3).then_some(())
        },
    )
    .await;
    let w = Writer::start(
        c.haproxy.as_ref().unwrap().primary_port,
        Duration::from_millis(20),
    )
    .await;
    w.wait_for_ack_from(c.node(&leader).pg_port, Duration::from_secs(10))
        .await;

    info!(%leader, "--- etcd frozen for 1.5 x ttl");
    let ttl = Duration::from_secs(c.settings.ttl);
    let frozen_at = Instant::now();
    c.etcd.pause();
    wait_for("failsafe mode reported active", ttl, || async {
        let (_, v) = c.node(&leader).api_get("/patroni").await?;
        (v["failsafe_mode_is_active"] == true).then_some(())
    })
    .await;
    tokio::time::sleep((frozen_at + ttl * 3 / 2).saturating_duration_since(Instant::now())).await;
    assert!(
        c.is_writable(&leader).await,
        "the leader still takes writes"
    );
    let during: Vec<_> = w
        .acks()
        .into_iter()
        .filter(|a| a.acked > frozen_at + ttl)
        .collect();
    assert!(
        !during.is_empty(),
        "writes through HAProxy were acknowledged after the lease would have expired"
    );

    info!("--- etcd back: same leader, healthy cluster");
    c.etcd.resume();
    let l = c.wait_for_leader(Duration::from_secs(60)).await;
    assert_eq!(l, leader, "no failover");
    let others = c.others(&[&l]);
    let os: Vec<&str> = others.iter().map(String::as_str).collect();
    c.wait_streaming(&l, &os, Duration::from_secs(60)).await;
    let (acks, _) = w.stop().await;
    let gap = longest_gap(&acks, frozen_at);
    info!(
        longest_gap_ms = gap.as_millis() as u64,
        "longest write gap through HAProxy"
    );
    assert!(gap < ttl, "writes went on: longest gap {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_member_unreachable_failsafe_mode_demotes_in_time() {
    init_tracing();
    let c = TestCluster::start("failsafe_member_down", failsafe_opts()).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    wait_for(
        "the failsafe key lists every member",
        Duration::from_secs(20),
        || async {
            let v = c.etcd_get("failsafe").await?;
            (v.matches("http").count() == 3).then_some(())
        },
    )
    .await;
    let direct = DirectWriters::start(&c, &leader).await;
    wait_for(
        "direct writes on the leader",
        Duration::from_secs(10),
        || async { direct.last_ack(&leader).map(|_| ()) },
    )
    .await;
    let replica = c.others(&[&leader]).pop().unwrap();
    let frozen_agent = c.node(&replica).pid().unwrap();

    info!(%leader, %replica, "--- a replica's agent frozen, then etcd frozen");
    signal(frozen_agent, Signal::SIGSTOP);
    let ttl = Duration::from_secs(c.settings.ttl);
    let frozen_at = Instant::now();
    c.etcd.pause();
    tokio::time::sleep(ttl + Duration::from_secs(2)).await;
    let last = direct.last_ack(&leader).unwrap();
    info!(
        last_write_after_ms = last.duration_since(frozen_at).as_millis() as u64,
        "the leader stopped writing"
    );
    assert!(
        last < frozen_at + ttl,
        "the leader kept writing past its lease without every member's acceptance"
    );
    assert!(overlaps(&direct.acks()).is_empty());

    info!("--- everything back: the cluster heals by itself");
    signal(frozen_agent, Signal::SIGCONT);
    c.etcd.resume();
    let l = c.wait_for_leader(Duration::from_secs(60)).await;
    let others = c.others(&[&l]);
    let os: Vec<&str> = others.iter().map(String::as_str).collect();
    c.wait_streaming(&l, &os, Duration::from_secs(90)).await;
    direct.stop();
    assert!(overlaps(&direct.acks()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_watchdog_that_cannot_be_used_keeps_a_member_from_leading() {
    init_tracing();
    // Every member needs a watchdog; only node1 has (a test-driver) device.
    let opts = Opts {
        nodes: 2,
        settings: ClusterSettings {
            extra_yaml:
                "watchdog:\n  mode: required\n  driver: testing\n  device: {dir}/watchdog\n".into(),
            ..ClusterSettings::default()
        },
        before_start: Some(|i, dir: &std::path::Path| {
            if i == 0 {
                std::fs::write(dir.join("watchdog"), "").unwrap();
                ha_tests::procs::RunAs::unprivileged().chown(&dir.join("watchdog"));
            }
        }),
        ..Opts::default()
    };
    let mut c = TestCluster::start("watchdog_required", opts).await;
    let leader = c.wait_for_leader(Duration::from_secs(90)).await;
    assert_eq!(leader, "node1", "only node1 can use its watchdog");
    let device = c.node("node1").dir.join("watchdog");
    wait_for(
        "the leader's watchdog is armed",
        Duration::from_secs(20),
        || async {
            let text = std::fs::read_to_string(&device).ok()?;
            (text.starts_with("Ctimeout=5\n") && text.matches('1').count() >= 2).then_some(())
        },
    )
    .await;
    let (_, v) = c.node("node1").api_get("/patroni").await.unwrap();
    assert_eq!(v["watchdog"], "armed", "{v}");
    let (_, v) = c.node("node2").api_get("/patroni").await.unwrap();
    assert!(
        v["watchdog"].as_str().unwrap_or("").starts_with("unusable"),
        "{v}"
    );

    info!("--- the leader stops cleanly: its watchdog is closed with the magic character");
    c.node_mut("node1").signal(Signal::SIGTERM);
    c.node_mut("node1").wait_exit(Duration::from_secs(60)).await;
    let text = std::fs::read_to_string(&device).unwrap();
    assert!(text.ends_with('V'), "magic close: {text:?}");

    info!("--- node2 never takes over without its watchdog, and says why");
    let ttl = Duration::from_secs(c.settings.ttl);
    tokio::time::sleep(ttl + Duration::from_secs(4)).await;
    assert_eq!(c.etcd_get("leader").await, None, "nobody leads");
    let log = std::fs::read_to_string(c.node("node2").log_path()).unwrap();
    assert!(
        log.contains("not taking it: watchdog is required but cannot be used"),
        "node2 says why"
    );
    assert!(!c.is_writable("node2").await);
}
