//! Commit latency added by synchronous replication: pgbench's TPC-B-like transaction against
//! the leader over loopback (fsync on), first with the cluster asynchronous, then with
//! `synchronous_mode: true` set by `PATCH /config` on the same cluster (the sync standby on
//! the same machine: this is the cost of the extra round trip and the standby's WAL flush, not
//! of a network).

use std::time::Duration;

use clap::Args;
use ha_tests::cluster::{Opts as ClusterOpts, TestCluster};
use ha_tests::procs::wait_for;

use crate::stats::command;

#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Seconds of pgbench per mode.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// pgbench clients.
    #[arg(long, default_value_t = 4)]
    pub clients: u32,
    /// pgbench scale.
    #[arg(long, default_value_t = 10)]
    pub scale: u32,
}

const PGBENCH: &str = "/usr/lib/postgresql/15/bin/pgbench";

/// Runs pgbench against `port` as the test superuser; returns its output.
pub(crate) async fn pgbench(port: u16, args: &[String]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(PGBENCH)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(args)
        .arg("postgres")
        .env("PGPASSWORD", "su-pass")
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "pgbench {args:?}: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(text)
}

/// `latency average = 1.234 ms` and `tps = 567.8 (without initial connection time)`.
fn figures(out: &str) -> (String, String) {
    let pick = |prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split('=').nth(1))
            .map_or("?".into(), |v| v.trim().to_string())
    };
    (pick("latency average"), pick("tps"))
}

pub async fn latency(o: Opts) -> anyhow::Result<()> {
    let opts = ClusterOpts {
        settings: crate::settings(30, 10, 10),
        ..ClusterOpts::default()
    };
    let c = TestCluster::start("bench_commit", opts).await;
    let leader = c.wait_healthy(Duration::from_secs(120)).await;
    let port = c.node(&leader).pg_port;
    pgbench(
        port,
        &["-i".into(), "-q".into(), "-s".into(), o.scale.to_string()],
    )
    .await?;
    let run = [
        "-c".to_string(),
        o.clients.to_string(),
        "-j".into(),
        "2".into(),
        "-T".into(),
        o.seconds.to_string(),
    ];
    let asynchronous = figures(&pgbench(port, &run).await?);

    let resp = ha_tests::agent::http()
        .patch(format!("{}/config", c.node(&leader).api_base()))
        .json(&serde_json::json!({"synchronous_mode": true}))
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "PATCH /config: {}",
        resp.status()
    );
    wait_for(
        "synchronous_standby_names set and the sync key naming a standby",
        Duration::from_secs(60),
        || async {
            let v: serde_json::Value = serde_json::from_str(&c.etcd_get("sync").await?).ok()?;
            let named = !v["sync_standby"].as_str()?.is_empty();
            let cl = c.node(&leader).client().await.ok()?;
            let row = cl
                .query_one(
                    "select count(*) from pg_stat_replication where sync_state = 'sync'",
                    &[],
                )
                .await
                .ok()?;
            (named && row.get::<_, i64>(0) == 1).then_some(())
        },
    )
    .await;
    let synchronous = figures(&pgbench(port, &run).await?);

    println!(
        "\n## commit latency, pgbench TPC-B-like, {} clients, scale {}, {} s per mode, fsync on, loopback",
        o.clients, o.scale, o.seconds
    );
    println!(
        "- asynchronous: latency average {}, tps {}",
        asynchronous.0, asynchronous.1
    );
    println!(
        "- synchronous_mode: true (FIRST 1): latency average {}, tps {}",
        synchronous.0, synchronous.1
    );
    println!("- command: {}", command());
    Ok(())
}
