//! Backups with pgBackRest (issue 10), on one 3-member cluster sharing a repository
//! directory: the stanza is created by the leader, WAL is archived by the primary only, a full
//! backup is taken from a replica (`hactl backup`, pgBackRest's info names the source),
//! scheduled incrementals follow, retention drops the oldest full; a fourth member is restored
//! from the repository; a failed backup shows and is retried; after a kill -9 failover the new
//! leader pushes the segment the old one could not archive and archives (`pgbackrest check`);
//! bad input is refused with a clear error and nothing deleted; `hactl restore --latest` keeps
//! every acknowledged row from before and after the failover, and `hactl restore --time T` gives
//! exactly the rows committed up to T; each restored cluster runs as a normal hapg cluster; a
//! new cluster bootstraps from the repository at T.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ha_tests::agent::{AgentProc, ClusterSettings, ExtraYaml};
use ha_tests::backup::{
    backup_record, backups, count, make_repo, pgbackrest, restore_and_start, stop_all,
};
use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::ctl::{hactl, records_settled};
use ha_tests::procs::{RunAs, init_tracing, wait_for, workspace_bin};
use serde_json::Value;
use tracing::info;

/// `{dir}` is each member's directory; the repository is their common parent's `repo`.
const BACKUP_YAML: &str = r#"backup:
  repo_path: {dir}/../repo
  retention_full: 1
  compress_type: lz4
  schedule:
    full: "0 0 1 1 *"
    incr: "*/15 * * * * *"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_follow_the_leader_and_restore_to_a_point_in_time() {
    init_tracing();
    let settings = ClusterSettings {
        extra_yaml: BACKUP_YAML.into(),
        ..Default::default()
    };
    let mut c = TestCluster::start(
        "backup",
        Opts {
            settings,
            before_start: Some(make_repo),
            ..Default::default()
        },
    )
    .await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    let cfg1 = c.node("node1").config_path();

    info!("--- the leader creates the stanza and takes the first backup at once");
    wait_for("a first good backup", Duration::from_secs(60), || async {
        backup_record(&c).await?.get("last_good").cloned()
    })
    .await;

    info!("--- hactl backup --type full runs on the leader from a streaming replica");
    // The leader picks its source from the member records, which say `streaming` a loop after
    // the replicas start to stream: wait for them (CI once saw a backup taken from the leader
    // because neither record said so yet).
    // The backup runner reads them from the leader's last cycle, so ask the leader's own
    // `/cluster` (served from that same snapshot) too.
    wait_for(
        "every replica's record to say it streams, as the leader sees it",
        Duration::from_secs(60),
        || async {
            if !records_settled(&c, &leader).await {
                return None;
            }
            let (_, v) = c.node(&leader).api_get("/cluster").await?;
            let members = v["members"].as_array()?;
            let streaming = members
                .iter()
                .filter(|m| m["name"] != leader.as_str() && m["state"] == "streaming")
                .count();
            (members.len() == 3 && streaming == 2).then_some(())
        },
    )
    .await;
    let out = hactl(&cfg1, &["backup", "--type", "full", "--timeout", "120"]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let rec = backup_record(&c).await.unwrap();
    let last = &rec["last"];
    assert_eq!(last["member"], leader.as_str(), "{rec}");
    assert_ne!(
        last["source"],
        leader.as_str(),
        "taken from a replica: {rec}"
    );
    let full = last["label"].as_str().unwrap().to_string();
    let list = backups(&c).await;
    let b = list.iter().find(|b| b["label"] == full.as_str()).unwrap();
    assert_eq!(b["type"], "full");
    assert_eq!(
        b["source"], last["source"],
        "pgBackRest's info names the source: {b}"
    );
    assert!(
        b["wal_start"].as_str().is_some_and(|w| w.len() == 24),
        "{b}"
    );

    info!("--- retention (1 full) dropped the older full; a scheduled incr follows");
    let fulls: Vec<&Value> = list.iter().filter(|b| b["type"] == "full").collect();
    assert_eq!(fulls.len(), 1, "only the newest full is kept: {list:?}");
    wait_for(
        "a scheduled incr after the full",
        Duration::from_secs(60),
        || async {
            let l = backups(&c).await;
            l.iter()
                .find(|b| {
                    b["type"] == "incr" && b["label"].as_str().is_some_and(|s| s.starts_with(&full))
                })
                .cloned()
        },
    )
    .await;

    info!("--- only the primary archives");
    for n in c.others(&[]) {
        let archived = count(&c, &n, "select archived_count from pg_stat_archiver")
            .await
            .unwrap();
        if n == leader {
            assert!(archived > 0, "the primary archives");
        } else {
            assert_eq!(archived, 0, "replica {n} does not archive");
        }
    }

    info!(
        "--- a replica with create_replica_methods [pgbackrest, basebackup] restores from the repository, then streams"
    );
    let parent = c.nodes[0].dir.parent().unwrap().to_path_buf();
    let mut n4 = AgentProc::new(
        "node4",
        &parent,
        c.nodes[0].etcd_hosts.clone(),
        &c.log_dir,
        RunAs::unprivileged(),
    );
    let mut s4 = c.settings.clone();
    s4.extra.postgresql = vec!["create_replica_methods: [pgbackrest, basebackup]".into()];
    n4.start(&s4);
    c.nodes.push(n4);
    c.wait_streaming(&leader, &["node4"], Duration::from_secs(90))
        .await;
    let log = std::fs::read_to_string(c.node("node4").log_path()).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("clone done") && l.contains("pgbackrest")),
        "node4 was restored from the repository"
    );
    assert!(
        !log.contains("pg_basebackup host="),
        "no base backup was taken from the leader"
    );
    c.node_mut("node4").stop(Duration::from_secs(30)).await;
    c.nodes.pop();

    info!(
        "--- a failed backup: /cluster degraded, hactl list and /metrics say so; the next slot retries"
    );
    let set_mode = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let dir = parent.join("repo/backup").join(&c.settings.scope);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set_mode(0o500);
    let out = hactl(&cfg1, &["backup", "--type", "incr", "--timeout", "120"]).await;
    set_mode(0o750);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("backup failed"), "{}", out.stderr);
    let health = |want: &'static str| {
        let c = &c;
        let leader = leader.clone();
        async move {
            let (_, body) = c.node(&leader).api_get("/cluster").await?;
            let h = &body["health"];
            (h["status"] == want).then(|| h["reason"].as_str().unwrap_or("").to_string())
        }
    };
    let reason = wait_for("/cluster degraded", Duration::from_secs(30), || {
        health("degraded")
    })
    .await;
    assert!(reason.contains("last backup failed"), "{reason}");
    let list = hactl(&cfg1, &["list"]).await.ok();
    assert!(list.stdout.contains("Last good backup"), "{}", list.stdout);
    let metrics = ha_tests::agent::http()
        .get(format!("{}/metrics", c.node(&leader).api_base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hapg_backup_last_good_age_seconds{"),
        "{metrics}"
    );
    wait_for("the next slot succeeds", Duration::from_secs(60), || {
        health("healthy")
    })
    .await;

    info!("--- rows, time T, more rows, a dropped table");
    let l = c.node(&leader).client().await.unwrap();
    l.batch_execute(
        "create table t (id int primary key); insert into t select generate_series(1, 100);
         create table acked (id int primary key); insert into acked select generate_series(1, 50)",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t: String = l
        .query_one(
            "select to_char(now() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    l.batch_execute("insert into t select generate_series(101, 200); drop table t")
        .await
        .unwrap();

    info!(
        "--- the segment with these rows is completed but cannot be archived; kill -9 of the leader"
    );
    let archive_dir = parent
        .join("repo/archive")
        .join(&c.settings.scope)
        .join("15-1/0000000100000000");
    let archive_mode = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&archive_dir, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    archive_mode(0o500);
    let switched: String = l
        .query_one("select pg_walfile_name(pg_switch_wal())", &[])
        .await
        .unwrap()
        .get(0);
    let replicas = c.others(&[&leader]);
    let rs: Vec<&str> = replicas.iter().map(String::as_str).collect();
    c.wait_streaming(&leader, &rs, Duration::from_secs(30))
        .await;
    wait_for("acked rows replicated", Duration::from_secs(30), || async {
        let mut all = true;
        for r in &replicas {
            all &= count(&c, r, "select count(*) from acked").await == Some(50);
        }
        all.then_some(())
    })
    .await;
    let in_archive = || {
        std::fs::read_dir(&archive_dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&switched))
    };
    assert!(!in_archive(), "{switched} could not be archived");
    c.node_mut(&leader).kill_node().await;
    archive_mode(0o750);

    info!(
        "--- the new leader pushes the old primary's unarchived segment; pgbackrest check passes"
    );
    let new = c
        .wait_for_leader_other_than(&leader, Duration::from_secs(60))
        .await;
    let n = c.node(&new).client().await.unwrap();
    n.batch_execute("insert into acked select generate_series(51, 80)")
        .await
        .unwrap();
    wait_for(
        "pgbackrest check on the new leader",
        Duration::from_secs(60),
        || async {
            let (ok, text) = pgbackrest(&c, &new, &["check"]).await;
            info!(ok, %text, "pgbackrest check");
            ok.then_some(())
        },
    )
    .await;
    wait_for(
        "the old primary's last segment archived by the new leader",
        Duration::from_secs(60),
        || async { in_archive().then_some(()) },
    )
    .await;

    info!("--- bad input: clear errors, nothing deleted");
    stop_all(&mut c).await;
    let data1 = c.node("node1").data_dir();
    let before: Vec<_> = std::fs::read_dir(&data1)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let out = hactl(&cfg1, &["restore", "--time", "2000-01-01 00:00:00+00"]).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("before the end of the first backup"),
        "{}",
        out.stderr
    );
    let after: Vec<_> = std::fs::read_dir(&data1)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "the data directory is untouched");
    let yaml = std::fs::read_to_string(&cfg1).unwrap();
    for (bad, key) in [
        (
            yaml.replace("*/15 * * * * *", "every hour"),
            "backup.schedule.incr",
        ),
        (
            yaml.replace("/../repo", "/../no-such-repo"),
            "backup.repo_path",
        ),
    ] {
        let p = c.node("node1").dir.join("bad.yml");
        std::fs::write(&p, bad).unwrap();
        let out = std::process::Command::new(workspace_bin("ha-agent"))
            .arg(&p)
            .arg("--validate-config")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(key), "{key} named in {err}");
    }

    info!("--- restore --latest: every acknowledged row, before and after the failover");
    restore_and_start(&mut c, &["--latest"]).await;
    assert_eq!(
        count(&c, "node1", "select count(*) from acked").await,
        Some(80)
    );
    assert_eq!(
        count(
            &c,
            "node1",
            "select count(*) from pg_class where relname = 't'"
        )
        .await,
        Some(0)
    );

    info!("--- restore --time T: exactly the rows committed up to T");
    stop_all(&mut c).await;
    restore_and_start(&mut c, &["--time", &t]).await;
    assert_eq!(
        count(&c, "node1", "select count(*) from t").await,
        Some(100)
    );
    let l = c.node("node1").client().await.unwrap();
    l.batch_execute("insert into t values (1000)")
        .await
        .unwrap();
    c.wait_healthy(Duration::from_secs(60)).await;

    info!("--- a new cluster bootstrapped from the repository (bootstrap.method: pgbackrest) at T");
    stop_all(&mut c).await;
    let repo = parent.join("repo");
    let copy = ClusterSettings {
        scope: format!("{}-copy", c.settings.scope),
        extra_yaml: format!("backup:\n  repo_path: {}\n", repo.display()),
        extra: ExtraYaml {
            bootstrap: vec![
                "method: pgbackrest".into(),
                "pgbackrest:".into(),
                format!("  stanza: {}", c.settings.scope),
                "  type: time".into(),
                format!("  target: \"{t}\""),
            ],
            ..Default::default()
        },
        ..Default::default()
    };
    let d = TestCluster::start(
        "backup_bootstrap",
        Opts {
            nodes: 1,
            settings: copy,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(d.wait_for_leader(Duration::from_secs(90)).await, "node1");
    assert_eq!(
        count(&d, "node1", "select count(*) from t").await,
        Some(100)
    );
    let recovery_left = count(
        &d,
        "node1",
        "select count(*) from pg_file_settings where name like 'recovery_target%' or name = 'restore_command'",
    )
    .await;
    assert_eq!(
        recovery_left,
        Some(0),
        "recovery settings reset after the promotion"
    );
}
