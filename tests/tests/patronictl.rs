//! The real `patronictl` (Patroni 4.1.5 from PyPI, in a venv cached under target/) pointed at
//! an hapg cluster with the agent's own YAML as its config: it lists the cluster exactly as
//! `hactl list` does, switches it over, pauses and resumes it, and lists quorum standbys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::ctl::{hactl, patronictl, patronictl_bin, records_settled};
use ha_tests::procs::{init_tracing, wait_for};
use serde_json::Value;
use tracing::info;

/// `hactl list -f json` shows `leader` leading streaming replicas.
async fn listed(c: &TestCluster, leader: &str) -> bool {
    if !records_settled(c, leader).await {
        return false;
    }
    let out = hactl(&c.node("node1").config_path(), &["list", "-f", "json"]).await;
    let Ok(rows) = serde_json::from_str::<Vec<Value>>(&out.stdout) else {
        return false;
    };
    rows.len() == 3
        && rows.iter().all(|r| {
            if r["Member"] == leader {
                r["Role"] == "Leader" && r["State"] == "running"
            } else {
                r["Role"] == "Replica" && r["State"] == "streaming"
            }
        })
}

/// Runs `args` through both CLIs until they print the same text (WAL positions can move
/// between two reads) and returns it.
async fn same_output(c: &TestCluster, args: &[&str]) -> String {
    let cfg = c.node("node1").config_path();
    let mut last = String::new();
    for _ in 0..10 {
        let p = patronictl(&cfg, args, None).await.ok();
        let h = hactl(&cfg, args).await.ok();
        if p.stdout == h.stdout {
            return h.stdout;
        }
        last = format!("patronictl:\n{}\nhactl:\n{}", p.stdout, h.stdout);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("patronictl and hactl differ for {args:?}:\n{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patronictl_lists_switches_over_and_pauses_an_hapg_cluster() {
    init_tracing();
    info!("--- patronictl from PyPI (cached venv)");
    let bin = tokio::task::spawn_blocking(patronictl_bin).await.unwrap();
    info!(bin = %bin.display(), "patronictl ready");

    let c = TestCluster::start("patronictl", Opts::default()).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    let replicas = c.others(&[&leader]);
    wait_for(
        "member records streaming",
        Duration::from_secs(60),
        || async { listed(&c, &leader).await.then_some(()) },
    )
    .await;
    let cfg = c.node("node1").config_path();

    info!("--- patronictl list: one leader, two streaming replicas, as hactl shows them");
    let text = same_output(&c, &["list"]).await;
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| l.starts_with("| node"))
        .map(|l| l.split('|').map(|s| s.trim().to_string()).collect())
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    for r in &rows {
        if r[1] == leader {
            assert_eq!(
                (r[3].as_str(), r[4].as_str(), r[5].as_str()),
                ("Leader", "running", "1"),
                "{text}"
            );
        } else {
            assert_eq!(
                (r[3].as_str(), r[4].as_str(), r[7].as_str()),
                ("Replica", "streaming", "0"),
                "{text}"
            );
        }
    }
    for args in [
        &["list", "-f", "json"][..],
        &["list", "-e"],
        &["list", "-f", "yaml"],
        &["list", "-f", "tsv"],
        &["topology"],
        &["show-config"],
        &["history"],
        &["dsn"],
    ] {
        same_output(&c, args).await;
    }

    info!(
        "--- patronictl switchover --candidate {} --force",
        replicas[0]
    );
    let new = replicas[0].clone();
    let t0 = Instant::now();
    let out = patronictl(&cfg, &["switchover", "--candidate", &new, "--force"], None)
        .await
        .ok();
    info!(
        took_ms = t0.elapsed().as_millis() as u64,
        "patronictl switchover returned"
    );
    assert!(
        out.stdout
            .contains(&format!("Successfully switched over to \"{new}\"")),
        "{out}"
    );
    assert_eq!(c.etcd_get("leader").await.as_deref(), Some(new.as_str()));
    assert!(c.is_writable(&new).await);
    c.wait_streaming(&new, &[&leader, &replicas[1]], Duration::from_secs(90))
        .await;
    wait_for(
        "member records after the switchover",
        Duration::from_secs(60),
        || async { listed(&c, &new).await.then_some(()) },
    )
    .await;
    same_output(&c, &["history"]).await;

    info!("--- patronictl pause --wait");
    let t0 = Instant::now();
    let out = patronictl(&cfg, &["pause", "--wait"], None).await.ok();
    info!(
        took_ms = t0.elapsed().as_millis() as u64,
        stdout = %out.stdout.trim(),
        "patronictl pause --wait returned"
    );
    assert!(
        out.stdout
            .contains("'pause' request sent, waiting until it is recognized by all nodes"),
        "{out}"
    );
    // patronictl waits for `"pause": true` in every member record in etcd, which the agents
    // publish in the cycle the config change wakes.
    assert!(
        out.stdout.contains("Success: cluster management is paused"),
        "{out}"
    );
    for n in &c.nodes {
        let (_, p) = n.api_get("/patroni").await.unwrap();
        assert_eq!(p["pause"], true, "{}: {p}", n.name);
    }
    let text = same_output(&c, &["list"]).await;
    assert!(text.lines().any(|l| l == " Maintenance mode: on"), "{text}");

    info!("--- patronictl resume --wait");
    let out = patronictl(&cfg, &["resume", "--wait"], None).await.ok();
    assert!(
        out.stdout
            .contains("Success: cluster management is resumed"),
        "{out}"
    );
    for n in &c.nodes {
        let (_, p) = n.api_get("/patroni").await.unwrap();
        assert!(p.get("pause").is_none(), "{}: {p}", n.name);
    }
    let text = same_output(&c, &["list"]).await;
    assert!(!text.contains("Maintenance mode"), "{text}");

    info!("--- synchronous_mode: quorum: patronictl lists both replicas as Quorum Standby");
    let out = patronictl(
        &cfg,
        &["edit-config", "-s", "synchronous_mode=quorum", "--force"],
        None,
    )
    .await
    .ok();
    info!(stdout = %out.stdout.trim(), "patronictl edit-config returned");
    wait_for(
        "a quorum key naming both replicas",
        Duration::from_secs(30),
        || async {
            let v: Value = serde_json::from_str(&c.etcd_get("sync").await?).ok()?;
            (v["quorum"] == 1 && v["sync_standby"].as_str()?.split(',').count() == 2).then_some(())
        },
    )
    .await;
    let text = same_output(&c, &["list"]).await;
    let roles: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| node"))
        .map(|l| l.split('|').nth(3).unwrap_or_default().trim())
        .collect();
    let mut sorted = roles.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["Leader", "Quorum Standby", "Quorum Standby"],
        "{text}"
    );
}
