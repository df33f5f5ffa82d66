//! `GET /primary` under load (wrk), also while the leader's PostgreSQL is SIGSTOPped, and
//! `hactl list` latency (hyperfine), against a running 3-node cluster.

use std::process::Command;
use std::time::Duration;

use clap::Args;
use ha_tests::cluster::{Opts as ClusterOpts, TestCluster};
use ha_tests::procs::workspace_root;

use crate::stats::command;

/// Options.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// wrk connections.
    #[arg(long, default_value_t = 4)]
    pub connections: u32,
    /// wrk threads (the load generator shares the machine's 2 cores with the agent).
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
}

async fn running_cluster(name: &str) -> (TestCluster, String) {
    let opts = ClusterOpts {
        settings: crate::settings(30, 10, 10),
        ..ClusterOpts::default()
    };
    let c = TestCluster::start(name, opts).await;
    let leader = c.wait_for_leader(Duration::from_secs(120)).await;
    let rs = c.others(&[&leader]);
    let rs: Vec<&str> = rs.iter().map(String::as_str).collect();
    c.wait_streaming(&leader, &rs, Duration::from_secs(120))
        .await;
    (c, leader)
}

/// Runs wrk; returns (requests/s, p99 text, non-2xx count text) from its output.
fn wrk(url: &str, o: &Opts) -> anyhow::Result<(String, String, String)> {
    let out = Command::new("wrk")
        .args([
            &format!("-t{}", o.threads),
            &format!("-c{}", o.connections),
            &format!("-d{}s", o.seconds),
            "--latency",
            url,
        ])
        .output()
        .map_err(|e| anyhow::anyhow!("wrk not found ({e}): apt-get install wrk"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string();
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string();
    let non2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "0".into());
    Ok((rps, p99, non2xx))
}

pub async fn primary_endpoint(o: Opts) -> anyhow::Result<()> {
    let (c, leader) = running_cluster("bench_api").await;
    let url = format!("{}/primary", c.node(&leader).api_base());
    let (rps, p99, non2xx) = wrk(&url, &o)?;
    println!(
        "\n## GET /primary on the leader (wrk -t{} -c{} -d{}s --latency)",
        o.threads, o.connections, o.seconds
    );
    println!("- {rps} requests/s, p99 {p99} (non-2xx: {non2xx})");

    // Freeze the leader's PostgreSQL (postmaster and every child).
    let frozen = c.node(&leader).freeze_postgres();
    let (rps2, p99b, non2xx2) = wrk(&url, &o)?;
    ha_tests::agent::AgentProc::thaw_postgres(&frozen);
    println!(
        "- while PostgreSQL is SIGSTOPped: {rps2} requests/s, p99 {p99b} (non-2xx: {non2xx2}; the agent answers 503 once it sees PostgreSQL not answering)"
    );
    println!("- command: {}", command());
    Ok(())
}

pub async fn hactl_list(_o: Opts) -> anyhow::Result<()> {
    let hactl = workspace_root().join("target/release/hactl");
    anyhow::ensure!(
        hactl.exists(),
        "build hactl first: cargo build --release -p hactl"
    );
    let (c, _) = running_cluster("bench_hactl").await;
    let cfg = c.nodes[0].config_path();
    let cmd = format!("{} -c {} list", hactl.display(), cfg.display());
    let out = Command::new("hyperfine")
        .args([
            "-N",
            "--warmup",
            "3",
            "--runs",
            "50",
            "--export-json",
            "/dev/stdout",
            &cmd,
        ])
        .output()
        .map_err(|e| anyhow::anyhow!("hyperfine not found ({e}): apt-get install hyperfine"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let json_start = text.find("{\n").or_else(|| text.find('{')).unwrap_or(0);
    let v: serde_json::Value = serde_json::from_str(&text[json_start..]).unwrap_or_default();
    let r = &v["results"][0];
    println!("\n## hactl list against a local 3-node cluster (hyperfine -N --warmup 3 --runs 50)");
    println!(
        "- mean {:.1} ms, median {:.1} ms, max {:.1} ms",
        r["mean"].as_f64().unwrap_or(f64::NAN) * 1000.0,
        r["median"].as_f64().unwrap_or(f64::NAN) * 1000.0,
        r["max"].as_f64().unwrap_or(f64::NAN) * 1000.0
    );
    println!("- command: {}", command());
    Ok(())
}
