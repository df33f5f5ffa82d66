//! Faults aimed at the leader, each held for 1.5 x ttl and then healed, at Patroni's default
//! timing, with HAProxy checking as in Patroni's sample configuration (`inter 1s fall 2 rise
//! 1`, `timeout check 5s`), a writer through HAProxy every 20 ms and a direct writer on every
//! member (new connection every 100 ms). Reports what users ask: the longest write gap
//! through HAProxy, how long two members accepted writes at once, and how many acknowledged
//! writes (direct or through HAProxy) are missing on the final leader.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use ha_tests::agent::ClusterSettings;
use ha_tests::cluster::{Opts as ClusterOpts, TestCluster};
use ha_tests::direct::{DirectWriters, overlaps};
use ha_tests::procs::signal;
use ha_tests::writer::{Writer, longest_gap};
use nix::sys::signal::Signal;

use crate::stats::{command, list, summary};

/// The fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    /// SIGSTOP of the leader's agent.
    Sigstop,
    /// kill -9 of the leader's agent alone (PostgreSQL keeps running), restarted after.
    AgentKill,
    /// The leader cut off from etcd (its etcd connections blackholed).
    EtcdCut,
    /// etcd SIGSTOPped, `failsafe_mode: true`.
    EtcdDownFailsafe,
    /// etcd SIGSTOPped, failsafe mode off.
    EtcdDown,
}

/// `ha-bench faults` options.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// The fault.
    #[arg(long, value_enum)]
    pub fault: Fault,
    /// Number of runs.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Lease TTL (Patroni's default 30).
    #[arg(long, default_value_t = 30)]
    pub ttl: u64,
    /// loop_wait (Patroni's default 10).
    #[arg(long, default_value_t = 10)]
    pub loop_wait: u64,
    /// retry_timeout (Patroni's default 10).
    #[arg(long, default_value_t = 10)]
    pub retry_timeout: u64,
}

/// One run's figures.
struct Run {
    gap: Duration,
    overlap: Duration,
    lost_direct: usize,
    lost_haproxy: usize,
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    let settings = ClusterSettings {
        extra_dcs: if o.fault == Fault::EtcdDownFailsafe {
            "    failsafe_mode: true\n".into()
        } else {
            String::new()
        },
        ..crate::settings(o.ttl, o.loop_wait, o.retry_timeout)
    };
    let mut c = TestCluster::start(
        &format!("bench_fault_{:?}", o.fault).to_lowercase(),
        ClusterOpts {
            settings,
            haproxy: true,
            haproxy_patroni_checks: true,
            etcd_proxies: o.fault == Fault::EtcdCut,
            ..ClusterOpts::default()
        },
    )
    .await;
    let mut runs = Vec::new();
    for n in 1..=o.runs {
        let r = one(&mut c, &o).await?;
        println!(
            "run {n}: longest write gap through HAProxy {:.2} s; two writable primaries {:.2} s; acknowledged writes lost: {} direct, {} through HAProxy",
            r.gap.as_secs_f64(),
            r.overlap.as_secs_f64(),
            r.lost_direct,
            r.lost_haproxy
        );
        runs.push(r);
    }
    let gaps: Vec<Duration> = runs.iter().map(|r| r.gap).collect();
    let overlap: Vec<Duration> = runs.iter().map(|r| r.overlap).collect();
    println!(
        "\n## {:?} for 1.5 x ttl (ttl {}, loop_wait {}, retry_timeout {}; HAProxy inter 1s fall 2 rise 1)",
        o.fault, o.ttl, o.loop_wait, o.retry_timeout
    );
    println!(
        "- longest write gap through HAProxy: {}  [{}]",
        summary(&gaps),
        list(&gaps)
    );
    println!(
        "- two writable primaries: {}  [{}]",
        summary(&overlap),
        list(&overlap)
    );
    println!(
        "- acknowledged writes lost: direct [{}], through HAProxy [{}]",
        runs.iter()
            .map(|r| r.lost_direct.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        runs.iter()
            .map(|r| r.lost_haproxy.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("- command: {}", command());
    Ok(())
}

async fn one(c: &mut TestCluster, o: &Opts) -> anyhow::Result<Run> {
    let leader = c.wait_healthy(Duration::from_secs(180)).await;
    let haproxy = c.haproxy.as_ref().expect("haproxy");
    haproxy
        .wait_routes_to(&leader, Duration::from_secs(30))
        .await;
    let direct = DirectWriters::start(c, &leader).await;
    let w = Writer::start(haproxy.primary_port, Duration::from_millis(20)).await;
    w.wait_for_ack_from(c.node(&leader).pg_port, Duration::from_secs(30))
        .await;
    let hold = Duration::from_secs(o.ttl) * 3 / 2;
    let t0 = Instant::now();
    match o.fault {
        Fault::Sigstop => {
            let pid = c.node(&leader).pid().expect("agent runs");
            signal(pid, Signal::SIGSTOP);
            tokio::time::sleep(hold).await;
            signal(pid, Signal::SIGCONT);
        }
        Fault::AgentKill => {
            c.node_mut(&leader).kill_agent_only().await;
            tokio::time::sleep(hold).await;
            let s = c.settings.clone();
            c.node_mut(&leader).start(&s);
        }
        Fault::EtcdCut => {
            c.proxy_of(&leader).cut();
            tokio::time::sleep(hold).await;
            c.proxy_of(&leader).heal();
        }
        Fault::EtcdDown | Fault::EtcdDownFailsafe => {
            c.etcd.pause();
            tokio::time::sleep(hold).await;
            c.etcd.resume();
        }
    }
    let now_leader = c.wait_for_leader(Duration::from_secs(120)).await;
    let others = c.others(&[&now_leader]);
    let os: Vec<&str> = others.iter().map(String::as_str).collect();
    c.wait_streaming(&now_leader, &os, Duration::from_secs(180))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    direct.stop();
    let (acks, _) = w.stop().await;
    let overlap = overlaps(&direct.acks())
        .iter()
        .map(|o| o.length)
        .sum::<Duration>();
    let lost_direct = direct.missing_on(c, &now_leader).await.len();
    let ids: BTreeSet<i64> = c
        .node(&now_leader)
        .client()
        .await?
        .query("select id from w", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let lost_haproxy = acks.iter().filter(|a| !ids.contains(&a.id)).count();
    // The next run starts from an empty probe table.
    c.node(&now_leader)
        .client()
        .await?
        .batch_execute("truncate probe")
        .await?;
    Ok(Run {
        gap: longest_gap(&acks, t0),
        overlap,
        lost_direct,
        lost_haproxy,
    })
}
