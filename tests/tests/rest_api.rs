//! The REST API against a running cluster: Patroni's status codes on every health endpoint,
//! query conditions, JSON status pages, metrics, switchover validation and authentication, and
//! health checks that stay fast while PostgreSQL is frozen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ha_tests::agent::{ClusterSettings, http};
use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::procs::{init_tracing, wait_for};
use reqwest::Method;
use tracing::info;

async fn code(base: &str, method: Method, path: &str) -> u16 {
    http()
        .request(method, format!("{base}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .status()
        .as_u16()
}

/// A cluster whose member `node3` is tagged nofailover and rack=b, the others rack=a, with
/// basic auth on the API.
async fn cluster(test: &str) -> (TestCluster, String, Vec<String>) {
    let opts = Opts {
        settings: ClusterSettings {
            api_auth: Some(("admin".into(), "secret".into())),
            ..ClusterSettings::default()
        },
        tags: vec![
            (0, "rack".into(), "a".into()),
            (1, "rack".into(), "a".into()),
            (2, "rack".into(), "b".into()),
            (2, "nofailover".into(), "true".into()),
        ],
        ..Opts::default()
    };
    let c = TestCluster::start(test, opts).await;
    let leader = c.wait_healthy(Duration::from_secs(90)).await;
    let replicas = c.others(&[&leader]);
    // Let every agent publish a cycle that sees the streaming replicas.
    wait_for(
        "replicas report streaming",
        Duration::from_secs(20),
        || async {
            let (_, body) = c.node(&leader).api_get("/patroni").await?;
            if body["replication"].as_array()?.len() != replicas.len() {
                return None;
            }
            for r in &replicas {
                let (_, body) = c.node(r).api_get("/patroni").await?;
                if body["replication_state"] != "streaming" || body["state"] != "running" {
                    return None;
                }
                let (_, cl) = c.node(r).api_get("/cluster").await?;
                if cl["health"]["status"] != "healthy" {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    (c, leader, replicas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_answer_like_patroni_on_leader_and_replica() {
    init_tracing();
    let (c, leader, replicas) = cluster("rest_health").await;
    // node3 could be the leader only if it bootstrapped; it is nofailover, but bootstrap is
    // allowed for it only without the tag, so the leader is node1 or node2.
    assert_ne!(leader, "node3");
    let l = c.node(&leader).api_base();
    let r = c.node(&replicas[0]).api_base();

    info!("--- Patroni's table, GET / OPTIONS / HEAD");
    let table: &[(&str, u16, u16)] = &[
        ("/", 200, 503),
        ("/primary", 200, 503),
        ("/master", 200, 503),
        ("/read-write", 200, 503),
        ("/leader", 200, 503),
        ("/standby-leader", 503, 503),
        ("/replica", 503, 200),
        ("/read-only", 200, 200),
        ("/sync", 503, 503),
        ("/synchronous", 503, 503),
        ("/async", 503, 200),
        ("/asynchronous", 503, 200),
        ("/health", 200, 200),
        ("/liveness", 200, 200),
        ("/readiness", 200, 200),
    ];
    for (path, on_leader, on_replica) in table {
        for m in [Method::GET, Method::OPTIONS, Method::HEAD] {
            assert_eq!(
                code(&l, m.clone(), path).await,
                *on_leader,
                "{m} {path} on the leader"
            );
            assert_eq!(
                code(&r, m.clone(), path).await,
                *on_replica,
                "{m} {path} on a replica"
            );
        }
    }

    info!("--- query conditions: lag, replication_state, tags");
    let rack = if replicas[0] == "node3" { "b" } else { "a" };
    let other = if rack == "a" { "b" } else { "a" };
    for (path, want) in [
        ("/replica?lag=1MB".to_string(), 200),
        ("/replica?lag=0".to_string(), 200),
        ("/replica?replication_state=streaming".to_string(), 200),
        (
            "/replica?replication_state=in%20archive%20recovery".to_string(),
            503,
        ),
        (format!("/replica?tag_rack={rack}"), 200),
        (format!("/replica?tag_rack={other}"), 503),
        ("/replica?tag_nosuchtag=x".to_string(), 503),
        ("/readiness?lag=1MB".to_string(), 200),
        ("/readiness?mode=write".to_string(), 200),
        ("/readiness?mode=apply&lag=1MB".to_string(), 200),
    ] {
        assert_eq!(
            code(&r, Method::GET, &path).await,
            want,
            "GET {path} on a replica"
        );
    }
    assert_eq!(
        code(&r, Method::GET, "/replica?lag=lots").await,
        400,
        "a bad lag is a 400"
    );
    assert_eq!(
        code(&r, Method::GET, "/readiness?mode=fast").await,
        400,
        "a mode other than write or apply is a 400"
    );
    assert_eq!(code(&l, Method::GET, "/nosuchpath").await, 404);

    info!("--- JSON status pages in Patroni's shapes");
    let (st, p) = c.node(&leader).api_get("/patroni").await.unwrap();
    assert_eq!(st, 200);
    assert_eq!(p["role"], "primary");
    assert_eq!(p["state"], "running");
    assert!(p["xlog"]["location"].is_u64(), "{p}");
    assert_eq!(p["timeline"], 1);
    assert_eq!(p["patroni"]["name"], leader.as_str());
    assert_eq!(p["patroni"]["scope"], c.settings.scope.as_str());
    assert_eq!(p["replication"].as_array().unwrap().len(), 2, "{p}");
    assert!(p["database_system_identifier"].is_string());
    let (_, p) = c.node(&replicas[0]).api_get("/patroni").await.unwrap();
    assert_eq!(p["role"], "replica");
    assert!(
        p["xlog"]["received_location"].is_u64() && p["xlog"]["replayed_location"].is_u64(),
        "{p}"
    );
    let (_, cl) = c.node(&replicas[0]).api_get("/cluster").await.unwrap();
    let members = cl["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(members.iter().filter(|m| m["role"] == "leader").count(), 1);
    assert_eq!(
        members.iter().filter(|m| m["state"] == "streaming").count(),
        2,
        "{cl}"
    );
    assert_eq!(cl["health"]["status"], "healthy", "{cl}");
    let (_, cfg) = c.node(&leader).api_get("/config").await.unwrap();
    assert_eq!(cfg["ttl"], c.settings.ttl);
    let (st, h) = c.node(&leader).api_get("/history").await.unwrap();
    assert_eq!((st, h.is_array()), (200, true));
    let metrics = http()
        .get(format!("{l}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let label = format!("{{scope=\"{}\",name=\"{leader}\"}}", c.settings.scope);
    assert!(
        metrics.contains(&format!("patroni_primary{label} 1")),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("patroni_postgres_running{label} 1")));
    assert!(metrics.contains(&format!("patroni_postgres_timeline{label} 1")));

    info!("--- a degraded cluster says so: one replica stopped");
    let mut c = c;
    let gone = replicas[1].clone();
    c.node_mut(&gone).stop(Duration::from_secs(30)).await;
    wait_for(
        "cluster health degraded or member gone",
        Duration::from_secs(30),
        || async {
            let (_, cl) = c.node(&leader).api_get("/cluster").await?;
            let members = cl["members"].as_array()?.len();
            (members == 2 || cl["health"]["status"] == "degraded").then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_requests_are_validated_and_authenticated() {
    init_tracing();
    let (c, leader, replicas) = cluster("rest_switchover").await;
    let l = c.node(&leader).api_base();
    let post = |body: serde_json::Value, auth: bool| {
        let mut req = http().post(format!("{l}/switchover")).json(&body);
        if auth {
            req = req.basic_auth("admin", Some("secret"));
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let healthy = replicas.iter().find(|r| *r != "node3").unwrap().clone();

    info!("--- no credentials: 401; wrong ones: 401");
    let (st, _) = post(
        serde_json::json!({"leader": leader, "candidate": healthy}),
        false,
    )
    .await;
    assert_eq!(st, 401);
    let resp = http()
        .post(format!("{l}/switchover"))
        .basic_auth("admin", Some("nope"))
        .json(&serde_json::json!({"leader": leader}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    info!("--- invalid requests: 4xx with a reason, nothing written");
    let (st, why) = post(
        serde_json::json!({"leader": leader, "candidate": "node3"}),
        true,
    )
    .await;
    assert_eq!(st, 412, "{why}");
    assert!(why.contains("nofailover"), "{why}");
    let (st, why) = post(
        serde_json::json!({"leader": leader, "candidate": "node9"}),
        true,
    )
    .await;
    assert_eq!(st, 412, "{why}");
    assert!(why.contains("node9"), "{why}");
    let (st, why) = post(
        serde_json::json!({"leader": healthy, "candidate": leader}),
        true,
    )
    .await;
    assert_eq!(st, 412, "{why}");
    let (st, _) = post(serde_json::json!({"candidate": healthy}), true).await;
    assert_eq!(st, 400, "switchover needs a leader");
    let resp = http()
        .post(format!("{l}/switchover"))
        .basic_auth("admin", Some("secret"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let (st, why) = post(
        serde_json::json!({"leader": leader, "candidate": healthy, "scheduled_at": "2020-01-01T00:00:00+00:00"}),
        true,
    )
    .await;
    assert_eq!(st, 422, "{why}");
    assert!(
        c.etcd_get("failover").await.is_none(),
        "nothing was written"
    );
    assert_eq!(c.etcd_get("leader").await.as_deref(), Some(leader.as_str()));

    info!("--- a scheduled switchover is accepted (202) and can be cancelled");
    let at = chrono_in(3600);
    let (st, why) = post(
        serde_json::json!({"leader": leader, "candidate": healthy, "scheduled_at": at}),
        true,
    )
    .await;
    assert_eq!(st, 202, "{why}");
    let resp = http()
        .delete(format!("{l}/switchover"))
        .basic_auth("admin", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(c.etcd_get("failover").await.is_none());

    info!("--- a valid switchover succeeds: 200, the candidate leads");
    let t0 = Instant::now();
    let (st, why) = post(
        serde_json::json!({"leader": leader, "candidate": healthy}),
        true,
    )
    .await;
    info!(took_ms = t0.elapsed().as_millis() as u64, answer = %why, "switchover");
    assert_eq!(st, 200, "{why}");
    assert!(why.contains(&healthy), "{why}");
    assert!(c.is_writable(&healthy).await);
    assert!(!c.is_writable(&leader).await);
    c.wait_streaming(&healthy, &[leader.as_str()], Duration::from_secs(60))
        .await;
}

/// An ISO 8601 time `secs` from now, with offset.
fn chrono_in(secs: u64) -> String {
    ha_agent::dcs::records::format_iso8601(ha_agent::clock::wall_ms() + secs * 1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_stay_fast_while_postgres_is_frozen() {
    init_tracing();
    let (c, leader, replicas) = cluster("rest_frozen_pg").await;
    let node = c.node(&replicas[0]);
    let base = node.api_base();

    info!("--- SIGSTOP the replica's postmaster and all its processes");
    let frozen = node.freeze_postgres();
    assert!(!frozen.is_empty(), "PostgreSQL runs");

    info!("--- health checks keep answering in a few ms");
    let deadline = Instant::now() + Duration::from_secs(c.settings.ttl + 5);
    let mut worst = Duration::ZERO;
    let mut n = 0;
    let mut went_503 = false;
    while Instant::now() < deadline {
        let t = Instant::now();
        let st = code(&base, Method::GET, "/replica").await;
        worst = worst.max(t.elapsed());
        n += 1;
        if st == 503 {
            went_503 = true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    info!(
        requests = n,
        worst_ms = worst.as_secs_f64() * 1000.0,
        "health checks while PostgreSQL is frozen"
    );
    assert!(
        worst < Duration::from_millis(250),
        "a health check took {worst:?} while PostgreSQL was frozen"
    );
    assert!(
        went_503,
        "the frozen replica stopped reporting itself healthy"
    );
    assert_eq!(
        code(&c.node(&leader).api_base(), Method::GET, "/primary").await,
        200,
        "the leader is unaffected"
    );

    ha_tests::agent::AgentProc::thaw_postgres(&frozen);
    wait_for(
        "the replica healthy again",
        Duration::from_secs(30),
        || async { (code(&base, Method::GET, "/replica").await == 200).then_some(()) },
    )
    .await;
}
