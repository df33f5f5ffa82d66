//! `hactl`, the real binary, against real clusters: listing, switchover, maintenance mode,
//! configuration changes, restart/reinit/failover, and the etcd fallback when no REST API
//! answers (against etcd alone, with the test playing the agents).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::ctl::{CliOutput, hactl, hactl_bin, hactl_env, records_settled, run};
use ha_tests::etcd::EtcdProc;
use ha_tests::procs::{free_port, init_tracing, log_dir, scaled, wait_for};
use serde_json::Value;
use tracing::info;

/// A cluster with a writable leader and both replicas streaming from it.
async fn healthy(test: &str) -> (TestCluster, String, Vec<String>) {
    healthy_with(test, Opts::default()).await
}

async fn healthy_with(test: &str, opts: Opts) -> (TestCluster, String, Vec<String>) {
    let c = TestCluster::start(test, opts).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    let replicas = c.others(&[&leader]);
    // pg_basebackup's WAL stream also shows as `streaming` in pg_stat_replication: wait for
    // the member records (what hactl and the agents' checks read) too.
    wait_listed(&c, &leader).await;
    (c, leader, replicas)
}

fn cfg(c: &TestCluster) -> PathBuf {
    c.node("node1").config_path()
}

/// `hactl list -f json` parsed.
async fn list_json(c: &TestCluster) -> Vec<Value> {
    let out = hactl(&cfg(c), &["list", "-f", "json"]).await.ok();
    serde_json::from_str::<Vec<Value>>(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Waits until `hactl list` shows `leader` as Leader and every other member as a streaming
/// Replica (member records follow PostgreSQL by one agent cycle).
async fn wait_listed(c: &TestCluster, leader: &str) -> Vec<Value> {
    wait_for(
        &format!("hactl list to show {leader} leading two streaming replicas"),
        Duration::from_secs(60),
        || async {
            if !records_settled(c, leader).await {
                return None;
            }
            let rows = list_json(c).await;
            let ok = rows.len() == 3
                && rows.iter().all(|r| {
                    if r["Member"] == leader {
                        r["Role"] == "Leader" && r["State"] == "running"
                    } else {
                        r["Role"] == "Replica" && r["State"] == "streaming"
                    }
                });
            ok.then_some(rows)
        },
    )
    .await
}

fn one_line_error(out: &CliOutput) -> &str {
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr: {out}");
    assert!(lines[0].starts_with("hactl: "), "{out}");
    lines[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_one_leader_and_two_streaming_replicas_with_timeline_and_lag() {
    init_tracing();
    let (c, leader, replicas) = healthy("hactl_list").await;
    let rows = wait_listed(&c, &leader).await;

    info!("--- JSON keys are patronictl's, in its order");
    let out = hactl(&cfg(&c), &["list", "-f", "json"]).await.ok();
    assert!(out.stdout.starts_with("[{\"Cluster\": \""), "{out}");
    for r in &rows {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec!["Cluster", "Member", "Host", "Role", "State", "TL"];
        if r["Member"] != leader.as_str() {
            want.extend(["Receive LSN", "Receive Lag", "Replay LSN", "Replay Lag"]);
            assert_eq!(r["Receive Lag"], 0, "{r}");
            assert_eq!(r["Replay Lag"], 0, "{r}");
            assert!(r["Receive LSN"].as_str().unwrap().contains('/'), "{r}");
        }
        let mut sorted_want = want.clone();
        sorted_want.sort_unstable();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        assert_eq!(sorted_keys, sorted_want, "{r}");
        assert_eq!(r["TL"], 1, "{r}");
        assert_eq!(r["Cluster"], c.settings.scope.as_str());
    }
    let pos = |k: &str| out.stdout.find(&format!("\"{k}\"")).unwrap();
    assert!(
        pos("Cluster") < pos("Member") && pos("Member") < pos("Host") && pos("State") < pos("TL")
    );

    info!("--- the table: title with the system identifier, one row per member");
    let sysid = c.etcd_get("initialize").await.unwrap();
    let t0 = Instant::now();
    let out = hactl(&cfg(&c), &["list"]).await.ok();
    info!(
        took_ms = t0.elapsed().as_millis() as u64,
        "hactl list (debug build, under test load)"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("+ Cluster: {} ({sysid}) -", c.settings.scope)),
        "{out}"
    );
    let header: Vec<&str> = lines[1].split('|').map(str::trim).collect();
    assert_eq!(
        header,
        [
            "",
            "Member",
            "Host",
            "Role",
            "State",
            "TL",
            "Receive LSN",
            "Lag",
            "Replay LSN",
            "Lag",
            ""
        ]
    );
    let cells = |name: &str| -> Vec<String> {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("| {name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {out}"));
        line.split('|').map(|s| s.trim().to_string()).collect()
    };
    let l = cells(&leader);
    assert_eq!(
        (l[3].as_str(), l[4].as_str(), l[5].as_str()),
        ("Leader", "running", "1")
    );
    assert_eq!(l[2], format!("127.0.0.1:{}", c.node(&leader).pg_port));
    for r in &replicas {
        let row = cells(r);
        assert_eq!(
            (row[3].as_str(), row[4].as_str()),
            ("Replica", "streaming"),
            "{out}"
        );
        assert_eq!(
            (row[5].as_str(), row[7].as_str(), row[9].as_str()),
            ("1", "0", "0"),
            "{out}"
        );
    }
    assert_eq!(lines.len(), 7, "{out}");

    info!("--- query runs SQL on the leader (or a member / role), in patronictl's spellings");
    let pw = [("PGPASSWORD", "su-pass")];
    let out = hactl_env(
        &cfg(&c),
        &[
            "query",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            "select 1 as one, null as nothing, pg_is_in_recovery() as r",
        ],
        &pw,
    )
    .await
    .ok();
    assert_eq!(out.stdout, "one\tnothing\tr\n1\tNone\tf\n", "{out}");
    let out = hactl_env(
        &cfg(&c),
        &[
            "query",
            "--username",
            "postgres",
            "-m",
            &replicas[0],
            "--format",
            "json",
            "-c",
            "select pg_is_in_recovery() as r",
        ],
        &pw,
    )
    .await
    .ok();
    assert_eq!(out.stdout.trim(), r#"[{"r": "t"}]"#, "{out}");
    let out = hactl_env(
        &cfg(&c),
        &[
            "query",
            "-U",
            "postgres",
            "-r",
            "replica",
            "--delimiter",
            ",",
            "-c",
            "select 1 as a, 2 as b",
        ],
        &pw,
    )
    .await
    .ok();
    assert_eq!(out.stdout, "a,b\n1,2\n", "{out}");
    let out = hactl_env(
        &cfg(&c),
        &[
            "query",
            "-U",
            "postgres",
            "-c",
            "select * from no_such_table",
        ],
        &pw,
    )
    .await
    .ok();
    assert!(
        out.stdout.trim_end().ends_with("\tERROR, SQLSTATE: 42P01"),
        "patronictl prints the error as a row: {out}"
    );
    let out = hactl_env(&cfg(&c), &["query", "-U", "postgres"], &pw).await;
    assert_eq!(out.code, 2, "no SQL given: {out}");

    info!("--- topology puts the leader first and indents the replicas");
    let out = hactl(&cfg(&c), &["topology"]).await.ok();
    let names: Vec<String> = out
        .stdout
        .lines()
        .skip(3)
        .filter(|l| l.starts_with("| "))
        .map(|l| l.split('|').nth(1).unwrap().trim().to_string())
        .collect();
    assert_eq!(names[0], leader);
    assert_eq!(
        names[1..].to_vec(),
        replicas
            .iter()
            .map(|r| format!("+ {r}"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_makes_the_candidate_leader_and_history_shows_the_new_timeline() {
    init_tracing();
    let (c, old, replicas) = healthy("hactl_switchover").await;
    let new = replicas[0].clone();
    let other = replicas[1].clone();

    info!("--- without --force and without a terminal, hactl refuses");
    let out = hactl(&cfg(&c), &["switchover", "--candidate", &new]).await;
    assert_eq!(out.code, 2, "{out}");
    assert!(one_line_error(&out).contains("--force"), "{out}");
    assert_eq!(c.etcd_get("leader").await.as_deref(), Some(old.as_str()));

    info!("--- switchover --candidate {new} --force");
    let out = hactl(&cfg(&c), &["switchover", "--candidate", &new, "--force"])
        .await
        .ok();
    assert!(
        out.stdout
            .contains(&format!("{new} is the leader now (switchover took ")),
        "{out}"
    );
    assert_eq!(c.etcd_get("leader").await.as_deref(), Some(new.as_str()));
    assert!(c.is_writable(&new).await, "{new} accepts writes");

    info!("--- the old leader streams from the new one");
    c.wait_streaming(&new, &[&old, &other], Duration::from_secs(90))
        .await;
    assert!(!c.is_writable(&old).await);
    wait_listed(&c, &new).await;

    info!("--- history has timeline 1 ending with {new} promoted");
    let out = hactl(&cfg(&c), &["history", "-f", "json"]).await.ok();
    let h: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(h.len(), 1, "{out}");
    assert_eq!(h[0]["TL"], 1);
    assert!(h[0]["LSN"].as_u64().unwrap() > 0);
    assert_eq!(h[0]["New Leader"], new.as_str());
    let out = hactl(&cfg(&c), &["history"]).await.ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("|  1 |") && l.contains(&new)),
        "{out}"
    );
    // Member records are published once per loop: a replica that followed the new leader may
    // list the old timeline for one more loop.
    wait_for(
        "hactl list to show every member on timeline 2",
        Duration::from_secs(30),
        || async {
            let rows = list_json(&c).await;
            (rows.len() == 3 && rows.iter().all(|r| r["TL"] == 2)).then_some(())
        },
    )
    .await;

    info!("--- asking for the current leader as candidate is a usage error");
    let out = hactl(&cfg(&c), &["switchover", "--candidate", &new, "--force"]).await;
    assert_eq!(out.code, 2, "{out}");
    assert!(one_line_error(&out).contains("already the leader"), "{out}");
    let out = hactl(&cfg(&c), &["switchover", "--candidate", "node9", "--force"]).await;
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(
        one_line_error(&out),
        format!(
            "hactl: no member named node9 in cluster {} (members: node1, node2, node3)",
            c.settings.scope
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_cluster_neither_fails_over_nor_restarts_postgres_and_heals_on_resume() {
    init_tracing();
    let (c, leader, replicas) = healthy("hactl_pause").await;

    info!("--- pause --wait");
    let out = hactl(&cfg(&c), &["pause", "--wait"]).await.ok();
    assert!(
        out.stdout.contains("Success: cluster management is paused"),
        "{out}"
    );
    for n in &c.nodes {
        let (_, p) = n.api_get("/patroni").await.unwrap();
        assert_eq!(p["pause"], true, "{} /patroni: {p}", n.name);
    }
    let out = hactl(&cfg(&c), &["list"]).await.ok();
    assert!(
        out.stdout.lines().any(|l| l == " Maintenance mode: on"),
        "{out}"
    );
    let out = hactl(&cfg(&c), &["pause"]).await;
    assert_eq!(out.code, 1, "pausing twice fails: {out}");

    info!("--- kill -9 of the leader's postmaster");
    let pm = c
        .node(&leader)
        .kill_postmaster()
        .expect("leader postmaster");
    let window = scaled(Duration::from_secs(2 * c.settings.ttl + 5));
    let t0 = Instant::now();
    while t0.elapsed() < window {
        assert_eq!(
            c.etcd_get("leader").await.as_deref(),
            Some(leader.as_str()),
            "the leader key stays with {leader} while paused"
        );
        for r in &replicas {
            assert!(
                !c.is_writable(r).await,
                "{r} must not be promoted while paused"
            );
        }
        if let Some(p) = c.node(&leader).postmaster_pid() {
            panic!("the agent started PostgreSQL again (pid {p}, killed {pm}) while paused");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    info!(
        observed_s = t0.elapsed().as_secs(),
        "no failover and no restart while paused"
    );
    // Patroni 4 answers /patroni with 200 and the state in the body when PostgreSQL is down:
    // monitoring reads it exactly then.
    let (st, p) = c.node(&leader).api_get("/patroni").await.unwrap();
    assert_eq!(st, 200, "/patroni with PostgreSQL down: {p}");
    assert_ne!(p["state"], "running", "{p}");
    assert_eq!(p["pause"], true, "{p}");

    info!("--- resume --wait: the cluster heals");
    let out = hactl(&cfg(&c), &["resume", "--wait"]).await.ok();
    assert!(
        out.stdout
            .contains("Success: cluster management is resumed"),
        "{out}"
    );
    let now_leader = c.wait_for_leader(Duration::from_secs(60)).await;
    let others = c.others(&[&now_leader]);
    let os: Vec<&str> = others.iter().map(String::as_str).collect();
    c.wait_streaming(&now_leader, &os, Duration::from_secs(90))
        .await;
    wait_listed(&c, &now_leader).await;
    let out = hactl(&cfg(&c), &["list"]).await.ok();
    assert!(!out.stdout.contains("Maintenance mode"), "{out}");
}

/// Timestamps (ms) of the agent's "ha cycle" lines after `after_ms`.
fn cycle_times(log: &std::path::Path, after_ms: u64) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" ha cycle "))
        .filter_map(|l| {
            let ts = l.split_whitespace().next()?;
            ha_agent::dcs::records::parse_iso8601_ms(ts).ok()
        })
        .filter(|t| *t > after_ms)
        .collect()
}

fn median_gap(times: &[u64]) -> Option<u64> {
    let mut gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied()
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_config_changes_the_loop_timing_and_refuses_an_unsafe_ttl() {
    init_tracing();
    // ttl 12: loop_wait 5 + 2 * retry_timeout 3 fits; ttl 5 will not.
    let mut opts = Opts::default();
    opts.settings.ttl = 12;
    let (c, _leader, _) = healthy_with("hactl_edit_config", opts).await;
    let before_ms = wall_ms();
    wait_for(
        "a few cycles at loop_wait 2",
        Duration::from_secs(30),
        || async {
            let t = cycle_times(c.node("node2").log_path(), before_ms);
            (t.len() >= 4).then_some(())
        },
    )
    .await;
    let gap = median_gap(&cycle_times(c.node("node2").log_path(), before_ms)).unwrap();
    assert!(
        (1500..=2600).contains(&gap),
        "cycles every {gap} ms at loop_wait 2"
    );

    info!("--- edit-config -s loop_wait=5 --force");
    let out = hactl(&cfg(&c), &["edit-config", "-s", "loop_wait=5", "--force"])
        .await
        .ok();
    assert!(
        out.stdout.contains("-loop_wait: 2\n+loop_wait: 5"),
        "diff shown: {out}"
    );
    assert!(out.stdout.contains("Configuration changed"), "{out}");
    let changed_ms = wall_ms();
    for n in &c.nodes {
        wait_for(
            &format!("{} GET /config with loop_wait 5", n.name),
            Duration::from_secs(20),
            || async {
                let (_, cfg) = n.api_get("/config").await?;
                (cfg["loop_wait"] == 5).then_some(())
            },
        )
        .await;
    }
    let config: Value = serde_json::from_str(&c.etcd_get("config").await.unwrap()).unwrap();
    assert_eq!(config["loop_wait"], 5, "an integer, not a string: {config}");

    info!("--- every agent now cycles every 5 s");
    let from = changed_ms + 6000;
    for n in &c.nodes {
        wait_for(
            &format!("{} cycling at the new pace", n.name),
            Duration::from_secs(60),
            || async {
                let t = cycle_times(n.log_path(), from);
                (t.len() >= 4).then_some(())
            },
        )
        .await;
        let gap = median_gap(&cycle_times(n.log_path(), from)).unwrap();
        info!(member = %n.name, gap_ms = gap, "median gap between ha cycles");
        assert!(
            (4500..=5600).contains(&gap),
            "{} cycles every {gap} ms at loop_wait 5",
            n.name
        );
    }

    info!("--- -s ttl=5 breaks loop_wait + 2 * retry_timeout <= ttl: refused, nothing written");
    let raw_before = c.etcd_get("config").await.unwrap();
    let out = hactl(&cfg(&c), &["edit-config", "-s", "ttl=5", "--force"]).await;
    assert_eq!(out.code, 1, "{out}");
    let line = one_line_error(&out);
    assert!(
        line.contains("ttl") && line.contains("loop_wait") && line.contains("retry_timeout"),
        "{line}"
    );
    assert_eq!(
        c.etcd_get("config").await.unwrap(),
        raw_before,
        "config unchanged"
    );

    info!("--- -p sets a PostgreSQL parameter; show-config prints it");
    hactl(
        &cfg(&c),
        &["edit-config", "-p", "max_connections=45", "-q", "--force"],
    )
    .await
    .ok();
    let out = hactl(&cfg(&c), &["show-config"]).await.ok();
    assert!(
        out.stdout.contains("  parameters:\n") && out.stdout.contains("    max_connections: 45\n"),
        "{out}"
    );
    assert!(
        out.stdout.contains("\nloop_wait: 5\n") || out.stdout.starts_with("loop_wait: 5\n"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reinit_and_failover_each_work_on_a_real_cluster() {
    init_tracing();
    // With restapi.authentication: hactl takes the credentials from the agent's YAML.
    let mut opts = Opts::default();
    opts.settings.api_auth = Some(("admin".into(), "s3cret".into()));
    let (c, leader, replicas) = healthy_with("hactl_restart_reinit_failover", opts).await;
    let (r1, r2) = (replicas[0].clone(), replicas[1].clone());

    info!("--- a wrong REST API password is refused (401) and nothing happens");
    let pm = c.node(&r1).postmaster_pid().unwrap();
    let out = hactl(
        &cfg(&c),
        &["--password", "wrong", "restart", &r1, "--force"],
    )
    .await;
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.contains("status code=401"), "{out}");
    assert_eq!(c.node(&r1).postmaster_pid(), Some(pm));

    info!("--- restart {r1}: a new postmaster, streaming again");
    let pm_before = c.node(&r1).postmaster_pid().unwrap();
    let out = hactl(&cfg(&c), &["restart", &r1, "--force"]).await.ok();
    assert!(
        out.stdout
            .contains(&format!("Success: restart on member {r1}")),
        "{out}"
    );
    let pm_after = c
        .node(&r1)
        .postmaster_pid()
        .expect("postmaster after restart");
    assert_ne!(pm_before, pm_after);
    c.wait_streaming(&leader, &[&r1], Duration::from_secs(60))
        .await;

    info!("--- restart --scheduled is refused by the agent with its reason");
    let out = hactl(
        &cfg(&c),
        &[
            "restart",
            &r1,
            "--scheduled",
            "2099-01-01T00:00:00+00:00",
            "--force",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{out}");
    assert!(
        one_line_error(&out).contains("scheduled restarts are not supported"),
        "{out}"
    );
    assert_eq!(
        c.node(&r1).postmaster_pid(),
        Some(pm_after),
        "nothing restarted"
    );

    info!("--- reinit {r2} --wait: rebuilt and streaming again");
    let pm_before = c.node(&r2).postmaster_pid().unwrap();
    let out = hactl(&cfg(&c), &["reinit", &r2, "--force", "--wait"])
        .await
        .ok();
    assert!(
        out.stdout
            .contains(&format!("Reinitialize is completed on: {r2}")),
        "{out}"
    );
    c.wait_streaming(&leader, &[&r2], Duration::from_secs(60))
        .await;
    assert_ne!(c.node(&r2).postmaster_pid(), Some(pm_before));
    let log = std::fs::read_to_string(c.node(&r2).log_path()).unwrap();
    assert!(
        log.contains("starting job job=reinitialize"),
        "the agent ran the reinitialize job"
    );
    let out = hactl(&cfg(&c), &["reinit", &leader, "--force"]).await;
    assert_eq!(out.code, 2, "the leader cannot be reinitialized: {out}");

    info!("--- failover --candidate {r1}");
    let out = hactl(&cfg(&c), &["failover", "--force"]).await;
    assert_eq!(out.code, 2, "a failover needs a candidate: {out}");
    let out = hactl(&cfg(&c), &["failover", "--candidate", &r1, "--force"])
        .await
        .ok();
    assert!(
        out.stdout
            .contains(&format!("{r1} is the leader now (failover took ")),
        "{out}"
    );
    assert_eq!(c.etcd_get("leader").await.as_deref(), Some(r1.as_str()));
    assert!(c.is_writable(&r1).await);
    c.wait_streaming(&r1, &[&leader, &r2], Duration::from_secs(90))
        .await;
}

/// A member record as an agent writes it.
fn record(api_port: u16, pg_port: u16, role: &str, tl: u32) -> String {
    let mut v = serde_json::json!({
        "conn_url": format!("postgres://127.0.0.1:{pg_port}/postgres"),
        "api_url": format!("http://127.0.0.1:{api_port}/patroni"),
        "state": "running", "role": role, "version": "0.1.0",
        "xlog_location": 50_331_648u64, "timeline": tl,
    });
    if role == "replica" {
        v["replay_lsn"] = 50_331_648u64.into();
        v["receive_lsn"] = 50_331_648u64.into();
        v["replication_state"] = "streaming".into();
    }
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reachable_api_hactl_writes_the_failover_key_and_watches_the_leader() {
    init_tracing();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let logs = log_dir("hactl_etcd_fallback");
    let etcd = EtcdProc::start(&logs).await;
    let mut kv = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .unwrap()
        .kv_client();
    let p = "/service/fake/";
    // Nobody listens on these ports: every REST API call is refused.
    let (api1, api2) = (free_port(), free_port());
    for (k, v) in [
        ("initialize", "7000000000000000001".to_string()),
        (
            "config",
            r#"{"ttl":10,"loop_wait":2,"retry_timeout":3}"#.to_string(),
        ),
        ("leader", "fake1".to_string()),
        ("members/fake1", record(api1, 25001, "primary", 1)),
        ("members/fake2", record(api2, 25002, "replica", 1)),
    ] {
        kv.put(format!("{p}{k}"), v, None).await.unwrap();
    }
    // A patronictl-style file: no postgresql section, read leniently.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("ctl.yml");
    std::fs::write(
        &conf,
        format!(
            "scope: fake\netcd3:\n  hosts: {}\n",
            etcd.endpoint().trim_start_matches("http://")
        ),
    )
    .unwrap();

    info!("--- switchover: the leader's API refuses; hactl writes the key and waits");
    let conf2 = conf.clone();
    let run_it = tokio::spawn(async move {
        let c = conf2.to_str().unwrap().to_string();
        run(
            &hactl_bin(),
            &["-c", &c, "switchover", "--candidate", "fake2", "--force"],
            None,
            Duration::from_secs(60),
        )
        .await
    });
    let key = wait_for("the failover key", Duration::from_secs(20), || {
        let mut kv = kv.clone();
        async move {
            let r = kv.get(format!("{p}failover"), None).await.ok()?;
            r.kvs()
                .first()
                .map(|x| String::from_utf8_lossy(x.value()).into_owned())
        }
    })
    .await;
    let f: Value = serde_json::from_str(&key).unwrap();
    assert_eq!(f, serde_json::json!({"leader": "fake1", "member": "fake2"}));
    // Play the agents: fake2 takes over.
    kv.put(
        format!("{p}members/fake2"),
        record(api2, 25002, "primary", 2),
        None,
    )
    .await
    .unwrap();
    kv.put(
        format!("{p}members/fake1"),
        record(api1, 25001, "replica", 2),
        None,
    )
    .await
    .unwrap();
    kv.put(format!("{p}leader"), "fake2", None).await.unwrap();
    kv.delete(format!("{p}failover"), None).await.unwrap();
    let out = run_it.await.unwrap().ok();
    assert!(
        out.stdout
            .contains("Could not switchover using Patroni api, falling back to DCS"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("fake2 is the leader now (switchover took "),
        "{out}"
    );

    info!("--- a pending request is never replaced");
    kv.put(format!("{p}failover"), r#"{"member":"fake1"}"#, None)
        .await
        .unwrap();
    let c = conf.to_str().unwrap();
    let out = run(
        &hactl_bin(),
        &["-c", c, "switchover", "--candidate", "fake1", "--force"],
        None,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(out.code, 1, "{out}");
    assert!(one_line_error(&out).contains("already pending"), "{out}");
    kv.delete(format!("{p}failover"), None).await.unwrap();

    info!("--- failover with no leader: the key is written directly, and a timeout is reported");
    kv.delete(format!("{p}leader"), None).await.unwrap();
    let t0 = Instant::now();
    let out = run(
        &hactl_bin(),
        &["-c", c, "failover", "--candidate", "fake1", "--force"],
        None,
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout
            .contains("the cluster has no leader: writing the failover request into etcd"),
        "{out}"
    );
    let line = one_line_error(&out);
    assert!(
        line.contains("did not happen within 30 s") && line.contains("vacant"),
        "{line}"
    );
    assert!(t0.elapsed() >= Duration::from_secs(30));
    let r = kv.get(format!("{p}failover"), None).await.unwrap();
    let f: Value = serde_json::from_slice(r.kvs()[0].value()).unwrap();
    assert_eq!(f, serde_json::json!({"member": "fake1"}));

    info!("--- pause and resume change the config key directly when no API answers");
    let out = run(
        &hactl_bin(),
        &["-c", c, "pause"],
        None,
        Duration::from_secs(30),
    )
    .await
    .ok();
    assert!(
        out.stdout
            .contains("changing the config key in etcd directly"),
        "{out}"
    );
    let r = kv.get(format!("{p}config"), None).await.unwrap();
    let cfg: Value = serde_json::from_slice(r.kvs()[0].value()).unwrap();
    assert_eq!(
        cfg,
        serde_json::json!({"ttl": 10, "loop_wait": 2, "retry_timeout": 3, "pause": true})
    );
    let out = run(
        &hactl_bin(),
        &["-c", c, "list"],
        None,
        Duration::from_secs(20),
    )
    .await
    .ok();
    assert!(out.stdout.ends_with("\n Maintenance mode: on\n"), "{out}");
    run(
        &hactl_bin(),
        &["-c", c, "resume"],
        None,
        Duration::from_secs(30),
    )
    .await
    .ok();
    let r = kv.get(format!("{p}config"), None).await.unwrap();
    let cfg: Value = serde_json::from_slice(r.kvs()[0].value()).unwrap();
    assert_eq!(
        cfg,
        serde_json::json!({"ttl": 10, "loop_wait": 2, "retry_timeout": 3})
    );

    info!("--- usage errors are one line and exit 2");
    let out = run(
        &hactl_bin(),
        &["-c", c, "restart", "node9", "--force"],
        None,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(
        one_line_error(&out),
        "hactl: no member named node9 in cluster fake (members: fake1, fake2)"
    );
    let out = run(&hactl_bin(), &["list"], None, Duration::from_secs(20)).await;
    assert_eq!(out.code, 2, "{out}");
    assert!(one_line_error(&out).contains("no configuration"), "{out}");
    let out = run(
        &hactl_bin(),
        &["-c", c, "list", "--format", "xml"],
        None,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(out.code, 2, "clap's usage errors exit 2: {out}");
    let out = run(
        &hactl_bin(),
        &[
            "--dcs-url",
            &format!("etcd3://{}", etcd.endpoint().trim_start_matches("http://")),
            "--scope",
            "fake",
            "list",
            "-f",
            "json",
        ],
        None,
        Duration::from_secs(20),
    )
    .await
    .ok();
    assert!(out.stdout.contains("\"Member\": \"fake1\""), "{out}");
    let out = run(
        &hactl_bin(),
        &["-c", c, "dsn", "fake2"],
        None,
        Duration::from_secs(20),
    )
    .await
    .ok();
    assert_eq!(out.stdout.trim(), "host=127.0.0.1 port=25002");
}
