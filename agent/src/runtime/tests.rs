//! The shell against the in-memory etcd and the fake PostgreSQL, under tokio's paused clock:
//! the decisions of the core actually reach PostgreSQL and etcd, in the right order and in
//! time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{NodeSnapshot, Runtime};
use crate::config::Config;
use crate::dcs::memory::{MemoryDcs, MemoryStore};
use crate::dcs::{Dcs, Keys};
use crate::ha::{PgRole, StopMode};
use crate::peers::PeerClient;
use crate::pg::fake::{Call, FakePostgres};

const TTL: u64 = 10;

fn config(dir: &std::path::Path, name: &str) -> Config {
    let yaml = format!(
        "scope: demo\nname: {name}\nrestapi:\n  listen: 127.0.0.1:18008\netcd3:\n  hosts: 127.0.0.1:2379\n\
         bootstrap:\n  dcs:\n    ttl: {TTL}\n    loop_wait: 2\n    retry_timeout: 3\n\
         postgresql:\n  listen: 127.0.0.1:15432\n  data_dir: {}/data\n  authentication:\n    \
         replication:\n      username: replicator\n      password: x\n\
         fence:\n  enabled: false\n",
        dir.display()
    );
    let (cfg, _) = Config::from_yaml(&dir.join("agent.yml"), &yaml, &Default::default())
        .expect("test config is valid");
    cfg
}

struct Node {
    rt: Runtime<MemoryDcs, FakePostgres>,
    dcs: Arc<MemoryDcs>,
    pg: Arc<FakePostgres>,
    _snap: watch::Receiver<NodeSnapshot>,
    _dir: tempfile::TempDir,
}

fn node(store: &MemoryStore, name: &str) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Arc::new(config(dir.path(), name));
    let dcs = Arc::new(MemoryDcs::new(
        store.clone(),
        Keys::new("/service/", "demo"),
        name,
        TTL,
    ));
    let pg = Arc::new(FakePostgres::new());
    let dynamic = cfg.initial_dynamic();
    let (tx, rx) = watch::channel(NodeSnapshot::initial(
        name,
        "demo",
        cfg.ha_config(&dynamic),
        dynamic,
    ));
    let (_req_tx, req_rx) = mpsc::channel(1);
    let peers = PeerClient::new(Duration::from_millis(200)).expect("http client");
    let rt = Runtime::new(cfg, dcs.clone(), pg.clone(), peers, tx, req_rx);
    Node {
        rt,
        dcs,
        pg,
        _snap: rx,
        _dir: dir,
    }
}

/// Runs cycles (letting background jobs finish) until `done` or `limit` cycles.
async fn cycles(n: &mut Node, limit: usize, done: impl Fn(&Node) -> bool) -> usize {
    for i in 0..limit {
        n.rt.cycle().await;
        if done(n) {
            return i + 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "condition not reached after {limit} cycles; store: {:?}",
        n.dcs.store().dump()
    );
}

fn is_leader(n: &Node) -> bool {
    n.dcs.store().get("/service/demo/leader").as_deref() == Some("pg1")
        && n.pg.state_role() == PgRole::Primary
}

#[tokio::test(start_paused = true)]
async fn single_member_bootstraps_takes_the_lease_and_publishes_patroni_keys() {
    let store = MemoryStore::new();
    let mut n = node(&store, "pg1");
    cycles(&mut n, 20, |n| {
        is_leader(n)
            && n.dcs
                .store()
                .get("/service/demo/initialize")
                .is_some_and(|s| !s.is_empty())
    })
    .await;
    assert!(n.pg.calls().contains(&Call::Bootstrap));
    let config: serde_json::Value =
        serde_json::from_str(&store.get("/service/demo/config").expect("config seeded"))
            .expect("json");
    assert_eq!(config["ttl"], TTL);
    n.rt.cycle().await;
    let member: serde_json::Value = serde_json::from_str(
        &store
            .get("/service/demo/members/pg1")
            .expect("member record"),
    )
    .expect("json");
    assert_eq!(member["role"], "primary");
    assert_eq!(member["state"], "running");
    assert_eq!(member["conn_url"], "postgres://127.0.0.1:15432/postgres");
}

/// Runs the loop as `run` does (sleeping `next_wait` between cycles) until PostgreSQL was
/// stopped immediately; returns when the stop began, on the agent's clock.
async fn until_demoted(n: &mut Node, limit: usize) -> crate::ha::Millis {
    let mut rerun = false;
    for _ in 0..limit {
        tokio::time::sleep(n.rt.next_wait(rerun)).await;
        let (_, r) = n.rt.cycle().await;
        rerun = r;
        if n.pg.calls().contains(&Call::Stop(StopMode::Immediate)) {
            let at = n.pg.stopped_at().expect("stop time recorded");
            let base = n.rt.clock.instant(crate::ha::Millis(0));
            let ms = u64::try_from(at.duration_since(base).as_millis()).expect("ms");
            return crate::ha::Millis(ms);
        }
    }
    panic!("no demotion after {limit} cycles: {:?}", n.pg.calls());
}

#[tokio::test(start_paused = true)]
async fn leader_cut_off_from_etcd_stops_postgres_before_its_lease_can_expire() {
    let store = MemoryStore::new();
    let mut n = node(&store, "pg1");
    cycles(&mut n, 20, is_leader).await;
    n.rt.cycle().await;
    let renewed_until = n.rt.st.lease_valid_until.expect("leader holds a lease");
    let demote_point = crate::ha::timing::demote_at(renewed_until, &n.rt.st.ha);
    let cut_at = n.rt.clock.now();
    n.dcs.set_unreachable(true);
    n.rt.cycle().await;
    assert!(
        n.rt.snapshot
            .borrow()
            .is_writable_leader(tokio::time::Instant::now()),
        "cut off from etcd, the leader keeps answering 200 on /primary while its lease is valid"
    );
    let demoted_at = until_demoted(&mut n, 100).await;
    assert!(
        demoted_at <= demote_point.plus(crate::ha::Millis(50)),
        "demoted at {demoted_at:?}, demotion point {demote_point:?}, lease valid until {renewed_until:?}"
    );
    assert!(
        !n.rt
            .snapshot
            .borrow()
            .is_writable_leader(tokio::time::Instant::now()),
        "demoted: /primary answers 503"
    );
    assert!(
        demoted_at.since(cut_at).0 >= 5_000,
        "the leader keeps serving while its lease is valid"
    );
    assert_ne!(n.pg.state_role(), PgRole::Primary);
}

/// Issue 16: a renewal (or read) that never returns must not hold the demotion: every etcd
/// call is bounded by the demotion point and the loop wakes there on its own timer.
#[tokio::test(start_paused = true)]
async fn leader_whose_etcd_calls_hang_demotes_at_its_demotion_point() {
    for phase_ms in [0u64, 700, 1_300, 1_900] {
        let store = MemoryStore::new();
        let mut n = node(&store, "pg1");
        cycles(&mut n, 20, is_leader).await;
        n.rt.cycle().await;
        // Cut at several points of the renewal cycle (loop_wait is 2 s here).
        tokio::time::advance(Duration::from_millis(phase_ms)).await;
        let renewed_until = n.rt.st.lease_valid_until.expect("leader holds a lease");
        let demote_point = crate::ha::timing::demote_at(renewed_until, &n.rt.st.ha);
        n.dcs.set_hanging(true);
        let demoted_at = until_demoted(&mut n, 100).await;
        assert!(
            demoted_at <= demote_point.plus(crate::ha::Millis(50)),
            "phase {phase_ms} ms: demoted at {demoted_at:?}, demotion point {demote_point:?}"
        );
        assert!(demoted_at < renewed_until, "phase {phase_ms} ms");
    }
}

#[tokio::test(start_paused = true)]
async fn leader_that_finds_the_key_taken_stops_postgres_at_once() {
    let store = MemoryStore::new();
    let mut n = node(&store, "pg1");
    cycles(&mut n, 20, is_leader).await;
    // Another member really holds the key (its record exists, the key is under its lease):
    // a split brain in the making; demote in the next cycle.
    let other = MemoryDcs::new(store.clone(), Keys::new("/service/", "demo"), "pg2", TTL);
    other
        .publish_member(&crate::dcs::MemberRecord {
            conn_url: "postgres://127.0.0.1:15433/postgres".into(),
            api_url: "http://127.0.0.1:18009/patroni".into(),
            state: "running".into(),
            role: "replica".into(),
            ..Default::default()
        })
        .await
        .expect("publish");
    store.delete("/service/demo/leader");
    assert_eq!(
        other.acquire_leader().await.expect("acquire"),
        crate::dcs::CasOutcome::Applied
    );
    n.rt.cycle().await;
    assert!(
        n.pg.calls().contains(&Call::Stop(StopMode::Immediate)),
        "{:?}",
        n.pg.calls()
    );
    assert_ne!(n.pg.state_role(), PgRole::Primary);
}

#[tokio::test(start_paused = true)]
async fn leader_that_finds_the_key_overwritten_by_hand_takes_it_back() {
    let store = MemoryStore::new();
    let mut n = node(&store, "pg1");
    cycles(&mut n, 20, is_leader).await;
    // A name written by hand, under no lease (it would never expire): not a reason to stop.
    store.put("/service/demo/leader", "pg2");
    n.rt.cycle().await;
    n.rt.cycle().await;
    assert!(
        !n.pg.calls().iter().any(|c| matches!(c, Call::Stop(_))),
        "{:?}",
        n.pg.calls()
    );
    assert_eq!(store.get("/service/demo/leader").as_deref(), Some("pg1"));
    assert_eq!(n.pg.state_role(), PgRole::Primary);
}

/// A leader that wrote the `failsafe` key in its last cycle before etcd went away asks the
/// members it wrote (it knows what etcd holds without reading it back).
#[tokio::test(start_paused = true)]
async fn failsafe_key_written_just_before_etcd_goes_away_is_used() {
    let store = MemoryStore::new();
    let mut n = node(&store, "pg1");
    cycles(&mut n, 20, is_leader).await;
    n.rt.st.ha.failsafe_mode = true;
    n.rt.cycle().await;
    assert!(
        n.dcs.store().get("/service/demo/failsafe").is_some(),
        "the leader wrote the failsafe key"
    );
    n.dcs.set_unreachable(true);
    n.rt.cycle().await;
    assert!(
        n.rt.st.failsafe_valid_until.is_some(),
        "the failsafe round ran on the key just written"
    );
    assert_eq!(n.pg.state_role(), PgRole::Primary);
}

#[path = "tests_faults.rs"]
mod faults;
