//! Quorum commit (`synchronous_mode: quorum`, issue 7) against real etcd, PostgreSQL and
//! HAProxy:
//! - three members, `synchronous_node_count: 1`, a client committing continuously through
//!   HAProxy: kill -9 of the leader makes a member of the quorum leader with every
//!   acknowledged commit; once the killed member is back and streaming, kill -9 of the new
//!   leader again loses none. The `sync` key (`quorum`, voters) and `synchronous_standby_names`
//!   are checked at each step, and the roles as the REST API and `hactl list` show them;
//! - `hactl edit-config` switches a running cluster between off, quorum and on, each within
//!   a few loops, without a PostgreSQL restart; a bad value is refused by name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ha_tests::agent::{ClusterSettings, http};
use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::ctl::hactl;
use ha_tests::procs::{init_tracing, wait_for};
use ha_tests::sync::{missing_on, standby_names, switchover, sync_json};
use ha_tests::writer::Writer;
use serde_json::{Value, json};
use tracing::info;

/// `ANY k ("a","b")` as the agent writes it.
fn any(k: usize, names: &[&str]) -> String {
    let mut names = names.to_vec();
    names.sort_unstable();
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("ANY {k} ({})", quoted.join(","))
}

/// Waits until the `sync` key is `{"leader": leader, "quorum": q, "sync_standby": voters}`
/// and the leader's `synchronous_standby_names` is `names`; returns how long it took.
async fn wait_quorum_state(
    c: &TestCluster,
    leader: &str,
    voters: &[&str],
    q: u64,
    names: &str,
    timeout: Duration,
) -> Duration {
    let mut sorted = voters.to_vec();
    sorted.sort_unstable();
    let want = json!({
        "leader": leader,
        "quorum": q,
        "sync_standby": if sorted.is_empty() { Value::Null } else { sorted.join(",").into() },
    });
    let t0 = Instant::now();
    wait_for(
        &format!("sync key {want} and synchronous_standby_names {names:?} on {leader}"),
        timeout,
        || async {
            (sync_json(c).await? == want && standby_names(c, leader).await? == names).then_some(())
        },
    )
    .await;
    t0.elapsed()
}

/// The roles as Patroni shows them in quorum mode: `/quorum`, `/read-only-quorum`, `/sync`,
/// `/async`, `/patroni`, `/cluster`, the metric and `hactl list`.
async fn roles_shown(c: &TestCluster, leader: &str, standbys: &[&str]) {
    wait_for(
        "the health endpoints answer per the quorum key",
        Duration::from_secs(10),
        || async {
            for s in standbys {
                let n = c.node(s);
                let codes = (
                    n.api_get("/quorum").await?.0,
                    n.api_get("/read-only-quorum").await?.0,
                    n.api_get("/sync").await?.0,
                    n.api_get("/async").await?.0,
                );
                if codes != (200, 200, 503, 503) {
                    return None;
                }
            }
            let l = c.node(leader);
            let codes = (
                l.api_get("/quorum").await?.0,
                l.api_get("/read-only-quorum").await?.0,
            );
            (codes == (503, 200)).then_some(())
        },
    )
    .await;
    let s = standbys[0];
    let (_, p) = c.node(s).api_get("/patroni").await.unwrap();
    assert_eq!(p["quorum_standby"], true, "{p}");
    assert!(p.get("sync_standby").is_none(), "{p}");
    let (_, cl) = c.node(leader).api_get("/cluster").await.unwrap();
    for m in cl["members"].as_array().unwrap() {
        let want = if m["name"] == leader {
            "leader"
        } else {
            "quorum_standby"
        };
        assert_eq!(m["role"], want, "{cl}");
    }
    let out = hactl(&c.node(leader).config_path(), &["list"]).await.ok();
    for s in standbys {
        let line = out.stdout.lines().find(|l| l.contains(s)).unwrap();
        assert!(line.contains("Quorum Standby"), "{out}");
    }
    let metrics = http()
        .get(format!("{}/metrics", c.node(s).api_base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("patroni_quorum_standby{") && l.ends_with(" 1")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_failover_twice_loses_no_acknowledged_commit() {
    init_tracing();
    let opts = Opts {
        haproxy: true,
        settings: ClusterSettings {
            extra_dcs: "    synchronous_mode: quorum\n    synchronous_node_count: 1\n".into(),
            ..ClusterSettings::default()
        },
        ..Opts::default()
    };
    let mut c = TestCluster::start("quorum_failover", opts).await;
    let first = c.wait_healthy(Duration::from_secs(90)).await;
    let others = c.others(&[&first]);
    let (a, b) = (others[0].clone(), others[1].clone());
    let took = wait_quorum_state(
        &c,
        &first,
        &[&a, &b],
        1,
        &any(1, &[&a, &b]),
        Duration::from_secs(30),
    )
    .await;
    info!(leader = %first, took_ms = took.as_millis() as u64, "quorum 1 of two voters, ANY 1");
    roles_shown(&c, &first, &[&a, &b]).await;

    info!("--- a client commits continuously through HAProxy; kill -9 of the leader {first}");
    let hp = c.haproxy.as_ref().unwrap().primary_port;
    let w = Writer::start(hp, Duration::from_millis(2)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = w.acks().len();
    info!(acked = before, "commits in 2 s before the kill");
    assert!(
        before >= 200,
        "at least 100 commits a second: {before} in 2 s"
    );
    c.node_mut(&first).kill_node().await;
    let second = c
        .wait_for_leader_other_than(&first, Duration::from_secs(60))
        .await;
    assert!(others.contains(&second), "{second} is not a voter");
    w.wait_for_ack_from(c.node(&second).pg_port, Duration::from_secs(30))
        .await;
    let acks = w.acks();
    let missing = missing_on(&c, &second, &acks).await;
    info!(new_leader = %second, acknowledged = acks.len(), missing = missing.len(), "first failover");
    assert!(missing.is_empty(), "missing on {second}: {missing:?}");
    let survivor = if second == a { b.clone() } else { a.clone() };
    wait_quorum_state(
        &c,
        &second,
        &[&survivor],
        0,
        &any(1, &[&survivor]),
        Duration::from_secs(30),
    )
    .await;

    info!("--- the killed member {first} comes back and streams; the quorum takes it in");
    let settings = c.settings.clone();
    c.node_mut(&first).start(&settings);
    c.wait_streaming(&second, &[&first, &survivor], Duration::from_secs(90))
        .await;
    let took = wait_quorum_state(
        &c,
        &second,
        &[&first, &survivor],
        1,
        &any(1, &[&first, &survivor]),
        Duration::from_secs(30),
    )
    .await;
    info!(
        took_ms = took.as_millis() as u64,
        "quorum 1 of two voters again"
    );

    info!("--- kill -9 of the new leader {second}");
    let before = w.acks().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(w.acks().len() > before + 100, "the client still commits");
    c.node_mut(&second).kill_node().await;
    let third = c
        .wait_for_leader_other_than(&second, Duration::from_secs(60))
        .await;
    assert!(
        third == first || third == survivor,
        "{third} is not a voter"
    );
    w.wait_for_ack_from(c.node(&third).pg_port, Duration::from_secs(30))
        .await;
    let (acks, failures) = w.stop().await;
    let missing = missing_on(&c, &third, &acks).await;
    info!(
        new_leader = %third,
        acknowledged = acks.len(),
        failed_attempts = failures,
        missing = missing.len(),
        "second failover"
    );
    assert!(missing.is_empty(), "missing on {third}: {missing:?}");
    let last = if third == first { &survivor } else { &first };
    wait_quorum_state(
        &c,
        &third,
        &[last],
        0,
        &any(1, &[last]),
        Duration::from_secs(30),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_in_quorum_mode_goes_to_a_voter() {
    init_tracing();
    let opts = Opts {
        settings: ClusterSettings {
            extra_dcs: "    synchronous_mode: quorum\n".into(),
            ..ClusterSettings::default()
        },
        ..Opts::default()
    };
    let c = TestCluster::start("quorum_switchover", opts).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    let others = c.others(&[&leader]);
    let (a, b) = (others[0].as_str(), others[1].as_str());
    wait_quorum_state(
        &c,
        &leader,
        &[a, b],
        1,
        &any(1, &[a, b]),
        Duration::from_secs(30),
    )
    .await;

    info!("--- a candidate that is not a member: 412");
    let (code, text) = switchover(&c, &leader, "nosuch").await;
    assert_eq!(code, 412, "{text}");

    info!("--- switchover to the voter {a}");
    let t0 = Instant::now();
    let (code, text) = switchover(&c, &leader, a).await;
    assert_eq!(code, 200, "{text}");
    let new = c
        .wait_for_leader_other_than(&leader, Duration::from_secs(30))
        .await;
    assert_eq!(new, a, "the candidate took over");
    info!(took_ms = t0.elapsed().as_millis() as u64, "new leader");
    let took = wait_quorum_state(
        &c,
        a,
        &[&leader, b],
        1,
        &any(1, &[&leader, b]),
        Duration::from_secs(60),
    )
    .await;
    info!(
        took_ms = took.as_millis() as u64,
        "quorum rebuilt under the new leader"
    );
}

async fn postmaster_start(c: &TestCluster, node: &str) -> String {
    let cl = c.node(node).client().await.unwrap();
    let row = cl
        .query_one("select pg_postmaster_start_time()::text", &[])
        .await
        .unwrap();
    row.get::<_, String>(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_config_switches_between_off_quorum_and_on() {
    init_tracing();
    let c = TestCluster::start("quorum_edit_config", Opts::default()).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    let others = c.others(&[&leader]);
    let (a, b) = (others[0].as_str(), others[1].as_str());
    let cfg = c.node(&leader).config_path();
    let postmaster = postmaster_start(&c, &leader).await;
    let set = |v: &'static str| {
        let cfg = cfg.clone();
        async move {
            hactl(&cfg, &["edit-config", "-s", v, "--force"]).await.ok();
        }
    };

    info!("--- off -> quorum");
    set("synchronous_mode=quorum").await;
    let took = wait_quorum_state(
        &c,
        &leader,
        &[a, b],
        1,
        &any(1, &[a, b]),
        Duration::from_secs(20),
    )
    .await;
    info!(
        took_ms = took.as_millis() as u64,
        "quorum in force (loop_wait 2 s)"
    );

    info!("--- quorum -> on: FIRST 1, the key names one standby, quorum 0");
    set("synchronous_mode=true").await;
    let t0 = Instant::now();
    let named = wait_for(
        "FIRST 1 and a key naming its standby",
        Duration::from_secs(20),
        || async {
            let v = sync_json(&c).await?;
            let s = v["sync_standby"].as_str()?.to_string();
            (v["leader"] == leader.as_str()
                && v["quorum"] == 0
                && !s.contains(',')
                && standby_names(&c, &leader).await? == format!("FIRST 1 (\"{s}\")"))
            .then_some(s)
        },
    )
    .await;
    info!(took_ms = t0.elapsed().as_millis() as u64, sync = %named, "synchronous mode on");

    info!("--- on -> quorum -> off");
    set("synchronous_mode=quorum").await;
    wait_quorum_state(
        &c,
        &leader,
        &[a, b],
        1,
        &any(1, &[a, b]),
        Duration::from_secs(20),
    )
    .await;
    set("synchronous_mode=false").await;
    let t1 = Instant::now();
    wait_for(
        "no sync key and an empty setting",
        Duration::from_secs(20),
        || async {
            (c.etcd_get("sync").await.is_none()
                && standby_names(&c, &leader).await.as_deref() == Some(""))
            .then_some(())
        },
    )
    .await;
    info!(
        took_ms = t1.elapsed().as_millis() as u64,
        "asynchronous again"
    );
    assert_eq!(
        postmaster_start(&c, &leader).await,
        postmaster,
        "PostgreSQL was not restarted"
    );

    info!("--- a bad mode is refused by name, nothing written");
    let before = c.etcd_get("config").await.unwrap();
    c.assert_config_patches_refused(
        &leader,
        &[(json!({"synchronous_mode": "quorom"}), "synchronous_mode")],
    )
    .await;
    let out = hactl(
        &cfg,
        &["edit-config", "-s", "synchronous_mode=quorom", "--force"],
    )
    .await;
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(c.etcd_get("config").await.unwrap(), before);
}
