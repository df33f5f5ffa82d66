//! Helpers for the backup tests (`tests/tests/backup.rs`): the shared pgBackRest repository,
//! the `backup` key, `hactl backups`, pgBackRest run as the unprivileged user, and the
//! stop / restore / start sequence of a point-in-time recovery.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cluster::TestCluster;
use crate::ctl::hactl;
use crate::procs::RunAs;

/// `Opts::before_start`: the repository all members share, `<their parent>/repo`.
pub fn make_repo(_i: usize, member_dir: &Path) {
    let repo = member_dir.parent().unwrap().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    RunAs::unprivileged().chown(&repo);
}

/// The cluster's `backup` key as JSON.
pub async fn backup_record(c: &TestCluster) -> Option<Value> {
    serde_json::from_str(&c.etcd_get("backup").await?).ok()
}

/// `hactl backups -f json` with node1's configuration.
pub async fn backups(c: &TestCluster) -> Vec<Value> {
    let out = hactl(&c.node("node1").config_path(), &["backups", "-f", "json"])
        .await
        .ok();
    serde_json::from_str::<Vec<Value>>(&out.stdout).unwrap()
}

/// A single `bigint` from `sql` on `node` (`None` when it cannot be had).
pub async fn count(c: &TestCluster, node: &str, sql: &str) -> Option<i64> {
    let cl = c.node(node).client().await.ok()?;
    cl.query_one(sql, &[]).await.ok().map(|r| r.get(0))
}

/// Runs pgBackRest as the unprivileged user with `node`'s configuration.
pub async fn pgbackrest(c: &TestCluster, node: &str, args: &[&str]) -> (bool, String) {
    let conf = PathBuf::from(format!(
        "{}.pgbackrest.conf",
        c.node(node).data_dir().display()
    ));
    let mut cmd = tokio::process::Command::new("pgbackrest");
    cmd.arg(format!("--config={}", conf.display()))
        .arg(format!("--stanza={}", c.settings.scope))
        .args(args);
    let ra = RunAs::unprivileged();
    if let (Some(u), Some(g)) = (ra.uid, ra.gid) {
        cmd.uid(u).gid(g);
    }
    let out = cmd.output().await.expect("run pgbackrest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Stops every agent (SIGTERM: PostgreSQL stops, keys go), the replicas first: a leader
/// stopped first hands over to a replica, whose new timeline would then end unarchived.
pub async fn stop_all(c: &mut TestCluster) {
    let leader = c.etcd_get("leader").await.unwrap_or_default();
    for n in c.others(&[&leader]) {
        c.node_mut(&n).stop(Duration::from_secs(60)).await;
    }
    if !leader.is_empty() {
        c.node_mut(&leader).stop(Duration::from_secs(60)).await;
    }
}

/// Restores onto node1 with `target`, moves the other members' data away, starts all, and
/// returns the new leader (node1, the only member with data).
pub async fn restore_and_start(c: &mut TestCluster, target: &[&str]) -> String {
    let mut args = vec!["restore"];
    args.extend_from_slice(target);
    let out = hactl(&c.node("node1").config_path(), &args).await;
    // Keep PostgreSQL's recovery log with the test's logs.
    let dir1 = c.node("node1").dir.clone();
    for e in std::fs::read_dir(&dir1).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("data.restore-") && name.ends_with(".log") {
            let _ = std::fs::copy(e.path(), c.log_dir.join(format!("node1.{name}")));
        }
    }
    assert_eq!(out.code, 0, "hactl restore: {}\n{}", out.stdout, out.stderr);
    for n in ["node2", "node3"] {
        let d = c.node(n).data_dir();
        let aside = PathBuf::from(format!("{}.pre-restore-{}", d.display(), rand_suffix()));
        std::fs::rename(&d, &aside).unwrap();
    }
    // The restored member first: with the old run's keys gone, an empty member started
    // before it leads would bootstrap a new cluster.
    let settings = c.settings.clone();
    c.node_mut("node1").start(&settings);
    assert_eq!(c.wait_for_leader(Duration::from_secs(60)).await, "node1");
    for n in ["node2", "node3"] {
        c.node_mut(n).start(&settings);
    }
    let leader = c.wait_healthy(Duration::from_secs(120)).await;
    assert_eq!(leader, "node1", "the restored member leads");
    leader
}

/// A suffix that differs from run to run.
pub fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
