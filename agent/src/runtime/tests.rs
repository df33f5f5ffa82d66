//! The shell against the in-memory etcd and the fake PostgreSQL, under tokio's paused clock:
//! the decisions of the core actually reach PostgreSQL and etcd, in the right order and in
//! time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{NodeSnapshot, Runtime};
use crate::config::Config;
use crate::dcs::Keys;
use crate::dcs::memory::{MemoryDcs, MemoryStore};
use crate::ha::{PgRole, StopMode};
use crate::peers::PeerClient;
use crate::pg::fake::{Call, FakePostgres};

const TTL: u64 = 10;

fn config(dir: &std::path::Path, name: &str) -> Config {
    let yaml = format!(
        "scope: demo\nname: {name}\nrestapi:\n  listen: 127.0.0.1:18008\netcd3:\n  hosts: 127.0.0.1:2379\n\
         bootstrap:\n  dcs:\n    ttl: {TTL}\n    loop_wait: 2\n    retry_timeout: 3\n\
         postgresql:\n  listen: 127.0.0.1:15432\n  data_dir: {}/data\n  authentication:\n    \
         replication:\n      username: replicator\n      password: x\n",
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

#[tokio::test(start_paused = true)]
async fn leader_cut_off_from_etcd_stops_postgres_before_its_lease_can_expire() {
    let store = MemoryStore::new();
    let mut n = node(&store, "pg1");
    cycles(&mut n, 20, is_leader).await;
    n.rt.cycle().await;
    let renewed_until = n.rt.st.lease_valid_until.expect("leader holds a lease");
    let cut_at = n.rt.clock.now();
    n.dcs.set_unreachable(true);
    // Cycle as the loop would while etcd is down: about once a second.
    let mut demoted_at = None;
    for _ in 0..(TTL * 2) {
        tokio::time::advance(Duration::from_secs(1)).await;
        n.rt.cycle().await;
        if n.pg.calls().contains(&Call::Stop(StopMode::Immediate)) {
            demoted_at = Some(n.rt.clock.now());
            break;
        }
    }
    let demoted_at = demoted_at.expect("the leader demoted");
    assert!(
        demoted_at < renewed_until,
        "demoted at {demoted_at:?}, lease valid until {renewed_until:?}"
    );
    assert!(
        demoted_at.since(cut_at).0 >= 1_000,
        "a short etcd blip does not demote at once"
    );
    assert_ne!(n.pg.state_role(), PgRole::Primary);
}

#[tokio::test(start_paused = true)]
async fn leader_that_finds_the_key_taken_stops_postgres_at_once() {
    let store = MemoryStore::new();
    let mut n = node(&store, "pg1");
    cycles(&mut n, 20, is_leader).await;
    // Someone else's name in the key (an operator, a split brain): demote in the next cycle.
    store.put("/service/demo/leader", "pg2");
    n.rt.cycle().await;
    assert!(
        n.pg.calls().contains(&Call::Stop(StopMode::Immediate)),
        "{:?}",
        n.pg.calls()
    );
    assert_ne!(n.pg.state_role(), PgRole::Primary);
}
