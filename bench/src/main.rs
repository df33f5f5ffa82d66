//! `ha-bench`: measures what the issues set targets for, against real etcd, PostgreSQL 15,
//! HAProxy and release `ha-agent` processes (the integration-test harness), and prints each
//! figure with the command that reproduces it.
//!
//! Build first: `cargo build --release -p ha-agent -p hactl -p ha-bench`, then e.g.
//! `target/release/ha-bench failover --runs 5`. Run as root (agents and PostgreSQL then run as
//! the `postgres` user) or as that user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod backup;
mod commit;
mod faults;
mod footprint;
mod stats;
mod transitions;

use clap::{Parser, Subcommand};

/// hapg benchmarks.
#[derive(Parser, Debug)]
#[command(name = "ha-bench")]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// kill -9 of the leader node: time to a writable primary through HAProxy, and the killed
    /// node's rejoin time after restart.
    Failover(transitions::Opts),
    /// SIGTERM of the leader's agent: time to a writable primary through HAProxy.
    Sigterm(transitions::Opts),
    /// POST /switchover: write gap through HAProxy.
    Switchover(transitions::Opts),
    /// One idle 3-node cluster: agent RSS and CPU, etcd requests per second.
    Idle(footprint::Opts),
    /// `GET /primary` throughput and p99 with wrk, also while PostgreSQL is SIGSTOPped.
    Api(api::Opts),
    /// `hactl list` latency with hyperfine.
    Hactl(api::Opts),
    /// A fault aimed at the leader for 1.5 x ttl: write gap, two-primary time, lost writes.
    Faults(faults::Opts),
    /// pgbench commit latency, asynchronous and then in synchronous_mode.
    CommitLatency(commit::Opts),
    /// Backup and restore throughput against the disk's raw copy speed; a replica from the
    /// repository against pg_basebackup, with the primary's CPU during each.
    Backup(backup::Opts),
}

fn main() -> anyhow::Result<()> {
    ha_tests::procs::init_tracing();
    let args = Args::parse();
    let rel = ha_tests::procs::workspace_root().join("target/release/ha-agent");
    anyhow::ensure!(
        rel.exists(),
        "build the release binaries first: cargo build --release -p ha-agent -p hactl -p ha-bench"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        match args.what {
            What::Failover(o) => transitions::failover(o).await,
            What::Sigterm(o) => transitions::sigterm(o).await,
            What::Switchover(o) => transitions::switchover(o).await,
            What::Idle(o) => footprint::idle(o).await,
            What::Api(o) => api::primary_endpoint(o).await,
            What::Hactl(o) => api::hactl_list(o).await,
            What::Faults(o) => faults::run(o).await,
            What::CommitLatency(o) => commit::latency(o).await,
            What::Backup(o) => backup::run(o).await,
        }
    })
}

/// Cluster settings for benchmarks: Patroni's default timing unless overridden, `fsync` on
/// (as in production), the release agent, logs at info.
pub fn settings(ttl: u64, loop_wait: u64, retry_timeout: u64) -> ha_tests::agent::ClusterSettings {
    ha_tests::agent::ClusterSettings {
        ttl,
        loop_wait,
        retry_timeout,
        fsync: true,
        agent_bin: Some(ha_tests::procs::workspace_root().join("target/release/ha-agent")),
        agent_log: Some("info".into()),
        ..ha_tests::agent::ClusterSettings::default()
    }
}
