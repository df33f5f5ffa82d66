//! kill -9 of the leader node: a replica takes over within ttl + a few seconds, `history` has
//! the new timeline, the other replica follows; the killed node, restarted, rejoins as a
//! streaming replica, rewound when it had diverged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::procs::{init_tracing, signal, wait_for};
use nix::sys::signal::Signal;
use tracing::info;

async fn rows(c: &TestCluster, node: &str) -> Option<Vec<i32>> {
    let cl = c.node(node).client().await.ok()?;
    let r = cl.query("select id from t order by id", &[]).await.ok()?;
    Some(r.iter().map(|r| r.get(0)).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_is_replaced_and_rejoins_as_replica() {
    init_tracing();
    let mut c = TestCluster::start("failover_kill", Opts::default()).await;
    let old = c.wait_healthy(Duration::from_secs(90)).await;
    let replicas = c.others(&[&old]);

    info!("--- rows written on the leader and replicated");
    let l = c.node(&old).client().await.unwrap();
    l.batch_execute(
        "create table t (id int primary key); insert into t select generate_series(1, 100)",
    )
    .await
    .unwrap();
    for r in &replicas {
        wait_for("replicated rows", Duration::from_secs(30), || async {
            (rows(&c, r).await?.len() == 100).then_some(())
        })
        .await;
    }

    info!("--- kill -9 of the leader's agent and postmaster");
    let t0 = Instant::now();
    c.node_mut(&old).kill_node().await;
    let ttl = Duration::from_secs(c.settings.ttl);
    let new = c
        .wait_for_leader_other_than(&old, ttl + Duration::from_secs(30))
        .await;
    let took = t0.elapsed();
    info!(new = %new, took_ms = took.as_millis() as u64, "new leader accepts writes");
    assert!(
        took < ttl + Duration::from_secs(10),
        "failover took {took:?} (ttl {ttl:?})"
    );
    assert_eq!(
        rows(&c, &new).await.unwrap().len(),
        100,
        "replicated rows survive the failover"
    );

    info!("--- history records the new timeline");
    wait_for(
        "history entry for timeline 1",
        Duration::from_secs(10),
        || async {
            let h: serde_json::Value = serde_json::from_str(&c.etcd_get("history").await?).ok()?;
            let e = h.as_array()?.iter().find(|e| e[0] == 1)?.clone();
            assert!(e[1].as_u64().unwrap() > 0, "{e}");
            assert_eq!(e[2], "no recovery target specified");
            assert_eq!(e[4], new.as_str(), "{e}");
            Some(())
        },
    )
    .await;
    let tl: i32 = c
        .node(&new)
        .client()
        .await
        .unwrap()
        .query_one(
            "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tl, 2);

    info!("--- the other replica follows the new leader");
    let other = c.others(&[&old, &new]).pop().unwrap();
    c.wait_streaming(&new, &[&other], Duration::from_secs(30))
        .await;

    info!("--- the killed node, restarted, rejoins as a streaming replica");
    let settings = c.settings.clone();
    let t1 = Instant::now();
    c.node_mut(&old).start(&settings);
    c.wait_streaming(&new, &[&old, &other], Duration::from_secs(60))
        .await;
    info!(
        took_ms = t1.elapsed().as_millis() as u64,
        "old leader streams again"
    );
    c.node(&new)
        .client()
        .await
        .unwrap()
        .batch_execute("insert into t values (101)")
        .await
        .unwrap();
    wait_for(
        "row 101 on the old leader",
        Duration::from_secs(30),
        || async { rows(&c, &old).await?.contains(&101).then_some(()) },
    )
    .await;
    assert!(
        !c.is_writable(&old).await,
        "the old leader is a replica now"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_with_unreplicated_writes_is_rewound() {
    init_tracing();
    let mut c = TestCluster::start("failover_rewind", Opts::default()).await;
    let old = c.wait_healthy(Duration::from_secs(90)).await;
    let replicas = c.others(&[&old]);
    let l = c.node(&old).client().await.unwrap();
    l.batch_execute("create table t (id int primary key); insert into t values (1)")
        .await
        .unwrap();
    for r in &replicas {
        wait_for("row 1 replicated", Duration::from_secs(30), || async {
            rows(&c, r).await?.contains(&1).then_some(())
        })
        .await;
    }

    info!("--- freeze the WAL senders, write on the leader (not replicated), kill the node");
    let senders: Vec<i32> = l
        .query("select pid from pg_stat_replication", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(senders.len(), 2);
    for p in &senders {
        signal(*p as u32, Signal::SIGSTOP);
    }
    l.batch_execute("insert into t select generate_series(1000, 1999)")
        .await
        .unwrap();
    c.node_mut(&old).kill_node().await;
    for p in &senders {
        signal(*p as u32, Signal::SIGKILL);
    }
    let new = c
        .wait_for_leader_other_than(&old, Duration::from_secs(c.settings.ttl + 30))
        .await;
    assert_eq!(
        rows(&c, &new).await.unwrap(),
        vec![1],
        "the unreplicated rows never reached the new leader"
    );

    info!("--- the old leader diverged: restarted, it is rewound and streams from the new leader");
    let settings = c.settings.clone();
    c.node_mut(&old).start(&settings);
    let other = c.others(&[&old, &new]).pop().unwrap();
    c.wait_streaming(&new, &[&old, &other], Duration::from_secs(90))
        .await;
    let log = std::fs::read_to_string(c.node(&old).log_path()).unwrap();
    assert!(
        log.contains("running pg_rewind from"),
        "the agent rewound the diverged node"
    );
    c.node(&new)
        .client()
        .await
        .unwrap()
        .batch_execute("insert into t values (2)")
        .await
        .unwrap();
    wait_for(
        "the rewound node matches the new leader",
        Duration::from_secs(30),
        || async { (rows(&c, &old).await? == vec![1, 2]).then_some(()) },
    )
    .await;
}
