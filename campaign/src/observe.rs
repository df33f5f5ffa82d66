//! The observer: the campaign's view of the cluster, from its own host (never cut off). It
//! answers "is the cluster healthy" (exactly one primary, named by etcd's leader key, and
//! every other member streaming from it), reads the final primary's tables, and asks for
//! switchovers. Everything it does runs on the observer's namespace runtime.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use base64::Engine;

use crate::cluster::SCOPE;
use crate::net::Topology;
use crate::nsrt::NsRuntime;

/// How the cluster looked at one moment.
#[derive(Debug, Clone)]
pub struct Health {
    /// The only member running as primary, if exactly one does.
    pub primary: Option<String>,
    /// One primary, named by the leader key, and every other member streaming from it.
    pub healthy: bool,
    /// What was seen, for logs and "never healed" reports.
    pub detail: String,
}

/// One member's PostgreSQL as the observer sees it.
#[derive(Debug, Clone)]
struct Probe {
    name: String,
    /// None: no answer.
    in_recovery: Option<bool>,
    /// `pg_stat_wal_receiver`: "status sender_host".
    receiver: Option<String>,
    /// `pg_stat_replication`: "application_name=state,...".
    senders: String,
}

/// The observer.
#[derive(Clone)]
pub struct Observer {
    rt: Arc<NsRuntime>,
    topo: Topology,
    http: reqwest::Client,
}

/// A superuser connection to `addr:5432`, with short timeouts (called on the observer's or
/// the client's runtime).
pub async fn connect(addr: String, timeout: Duration) -> anyhow::Result<tokio_postgres::Client> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&addr)
        .port(5432)
        .user("postgres")
        .password("su-pass")
        .dbname("postgres")
        .connect_timeout(timeout);
    let fut = cfg.connect(tokio_postgres::NoTls);
    let (client, conn) = tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow!("connect to {addr}: timeout"))?
        .with_context(|| format!("connect to {addr}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

impl Observer {
    /// An observer using runtime `rt` (in the observer's namespace).
    pub fn new(rt: Arc<NsRuntime>, topo: Topology) -> anyhow::Result<Observer> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(3))
            .build()
            .context("http client")?;
        Ok(Observer { rt, topo, http })
    }

    /// The observer's runtime.
    pub fn runtime(&self) -> &Arc<NsRuntime> {
        &self.rt
    }

    /// The value of etcd's leader key (through etcd's JSON gateway on any member).
    pub async fn leader_key(&self) -> Option<String> {
        let (http, etcd) = (self.http.clone(), self.topo.etcd.clone());
        self.rt
            .run(async move {
                let b64 = base64::engine::general_purpose::STANDARD;
                let key = b64.encode(format!("/service/{SCOPE}/leader"));
                for h in etcd {
                    let url = format!("http://{}:2379/v3/kv/range", h.addr);
                    let Ok(r) = http
                        .post(url)
                        .json(&serde_json::json!({ "key": key }))
                        .timeout(Duration::from_secs(1))
                        .send()
                        .await
                    else {
                        continue;
                    };
                    let Ok(v) = r.json::<serde_json::Value>().await else {
                        continue;
                    };
                    if v.get("header").is_none() {
                        continue;
                    }
                    let value = v["kvs"][0]["value"].as_str()?;
                    let raw = b64.decode(value).ok()?;
                    return Some(String::from_utf8_lossy(&raw).into_owned());
                }
                None
            })
            .await
            .ok()
            .flatten()
    }

    /// Whether every etcd member answers `/health` with `"health":"true"`.
    pub async fn etcd_healthy(&self) -> bool {
        let (http, etcd) = (self.http.clone(), self.topo.etcd.clone());
        self.rt
            .run(async move {
                for h in etcd {
                    let url = format!("http://{}:2379/health", h.addr);
                    let ok = match http.get(url).timeout(Duration::from_secs(2)).send().await {
                        Ok(r) => r.text().await.is_ok_and(|t| t.contains("\"true\"")),
                        Err(_) => false,
                    };
                    if !ok {
                        return false;
                    }
                }
                true
            })
            .await
            .unwrap_or(false)
    }

    /// The cluster's health now.
    pub async fn health(&self) -> Health {
        let members: Vec<(String, String)> = self
            .topo
            .members
            .iter()
            .map(|h| (h.name.clone(), h.addr.to_string()))
            .collect();
        let probes = self
            .rt
            .run(async move {
                let mut out = Vec::new();
                for (name, addr) in members {
                    out.push(probe(name, addr).await);
                }
                out
            })
            .await
            .unwrap_or_default();
        let leader = self.leader_key().await;
        judge(&self.topo, &probes, leader.as_deref())
    }

    /// Polls until the cluster is healthy (returns the primary) or `timeout` passes (returns
    /// the last state seen).
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let h = self.health().await;
            if h.healthy
                && let Some(p) = h.primary
            {
                return Ok(p);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(h.detail);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `POST /switchover` to `leader`'s agent: status code and body (0 when unreachable).
    pub async fn switchover(&self, leader: &str, candidate: &str) -> (u16, String) {
        let Some(addr) = self.topo.member(leader).map(|h| h.addr) else {
            return (0, format!("no member {leader}"));
        };
        let body = serde_json::json!({ "leader": leader, "candidate": candidate });
        let http = self.http.clone();
        self.rt
            .run(async move {
                match http
                    .post(format!("http://{addr}:8008/switchover"))
                    .json(&body)
                    .timeout(Duration::from_secs(90))
                    .send()
                    .await
                {
                    Ok(r) => {
                        let code = r.status().as_u16();
                        (code, r.text().await.unwrap_or_default())
                    }
                    Err(e) => (0, format!("{e}")),
                }
            })
            .await
            .unwrap_or((0, "observer runtime gone".into()))
    }

    /// Runs `sql` on `member`.
    pub async fn execute(&self, member: &str, sql: &'static str) -> anyhow::Result<()> {
        let addr = self.addr(member)?;
        self.rt
            .run(async move {
                let c = connect(addr, Duration::from_secs(5)).await?;
                c.batch_execute(sql).await.context("execute")?;
                anyhow::Ok(())
            })
            .await?
    }

    /// Every value of `table` (`campaign_w` or `campaign_d`) on `member`, sorted.
    pub async fn values(&self, member: &str, table: &'static str) -> anyhow::Result<Vec<i64>> {
        let addr = self.addr(member)?;
        self.rt
            .run(async move {
                let c = connect(addr, Duration::from_secs(5)).await?;
                let rows = c
                    .query(&format!("select v from {table} order by v"), &[])
                    .await
                    .with_context(|| format!("read {table}"))?;
                anyhow::Ok(rows.iter().map(|r| r.get::<_, i64>(0)).collect())
            })
            .await?
    }

    fn addr(&self, member: &str) -> anyhow::Result<String> {
        self.topo
            .member(member)
            .map(|h| h.addr.to_string())
            .ok_or_else(|| anyhow!("no member {member}"))
    }
}

async fn probe(name: String, addr: String) -> Probe {
    let mut p = Probe {
        name,
        in_recovery: None,
        receiver: None,
        senders: String::new(),
    };
    let Ok(c) = connect(addr, Duration::from_secs(2)).await else {
        return p;
    };
    let q = c.query_one(
        "select pg_is_in_recovery(), \
                (select status || ' ' || coalesce(sender_host, '') from pg_stat_wal_receiver limit 1), \
                coalesce((select string_agg(application_name || '=' || state, ',') from pg_stat_replication), '')",
        &[],
    );
    if let Ok(Ok(row)) = tokio::time::timeout(Duration::from_secs(2), q).await {
        p.in_recovery = Some(row.get(0));
        p.receiver = row.get(1);
        p.senders = row.get(2);
    }
    p
}

/// Healthy: exactly one member out of recovery, named by the leader key, and every other
/// member streaming from it (its WAL receiver streams from the primary's address and the
/// primary lists it as streaming).
fn judge(topo: &Topology, probes: &[Probe], leader: Option<&str>) -> Health {
    let detail = format!(
        "leader key {:?}; {}",
        leader,
        probes
            .iter()
            .map(|p| format!(
                "{}: {} {}{}",
                p.name,
                match p.in_recovery {
                    None => "no answer",
                    Some(true) => "replica",
                    Some(false) => "PRIMARY",
                },
                p.receiver
                    .as_deref()
                    .map(|r| format!("receiver [{r}]"))
                    .unwrap_or_default(),
                if p.senders.is_empty() {
                    String::new()
                } else {
                    format!(" senders [{}]", p.senders)
                }
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let primaries: Vec<&Probe> = probes
        .iter()
        .filter(|p| p.in_recovery == Some(false))
        .collect();
    let primary = match primaries.as_slice() {
        [p] => Some(p.name.clone()),
        _ => None,
    };
    let healthy = primary.as_deref().is_some_and(|pn| {
        let Some(paddr) = topo.member(pn).map(|h| h.addr.to_string()) else {
            return false;
        };
        let senders = &primaries[0].senders;
        leader == Some(pn)
            && probes.iter().filter(|p| p.name != pn).all(|p| {
                p.in_recovery == Some(true)
                    && p.receiver.as_deref() == Some(&format!("streaming {paddr}"))
                    && senders
                        .split(',')
                        .any(|s| s == format!("{}=streaming", p.name))
            })
    });
    Health {
        primary,
        healthy,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(name: &str, rec: Option<bool>, receiver: Option<&str>, senders: &str) -> Probe {
        Probe {
            name: name.into(),
            in_recovery: rec,
            receiver: receiver.map(str::to_string),
            senders: senders.into(),
        }
    }

    fn healthy_probes() -> Vec<Probe> {
        vec![
            probe(
                "node1",
                Some(false),
                None,
                "node2=streaming,node3=streaming",
            ),
            probe("node2", Some(true), Some("streaming 10.213.0.11"), ""),
            probe("node3", Some(true), Some("streaming 10.213.0.11"), ""),
        ]
    }

    #[test]
    fn one_primary_named_by_the_leader_key_with_both_replicas_streaming_is_healthy() {
        let h = judge(&Topology::standard(), &healthy_probes(), Some("node1"));
        assert!(h.healthy, "{}", h.detail);
        assert_eq!(h.primary.as_deref(), Some("node1"));
    }

    #[test]
    fn anything_less_is_not_healthy() {
        let topo = Topology::standard();
        assert!(!judge(&topo, &healthy_probes(), Some("node2")).healthy);
        assert!(!judge(&topo, &healthy_probes(), None).healthy);
        let mut p = healthy_probes();
        p[2].receiver = Some("streaming 10.213.0.12".into());
        assert!(
            !judge(&topo, &p, Some("node1")).healthy,
            "replica streams from elsewhere"
        );
        let mut p = healthy_probes();
        p[0].senders = "node2=streaming,node3=catchup".into();
        assert!(
            !judge(&topo, &p, Some("node1")).healthy,
            "primary does not list it streaming"
        );
        let mut p = healthy_probes();
        p[1].in_recovery = None;
        assert!(
            !judge(&topo, &p, Some("node1")).healthy,
            "a member does not answer"
        );
        let mut p = healthy_probes();
        p[2].in_recovery = Some(false);
        let h = judge(&topo, &p, Some("node1"));
        assert!(!h.healthy && h.primary.is_none(), "two primaries");
    }
}
