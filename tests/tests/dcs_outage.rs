//! The leader loses etcd: it stops accepting writes before its lease could have expired, and
//! there is never a moment with two writable primaries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ha_tests::agent::connect;
use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::procs::{init_tracing, wait_for};
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Acknowledged writes: (sent, acknowledged, member). Comparing one member's latest
/// acknowledgement with another's earliest send is conservative in both directions.
type Log = Arc<Mutex<Vec<(Instant, Instant, String)>>>;

/// Writes to every member every 20 ms; records each acknowledged write with its time.
fn spawn_writers(c: &TestCluster, stop: CancellationToken) -> Log {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    for n in &c.nodes {
        let (port, name, log, stop) = (n.pg_port, n.name.clone(), log.clone(), stop.clone());
        tokio::spawn(async move {
            let mut client = None;
            while !stop.is_cancelled() {
                if client.is_none() {
                    client = connect(port).await.ok();
                }
                if let Some(cl) = &client {
                    let sent = Instant::now();
                    let r = tokio::time::timeout(
                        Duration::from_millis(500),
                        cl.execute("insert into probe (node) values ($1)", &[&name]),
                    )
                    .await;
                    match r {
                        Ok(Ok(_)) => log
                            .lock()
                            .unwrap()
                            .push((sent, Instant::now(), name.clone())),
                        Ok(Err(e)) if e.is_closed() => client = None,
                        Ok(Err(_)) => {}
                        Err(_) => client = None,
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    log
}

/// Creates the probe table on `leader`, starts writing to every member, and waits until the
/// leader acknowledged a write.
async fn probe_all(c: &TestCluster, leader: &str) -> (Log, CancellationToken) {
    c.node(leader)
        .client()
        .await
        .unwrap()
        .batch_execute(
            "create table probe (id bigserial primary key, node text, at timestamptz default now())",
        )
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let log = spawn_writers(c, stop.clone());
    wait_for("writes acknowledged", Duration::from_secs(10), || async {
        last_writes(&log).contains_key(leader).then_some(())
    })
    .await;
    (log, stop)
}

/// Last acknowledged write per member.
fn last_writes(log: &Log) -> BTreeMap<String, Instant> {
    let mut m = BTreeMap::new();
    for (_, t, n) in log.lock().unwrap().iter() {
        m.insert(n.clone(), *t);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_demotes_before_its_lease_expires_when_etcd_freezes() {
    init_tracing();
    let c = TestCluster::start("dcs_etcd_frozen", Opts::default()).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    let (log, stop) = probe_all(&c, &leader).await;

    info!("--- etcd frozen (SIGSTOP)");
    let frozen_at = Instant::now();
    c.etcd.pause();
    let ttl = Duration::from_secs(c.settings.ttl);
    // The lease was renewed at the latest just before the freeze, so it cannot expire before
    // frozen_at + ttl; writes must have stopped by then.
    tokio::time::sleep(ttl + Duration::from_secs(3)).await;
    let last = last_writes(&log);
    let last_on_leader = last[&leader];
    info!(
        stopped_after_ms = last_on_leader.duration_since(frozen_at).as_millis() as u64,
        "last acknowledged write on the old leader"
    );
    assert!(
        last_on_leader < frozen_at + ttl,
        "the leader accepted writes after its lease could have expired"
    );
    assert_eq!(
        last.len(),
        1,
        "no other member ever accepted writes: {last:?}"
    );
    for n in &c.nodes {
        assert!(
            !c.is_writable(&n.name).await,
            "{} is writable without etcd",
            n.name
        );
    }

    info!("--- etcd back: the cluster heals by itself");
    c.etcd.resume();
    let l = c.wait_for_leader(Duration::from_secs(60)).await;
    let others = c.others(&[&l]);
    let os: Vec<&str> = others.iter().map(String::as_str).collect();
    c.wait_streaming(&l, &os, Duration::from_secs(90)).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_stops_writes_before_a_new_leader_starts() {
    init_tracing();
    let opts = Opts {
        etcd_proxies: true,
        ..Opts::default()
    };
    let c = TestCluster::start("dcs_leader_isolated", opts).await;
    let old = c.wait_healthy(Duration::from_secs(90)).await;
    let (log, stop) = probe_all(&c, &old).await;

    info!("--- the leader is cut off from etcd (the others still reach it)");
    let cut_at = Instant::now();
    c.proxy_of(&old).cut();
    let ttl = Duration::from_secs(c.settings.ttl);
    let new = c
        .wait_for_leader_other_than(&old, ttl + Duration::from_secs(30))
        .await;
    info!(new = %new, after_ms = cut_at.elapsed().as_millis() as u64, "new leader");
    wait_for(
        "writes acknowledged on the new leader",
        Duration::from_secs(10),
        || async { last_writes(&log).contains_key(&new).then_some(()) },
    )
    .await;

    let writes = log.lock().unwrap().clone();
    let last_old = writes
        .iter()
        .filter(|(_, _, n)| n == &old)
        .map(|(_, acked, _)| *acked)
        .max()
        .unwrap();
    let first_new = writes
        .iter()
        .filter(|(_, _, n)| n == &new)
        .map(|(sent, _, _)| *sent)
        .min()
        .unwrap();
    info!(
        old_stopped_after_ms = last_old.duration_since(cut_at).as_millis() as u64,
        new_started_after_ms = first_new.duration_since(cut_at).as_millis() as u64,
        "write windows"
    );
    assert!(
        last_old < cut_at + ttl,
        "the old leader accepted writes after its lease could have expired"
    );
    assert!(
        last_old < first_new,
        "two writable primaries at once: old until {last_old:?}, new from {first_new:?}"
    );
    let third = c.others(&[&old, &new]).pop().unwrap();
    assert!(
        writes.iter().all(|(_, _, n)| n != &third),
        "{third} never became writable"
    );

    info!("--- the partition heals: the old leader rejoins as a replica");
    c.proxy_of(&old).heal();
    c.wait_streaming(&new, &[&old, &third], Duration::from_secs(90))
        .await;
    stop.cancel();
}
