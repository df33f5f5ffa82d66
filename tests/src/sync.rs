//! Helpers for the synchronous replication scenarios (`tests/sync.rs`, `tests/quorum.rs`):
//! the `sync` key as etcd holds it, `synchronous_standby_names` as a server reports it, and
//! which acknowledged commits a member lacks.

use serde_json::Value;

use crate::agent::http;
use crate::cluster::TestCluster;
use crate::writer::Ack;

/// The `sync` key's JSON, if it exists and parses.
pub async fn sync_json(c: &TestCluster) -> Option<Value> {
    serde_json::from_str(&c.etcd_get("sync").await?).ok()
}

/// The `sync` key: (leader, standbys).
pub async fn sync_key(c: &TestCluster) -> Option<(String, Vec<String>)> {
    let v = sync_json(c).await?;
    let leader = v["leader"].as_str()?.to_string();
    let standbys = v["sync_standby"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Some((leader, standbys))
}

/// `synchronous_standby_names` on `node`.
pub async fn standby_names(c: &TestCluster, node: &str) -> Option<String> {
    let cl = c.node(node).client().await.ok()?;
    let row = cl
        .query_one("show synchronous_standby_names", &[])
        .await
        .ok()?;
    Some(row.get(0))
}

/// Acknowledged ids missing on `node`.
pub async fn missing_on(c: &TestCluster, node: &str, acks: &[Ack]) -> Vec<i64> {
    let cl = c.node(node).client().await.unwrap();
    let present: Vec<i64> = cl
        .query("select id from w order by id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    acks.iter()
        .map(|a| a.id)
        .filter(|id| present.binary_search(id).is_err())
        .collect()
}

/// `POST /switchover` to `leader`'s REST API: (status, body).
pub async fn switchover(c: &TestCluster, leader: &str, candidate: &str) -> (u16, String) {
    let r = http()
        .post(format!("{}/switchover", c.node(leader).api_base()))
        .json(&serde_json::json!({"leader": leader, "candidate": candidate}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}
