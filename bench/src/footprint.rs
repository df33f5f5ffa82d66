//! An idle 3-node cluster: each agent's resident memory and CPU time (from /proc), and the
//! gRPC messages etcd receives (its own `grpc_server_msg_received_total`), over a window;
//! then the same with HAProxy health-checking the agents at the shipped configuration's rate.

use std::time::{Duration, Instant};

use clap::Args;
use ha_tests::cluster::{Opts as ClusterOpts, TestCluster};
use ha_tests::haproxy::HaproxyProc;

use crate::stats::command;

/// Options of the idle benchmark.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Measuring window in seconds.
    #[arg(long, default_value_t = 120)]
    pub seconds: u64,
    /// Settling time before measuring, seconds.
    #[arg(long, default_value_t = 30)]
    pub settle: u64,
}

/// (resident KiB, CPU seconds used so far) of `pid`.
fn proc_usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // After the command: state(0) ... utime(11) stime(12), in clock ticks.
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (rss, ticks / hz)
}

struct Window {
    rss_kib: Vec<u64>,
    cpu_per_min: Vec<f64>,
    etcd_per_sec: f64,
    /// Messages per method in the window.
    by_method: Vec<(String, u64)>,
}

const METHODS: [&str; 9] = [
    "Range",
    "Put",
    "Txn",
    "DeleteRange",
    "LeaseGrant",
    "LeaseKeepAlive",
    "LeaseRevoke",
    "Watch",
    "LeaseTimeToLive",
];

async fn per_method(c: &TestCluster) -> Vec<u64> {
    let text = c.etcd.metrics_text().await;
    METHODS
        .iter()
        .map(|m| ha_tests::etcd::grpc_msgs_received(&text, Some(m)))
        .collect()
}

async fn measure(c: &TestCluster, seconds: u64) -> Window {
    let pids: Vec<u32> = c.nodes.iter().filter_map(|n| n.pid()).collect();
    let before: Vec<(u64, f64)> = pids.iter().map(|p| proc_usage(*p)).collect();
    let msgs0 = c.etcd.grpc_msgs_received(None).await;
    let m0 = per_method(c).await;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let msgs1 = c.etcd.grpc_msgs_received(None).await;
    let m1 = per_method(c).await;
    let secs = t0.elapsed().as_secs_f64();
    let after: Vec<(u64, f64)> = pids.iter().map(|p| proc_usage(*p)).collect();
    Window {
        rss_kib: after.iter().map(|a| a.0).collect(),
        cpu_per_min: before
            .iter()
            .zip(&after)
            .map(|(b, a)| (a.1 - b.1) * 60.0 / secs)
            .collect(),
        // Minus the one metrics request per sample is not needed: /metrics is HTTP, not gRPC.
        etcd_per_sec: msgs1.saturating_sub(msgs0) as f64 / secs,
        by_method: METHODS
            .iter()
            .zip(m0.iter().zip(&m1))
            .map(|(m, (a, b))| (m.to_string(), b.saturating_sub(*a)))
            .filter(|(_, n)| *n > 0)
            .collect(),
    }
}

fn report(title: &str, w: &Window) {
    println!("\n## {title}");
    for (i, (rss, cpu)) in w.rss_kib.iter().zip(&w.cpu_per_min).enumerate() {
        println!(
            "- node{}: RSS {:.1} MB, CPU {:.3} s per minute",
            i + 1,
            *rss as f64 / 1024.0,
            cpu
        );
    }
    let methods: Vec<String> = w
        .by_method
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect();
    println!(
        "- etcd: {:.3} gRPC messages received per second (whole cluster; in the window: {})",
        w.etcd_per_sec,
        methods.join(", ")
    );
}

pub async fn idle(o: Opts) -> anyhow::Result<()> {
    let opts = ClusterOpts {
        settings: crate::settings(30, 10, 10),
        ..ClusterOpts::default()
    };
    let c = TestCluster::start("bench_idle", opts).await;
    let leader = c.wait_for_leader(Duration::from_secs(120)).await;
    let rs = c.others(&[&leader]);
    let rs: Vec<&str> = rs.iter().map(String::as_str).collect();
    c.wait_streaming(&leader, &rs, Duration::from_secs(120))
        .await;
    tokio::time::sleep(Duration::from_secs(o.settle)).await;

    let w = measure(&c, o.seconds).await;
    report(
        &format!(
            "idle 3-node cluster, no HAProxy, {} s window (ttl 30, loop_wait 10)",
            o.seconds
        ),
        &w,
    );

    let m = [
        (c.nodes[0].pg_port, c.nodes[0].api_port),
        (c.nodes[1].pg_port, c.nodes[1].api_port),
        (c.nodes[2].pg_port, c.nodes[2].api_port),
    ];
    let _hp = HaproxyProc::start(&m, &c.log_dir.join("haproxy.log"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let w = measure(&c, o.seconds).await;
    report(
        &format!(
            "the same cluster with HAProxy checking every agent (haproxy/haproxy.cfg), {} s window",
            o.seconds
        ),
        &w,
    );
    println!("- command: {}", command());
    Ok(())
}
