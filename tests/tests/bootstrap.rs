//! Three empty nodes become one leader and two streaming replicas; etcd holds Patroni's keys.
//! A bad config exits 1 naming the key, before anything is created.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::procs::{RunAs, init_tracing, user_tempdir, wait_for, workspace_bin};
use tracing::info;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_empty_nodes_become_one_leader_and_two_streaming_replicas() {
    init_tracing();
    let c = TestCluster::start("bootstrap", Opts::default()).await;

    info!("--- exactly one leader, two replicas streaming from it");
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    let replicas = c.others(&[&leader]);
    let mut writable = Vec::new();
    for n in &c.nodes {
        if c.is_writable(&n.name).await {
            writable.push(n.name.clone());
        }
    }
    assert_eq!(
        writable,
        vec![leader.clone()],
        "exactly the leader accepts writes"
    );

    info!("--- a row written on the leader is readable on both replicas");
    let l = c.node(&leader).client().await.unwrap();
    l.batch_execute(
        "create table t (id int primary key, v text); insert into t values (1, 'hello')",
    )
    .await
    .unwrap();
    for r in &replicas {
        wait_for(&format!("row on {r}"), Duration::from_secs(30), || async {
            let cl = c.node(r).client().await.ok()?;
            let row = cl
                .query_opt("select v from t where id = 1", &[])
                .await
                .ok()??;
            (row.get::<_, String>(0) == "hello").then_some(())
        })
        .await;
    }

    info!("--- etcd holds Patroni's keys with valid JSON");
    let sysid: i64 = l
        .query_one("select system_identifier from pg_control_system()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        c.etcd_get("initialize").await.as_deref(),
        Some(sysid.to_string().as_str())
    );
    assert_eq!(c.etcd_get("leader").await.as_deref(), Some(leader.as_str()));
    let config: serde_json::Value =
        serde_json::from_str(&c.etcd_get("config").await.expect("config key"))
            .expect("config is JSON");
    assert_eq!(config["ttl"], 10);
    assert_eq!(config["loop_wait"], 2);
    assert_eq!(config["postgresql"]["use_slots"], true);
    // Member records settle within a loop or two.
    wait_for(
        "member records of a leader and two streaming replicas",
        Duration::from_secs(20),
        || async {
            let mut primaries = 0;
            let mut streaming = 0;
            for n in &c.nodes {
                let raw = c.etcd_get(&format!("members/{}", n.name)).await?;
                let m: serde_json::Value =
                    serde_json::from_str(&raw).expect("member record is JSON");
                assert_eq!(
                    m["conn_url"],
                    format!("postgres://127.0.0.1:{}/postgres", n.pg_port)
                );
                assert_eq!(
                    m["api_url"],
                    format!("http://127.0.0.1:{}/patroni", n.api_port)
                );
                assert!(m["xlog_location"].is_u64(), "{m}");
                assert_eq!(m["timeline"], 1);
                match (
                    m["role"].as_str(),
                    m["state"].as_str(),
                    m["replication_state"].as_str(),
                ) {
                    (Some("primary"), Some("running"), None) => primaries += 1,
                    (Some("replica"), Some("running"), Some("streaming")) => streaming += 1,
                    _ => return None,
                }
            }
            (primaries == 1 && streaming == 2).then_some(())
        },
    )
    .await;
    let status: serde_json::Value =
        serde_json::from_str(&c.etcd_get("status").await.expect("status key"))
            .expect("status is JSON");
    assert!(status["optime"].as_u64().unwrap() > 0, "{status}");

    info!("--- the leader keeps a replication slot per replica, and they use them");
    let slots: Vec<(String, bool)> = l
        .query(
            "select slot_name, active from pg_replication_slots order by 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want: Vec<(String, bool)> = replicas.iter().map(|r| (r.clone(), true)).collect();
    assert_eq!(slots, want);
}

/// Runs `ha-agent <config>` as the unprivileged user; returns exit code and stderr.
async fn run_agent(config: &std::path::Path, run_as: &RunAs) -> (Option<i32>, String) {
    let mut cmd = tokio::process::Command::new(workspace_bin("ha-agent"));
    cmd.arg(config);
    run_as.apply(&mut cmd);
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .expect("a bad config must exit at once")
        .expect("run ha-agent");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_exits_1_naming_the_key_and_creates_nothing() {
    init_tracing();
    let run_as = RunAs::unprivileged();
    let dir = user_tempdir(&run_as, "hapg-badcfg-");
    let data_dir = dir.path().join("data");
    let good = |data: &str| {
        format!(
            "scope: demo\nname: node1\nrestapi:\n  listen: 127.0.0.1:8808\netcd3:\n  hosts: 127.0.0.1:2\n\
             bootstrap:\n  dcs:\n    ttl: 30\n    loop_wait: 10\n    retry_timeout: 10\n\
             postgresql:\n  listen: 127.0.0.1:5999\n  data_dir: {data}\n  authentication:\n    \
             replication:\n      username: replicator\n      password: x\n"
        )
    };
    let cases = [
        (
            "missing scope",
            good(&data_dir.display().to_string()).replace("scope: demo\n", ""),
            "scope",
        ),
        (
            "ttl too small for loop_wait and retry_timeout",
            good(&data_dir.display().to_string()).replace("ttl: 30", "ttl: 20"),
            "bootstrap.dcs.ttl",
        ),
        (
            "data directory parent does not exist",
            good(&dir.path().join("no/such/parent/data").display().to_string()),
            "postgresql.data_dir",
        ),
    ];
    for (what, yaml, key) in cases {
        info!("--- {what}");
        let path = dir.path().join("bad.yml");
        std::fs::write(&path, yaml).unwrap();
        run_as.chown(&path);
        let (code, stderr) = run_agent(&path, &run_as).await;
        assert_eq!(code, Some(1), "{what}: exit code; stderr: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{what}: one line: {stderr}"
        );
        assert!(stderr.contains(key), "{what}: names {key}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{what}: names the file: {stderr}"
        );
        let entries: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            entries,
            vec![std::ffi::OsString::from("bad.yml")],
            "{what}: nothing created"
        );
    }
}
