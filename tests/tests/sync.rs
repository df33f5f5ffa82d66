//! Synchronous replication (issue 7) against real etcd, PostgreSQL and HAProxy:
//! - a switchover to a member the `sync` key does not name is refused (412), to the sync
//!   standby it works; then, with a client committing continuously through HAProxy, kill -9 of
//!   the leader node makes the member the key named the new leader, with every acknowledged
//!   commit on it;
//! - `hactl edit-config -s synchronous_mode=true` on a running asynchronous cluster sets
//!   `synchronous_standby_names` and writes the key; `false` undoes both;
//! - the sync standby killed: without strict, commits go on; with strict (and no other
//!   standby), commits wait and complete once it is back; the same in quorum mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ha_tests::agent::{ClusterSettings, http};
use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::ctl::hactl;
use ha_tests::procs::{init_tracing, wait_for};
use ha_tests::sync::{missing_on, standby_names, switchover, sync_key};
use ha_tests::writer::{Ack, Writer};
use serde_json::Value;
use tracing::info;

fn sync_settings(strict: bool) -> ClusterSettings {
    ClusterSettings {
        extra_dcs: format!("    synchronous_mode: true\n    synchronous_mode_strict: {strict}\n"),
        ..ClusterSettings::default()
    }
}

/// Waits until the key names `leader` and one standby; returns that standby.
async fn wait_sync_standby(c: &TestCluster, leader: &str, timeout: Duration) -> String {
    wait_for(
        &format!("a sync key naming {leader} and a standby"),
        timeout,
        || async {
            let (l, s) = sync_key(c).await?;
            (l == leader && s.len() == 1).then(|| s[0].clone())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_sync_standby_takes_over_and_no_acknowledged_commit_is_lost() {
    init_tracing();
    let opts = Opts {
        haproxy: true,
        settings: sync_settings(false),
        ..Opts::default()
    };
    let c = TestCluster::start("sync_failover", opts).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    let t0 = Instant::now();
    let sync = wait_sync_standby(&c, &leader, Duration::from_secs(30)).await;
    info!(leader = %leader, sync = %sync, took_ms = t0.elapsed().as_millis() as u64, "sync key written");
    assert_eq!(
        standby_names(&c, &leader).await.unwrap(),
        format!("FIRST 1 (\"{sync}\")")
    );
    let other = c.others(&[&leader, &sync]).pop().unwrap();

    info!("--- switchover to the member the sync key does not name: 412");
    let (code, text) = switchover(&c, &leader, &other).await;
    assert_eq!(code, 412, "{text}");
    assert!(text.contains("not a synchronous standby"), "{text}");

    info!("--- switchover to the sync standby works");
    let (code, text) = switchover(&c, &leader, &sync).await;
    assert_eq!(code, 200, "{text}");
    let leader = c
        .wait_for_leader_other_than(&leader, Duration::from_secs(30))
        .await;
    assert_eq!(leader, sync, "the sync standby took over");
    c.haproxy
        .as_ref()
        .unwrap()
        .wait_routes_to(&leader, Duration::from_secs(20))
        .await;
    let sync = wait_sync_standby(&c, &leader, Duration::from_secs(30)).await;

    info!("--- a client commits continuously through HAProxy; kill -9 of the leader node");
    let hp = c.haproxy.as_ref().unwrap().primary_port;
    let w = Writer::start(hp, Duration::from_millis(2)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = w.acks().len();
    info!(acked = before, "commits in 2 s before the kill");
    assert!(
        before >= 200,
        "at least 100 commits a second: {before} in 2 s"
    );
    // The key must be the same at the kill as when the test decided whom it expects.
    assert_eq!(
        sync_key(&c).await.unwrap(),
        (leader.clone(), vec![sync.clone()])
    );
    let mut c = c;
    c.node_mut(&leader).kill_node().await;
    let new = c
        .wait_for_leader_other_than(&leader, Duration::from_secs(60))
        .await;
    assert_eq!(new, sync, "the new leader is the member the sync key named");
    w.wait_for_ack_from(c.node(&new).pg_port, Duration::from_secs(30))
        .await;
    let (acks, failures) = w.stop().await;
    let missing = missing_on(&c, &new, &acks).await;
    info!(
        acknowledged = acks.len(),
        failed_attempts = failures,
        missing = missing.len(),
        "acknowledged commits after the failover"
    );
    assert!(
        missing.is_empty(),
        "{} acknowledged commits missing on {new}: {missing:?}",
        missing.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_config_switches_synchronous_mode_on_and_off() {
    init_tracing();
    let c = TestCluster::start("sync_edit_config", Opts::default()).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    assert_eq!(standby_names(&c, &leader).await.unwrap(), "");
    assert!(c.etcd_get("sync").await.is_none());
    let cfg = c.node("node1").config_path();

    info!("--- synchronous_mode=true");
    hactl(
        &cfg,
        &["edit-config", "-s", "synchronous_mode=true", "--force"],
    )
    .await
    .ok();
    let t0 = Instant::now();
    let sync = wait_sync_standby(&c, &leader, Duration::from_secs(20)).await;
    info!(took_ms = t0.elapsed().as_millis() as u64, sync = %sync, "key written (loop_wait 2 s)");
    assert_eq!(
        standby_names(&c, &leader).await.unwrap(),
        format!("FIRST 1 (\"{sync}\")")
    );
    let row = c
        .node(&leader)
        .client()
        .await
        .unwrap()
        .query_one(
            "select sync_state from pg_stat_replication where application_name = $1",
            &[&sync],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "sync");

    info!("--- visible: /sync, /async, /read-only-sync, /patroni, /cluster, hactl list, metrics");
    let other = c.others(&[&leader, &sync]).pop().unwrap();
    wait_for(
        "/sync and /async answer per the key",
        Duration::from_secs(10),
        || async {
            let s = c.node(&sync).api_get("/sync").await?.0;
            let a = c.node(&sync).api_get("/async").await?.0;
            let so = c.node(&other).api_get("/synchronous").await?.0;
            let ao = c.node(&other).api_get("/asynchronous").await?.0;
            let sl = c.node(&leader).api_get("/sync").await?.0;
            let ro = (
                c.node(&sync).api_get("/read-only-sync").await?.0,
                c.node(&other).api_get("/read-only-sync").await?.0,
                c.node(&leader).api_get("/read-only-synchronous").await?.0,
                c.node(&sync).api_get("/quorum").await?.0,
            );
            ((s, a, so, ao, sl) == (200, 503, 503, 200, 503) && ro == (200, 503, 200, 503))
                .then_some(())
        },
    )
    .await;
    let (_, p) = c.node(&sync).api_get("/patroni").await.unwrap();
    assert_eq!(p["sync_standby"], true, "{p}");
    let (_, cl) = c.node(&leader).api_get("/cluster").await.unwrap();
    let role_of = |n: &str| {
        cl["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .map(|m| m["role"].clone())
    };
    assert_eq!(role_of(&sync), Some(Value::from("sync_standby")), "{cl}");
    assert_eq!(role_of(&other), Some(Value::from("replica")), "{cl}");
    let out = hactl(&cfg, &["list"]).await.ok();
    let line = out.stdout.lines().find(|l| l.contains(&sync)).unwrap();
    assert!(line.contains("Sync Standby"), "{out}");
    let metrics = http()
        .get(format!("{}/metrics", c.node(&sync).api_base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("patroni_sync_standby{") && l.ends_with(" 1")),
        "{metrics}"
    );

    info!("--- an invalid value is refused by name, nothing written");
    let before = c.etcd_get("config").await.unwrap();
    let out = hactl(
        &cfg,
        &["edit-config", "-s", "synchronous_node_count=0", "--force"],
    )
    .await;
    assert_ne!(out.code, 0, "{out}");
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("synchronous_node_count"),
        "{out}"
    );
    assert_eq!(c.etcd_get("config").await.unwrap(), before);
    c.assert_config_patches_refused(
        &leader,
        &[
            (
                serde_json::json!({"synchronous_mode": "maybe"}),
                "synchronous_mode",
            ),
            (
                serde_json::json!({"synchronous_node_count": "x"}),
                "synchronous_node_count",
            ),
            (
                serde_json::json!({"maximum_lag_on_syncnode": "far"}),
                "maximum_lag_on_syncnode",
            ),
        ],
    )
    .await;

    info!("--- synchronous_mode=false undoes both");
    hactl(
        &cfg,
        &["edit-config", "-s", "synchronous_mode=false", "--force"],
    )
    .await
    .ok();
    let t1 = Instant::now();
    wait_for(
        "no sync key and synchronous_standby_names empty",
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
}

/// The leader's `/patroni`, `/cluster` health and `hactl list` say the cluster runs short of
/// synchronous standbys, and how (in quorum mode once the killed voter's member record has
/// expired: until then it still says it streams).
async fn shortfall_shown(c: &TestCluster, leader: &str, how: &str, quorum: bool) {
    let (want, footer) = if quorum {
        (
            format!("quorum mode: 0 of 1 quorum standby(s) confirm each commit; {how}"),
            "Quorum mode: 0 of 1",
        )
    } else {
        (
            format!("synchronous mode: 0 of 1 synchronous standby(s); {how}"),
            "Synchronous mode: 0 of 1",
        )
    };
    wait_for("the shortfall shown", Duration::from_secs(20), || async {
        let (_, p) = c.node(leader).api_get("/patroni").await?;
        (p["synchronous_shortfall"] == want.as_str()).then_some(())
    })
    .await;
    let (_, cl) = c.node(leader).api_get("/cluster").await.unwrap();
    assert_eq!(cl["health"]["status"], "degraded", "{cl}");
    assert!(
        cl["health"]["reason"].as_str().unwrap().contains(&want),
        "{cl}"
    );
    let out = hactl(&c.node(leader).config_path(), &["list"]).await.ok();
    assert!(out.stdout.contains(footer), "{out}");
}

/// Two members, a client writing straight to the leader; the sync standby is killed
/// (synchronous mode on, or quorum: there the key keeps naming the voter under strict mode,
/// and PostgreSQL keeps waiting for it).
async fn standby_killed(test: &str, strict: bool, quorum: bool) {
    init_tracing();
    let mut settings = sync_settings(strict);
    if quorum {
        settings.extra_dcs = settings
            .extra_dcs
            .replace("synchronous_mode: true", "synchronous_mode: quorum");
    }
    let opts = Opts {
        nodes: 2,
        settings,
        ..Opts::default()
    };
    let mut c = TestCluster::start(test, opts).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    let sync = wait_sync_standby(&c, &leader, Duration::from_secs(30)).await;
    let w = Writer::start(c.node(&leader).pg_port, Duration::from_millis(5)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    info!("--- kill -9 of the sync standby {sync}");
    c.node_mut(&sync).kill_node().await;
    let killed_at = Instant::now();
    // Commits in flight at the kill may still be acknowledged a moment later.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let late: Vec<Ack> = w
        .acks()
        .into_iter()
        .filter(|a| a.sent > killed_at + Duration::from_secs(1))
        .collect();
    if strict {
        assert!(
            late.is_empty(),
            "strict: no commit may be acknowledged without a synchronous standby ({} were)",
            late.len()
        );
        if quorum {
            assert_eq!(
                sync_key(&c).await.unwrap(),
                (leader.clone(), vec![sync.clone()]),
                "strict quorum: the key keeps the voter"
            );
            assert_eq!(
                standby_names(&c, &leader).await.unwrap(),
                format!("ANY 1 (\"{sync}\")")
            );
        } else {
            assert_eq!(
                sync_key(&c).await.unwrap(),
                (leader.clone(), vec![]),
                "strict: the key names no standby"
            );
            assert_eq!(standby_names(&c, &leader).await.unwrap(), "*");
        }
        shortfall_shown(
            &c,
            &leader,
            "commits wait until a standby confirms them (strict)",
            quorum,
        )
        .await;
        info!("--- the standby comes back: commits complete");
        let settings = c.settings.clone();
        c.node_mut(&sync).start(&settings);
        let back = Instant::now();
        wait_for(
            "commits acknowledged again",
            Duration::from_secs(60),
            || async { w.acks().iter().any(|a| a.acked > back).then_some(()) },
        )
        .await;
        info!(
            took_ms = back.elapsed().as_millis() as u64,
            "commits resumed"
        );
        wait_sync_standby(&c, &leader, Duration::from_secs(30)).await;
    } else {
        assert!(
            late.len() > 100,
            "without strict, commits continue (fallback): {} acknowledged",
            late.len()
        );
        assert_eq!(
            sync_key(&c).await.unwrap(),
            (leader.clone(), vec![]),
            "the key names no standby after the fallback"
        );
        assert_eq!(standby_names(&c, &leader).await.unwrap(), "");
        shortfall_shown(&c, &leader, "replication fell back to asynchronous", quorum).await;
    }
    let (acks, _) = w.stop().await;
    let missing = missing_on(&c, &leader, &acks).await;
    assert!(missing.is_empty(), "missing: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_standby_killed_without_strict_commits_continue() {
    standby_killed("sync_standby_killed", false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_standby_killed_with_strict_commits_wait_until_it_is_back() {
    standby_killed("sync_standby_killed_strict", true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_standby_killed_without_strict_commits_continue() {
    standby_killed("quorum_standby_killed", false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_standby_killed_with_strict_commits_wait_until_it_is_back() {
    standby_killed("quorum_standby_killed_strict", true, true).await;
}
