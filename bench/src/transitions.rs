//! Failover, SIGTERM handover and switchover, measured through HAProxy with a client that
//! writes every 10 ms (the `Writer` of the integration tests), on one cluster reused across
//! runs.

use std::time::{Duration, Instant};

use clap::Args;
use ha_tests::cluster::{Opts as ClusterOpts, TestCluster};
use ha_tests::procs::wait_for;
use ha_tests::writer::{Writer, longest_gap};
use nix::sys::signal::Signal;
use tokio::sync::watch;

use crate::stats::{command, list, summary};
use ha_tests::restream;

/// Options shared by the transition benchmarks.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Number of runs.
    #[arg(long, default_value_t = 5)]
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
    /// `synchronous_mode: true` (the switchover candidate is then the sync standby).
    #[arg(long)]
    pub sync: bool,
}

async fn cluster(name: &str, o: &Opts) -> TestCluster {
    let mut settings = crate::settings(o.ttl, o.loop_wait, o.retry_timeout);
    if o.sync {
        settings.extra_dcs = "    synchronous_mode: true\n".into();
    }
    let opts = ClusterOpts {
        settings,
        haproxy: true,
        ..ClusterOpts::default()
    };
    TestCluster::start(name, opts).await
}

/// Waits for a healthy cluster with HAProxy routing to its leader; returns the leader.
async fn settled(c: &TestCluster) -> String {
    let leader = c.wait_healthy(Duration::from_secs(120)).await;
    c.haproxy
        .as_ref()
        .expect("haproxy")
        .wait_routes_to(&leader, Duration::from_secs(30))
        .await;
    leader
}

/// Records when etcd deletes the leader key (the lease expired or was released).
async fn watch_leader_deletion(c: &TestCluster) -> watch::Receiver<Option<Instant>> {
    let (tx, rx) = watch::channel(None);
    let mut client = etcd_client::Client::connect([c.etcd.endpoint()], None)
        .await
        .expect("etcd client");
    let key = format!("{}leader", c.prefix());
    let mut stream = client.watch(key, None).await.expect("watch leader");
    tokio::spawn(async move {
        while let Ok(Some(resp)) = stream.message().await {
            if resp
                .events()
                .iter()
                .any(|e| e.event_type() == etcd_client::EventType::Delete)
            {
                let _ = tx.send(Some(Instant::now()));
                break;
            }
        }
    });
    rx
}

pub async fn failover(o: Opts) -> anyhow::Result<()> {
    let mut c = cluster("bench_failover", &o).await;
    let hp = c.haproxy.as_ref().expect("haproxy").primary_port;
    let (mut total, mut after_expiry, mut rejoin) = (Vec::new(), Vec::new(), Vec::new());
    let mut restreams = Vec::new();
    for run in 1..=o.runs {
        let leader = settled(&c).await;
        if o.sync {
            // Until the key names a standby nobody may take over (the leader may hold commits
            // no standby has): Patroni's rule too.
            sync_standby(&c, &leader).await;
        }
        let w = Writer::start(hp, Duration::from_millis(10)).await;
        w.wait_for_ack_from(c.node(&leader).pg_port, Duration::from_secs(30))
            .await;
        // Kill at a random point of the leader's renewal cycle (as a real crash would), not in
        // lockstep with it: the remaining lease at the kill is what a failover waits for.
        let jitter_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()) % (o.loop_wait * 1000));
        tokio::time::sleep(Duration::from_millis(jitter_ms)).await;
        let deleted = watch_leader_deletion(&c).await;
        let mut probes = Vec::new();
        for r in c.others(&[&leader]) {
            let p = restream::probe(&c, &r, 1, Duration::from_secs(o.ttl + 60)).await;
            probes.push((r, p));
        }
        let t_kill = Instant::now();
        c.node_mut(&leader).kill_node().await;
        let new = c
            .wait_for_leader_other_than(&leader, Duration::from_secs(o.ttl + 60))
            .await;
        let seen = restream::of(probes, &new).await;
        restreams.push(seen.and_then(|s| s.restream()));
        let first = w
            .wait_for_ack_from(c.node(&new).pg_port, Duration::from_secs(60))
            .await;
        let expired = (*deleted.borrow()).expect("the leader key was deleted");
        let _ = w.stop().await;
        total.push(first.acked - t_kill);
        after_expiry.push(first.acked.saturating_duration_since(expired));
        println!(
            "run {run}: killed {leader}; lease expired after {:.2} s; {new} took writes through HAProxy {:.3} s after the expiry ({:.2} s after the kill); the other replica streamed from it {} after its promotion",
            (expired - t_kill).as_secs_f64(),
            first.acked.saturating_duration_since(expired).as_secs_f64(),
            (first.acked - t_kill).as_secs_f64(),
            secs(restreams.last().copied().flatten())
        );
        // The killed node comes back and must stream from the new leader again.
        let settings = c.settings.clone();
        let t_start = Instant::now();
        c.node_mut(&leader).start(&settings);
        c.wait_streaming(&new, &[leader.as_str()], Duration::from_secs(120))
            .await;
        rejoin.push(t_start.elapsed());
        println!(
            "run {run}: restarted {leader} streams from {new} after {:.2} s",
            t_start.elapsed().as_secs_f64()
        );
    }
    println!(
        "\n## kill -9 of the leader node (ttl {}, loop_wait {}, retry_timeout {}{})",
        o.ttl,
        o.loop_wait,
        o.retry_timeout,
        if o.sync { ", synchronous_mode" } else { "" }
    );
    println!(
        "- kill -> writes accepted through HAProxy: {}",
        summary(&total)
    );
    println!(
        "- lease expiry -> writes accepted through HAProxy: {}  [{}]",
        summary(&after_expiry),
        list(&after_expiry)
    );
    println!(
        "- restarted node streaming again: {}  [{}]",
        summary(&rejoin),
        list(&rejoin)
    );
    print_restream("the other replica", &restreams);
    println!("- command: {}", command());
    Ok(())
}

pub async fn sigterm(o: Opts) -> anyhow::Result<()> {
    let mut c = cluster("bench_sigterm", &o).await;
    let hp = c.haproxy.as_ref().expect("haproxy").primary_port;
    let (mut handover, mut gaps) = (Vec::new(), Vec::new());
    for run in 1..=o.runs {
        let leader = settled(&c).await;
        let w = Writer::start(hp, Duration::from_millis(10)).await;
        w.wait_for_ack_from(c.node(&leader).pg_port, Duration::from_secs(30))
            .await;
        let t0 = Instant::now();
        c.node(&leader).signal(Signal::SIGTERM);
        let new = c
            .wait_for_leader_other_than(&leader, Duration::from_secs(o.ttl + 60))
            .await;
        let first = w
            .wait_for_ack_from(c.node(&new).pg_port, Duration::from_secs(60))
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (acks, _) = w.stop().await;
        handover.push(first.acked - t0);
        gaps.push(longest_gap(&acks, t0 - Duration::from_millis(100)));
        println!(
            "run {run}: SIGTERM to {leader}; {new} took writes through HAProxy {:.3} s later (write gap {:.3} s)",
            (first.acked - t0).as_secs_f64(),
            gaps.last().map_or(0.0, Duration::as_secs_f64)
        );
        let code = c.node_mut(&leader).wait_exit(Duration::from_secs(60)).await;
        anyhow::ensure!(code == Some(0), "agent exit code {code:?}");
        let settings = c.settings.clone();
        c.node_mut(&leader).start(&settings);
        c.wait_streaming(&new, &[leader.as_str()], Duration::from_secs(120))
            .await;
    }
    println!("\n## SIGTERM of the leader's agent");
    println!(
        "- SIGTERM -> writes accepted by the new primary through HAProxy: {}  [{}]",
        summary(&handover),
        list(&handover)
    );
    println!("- write gap through HAProxy: {}", summary(&gaps));
    println!("- command: {}", command());
    Ok(())
}

pub async fn switchover(o: Opts) -> anyhow::Result<()> {
    let c = cluster("bench_switchover", &o).await;
    let hp = c.haproxy.as_ref().expect("haproxy").primary_port;
    let (mut gaps, mut api, mut restreams) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=o.runs {
        let leader = settled(&c).await;
        let candidate = if o.sync {
            sync_standby(&c, &leader).await
        } else {
            c.others(&[&leader]).remove(run % 2)
        };
        // The candidate check reads the candidate's member record, which its agent refreshes
        // within a second of streaming: a switchover right after the last one waits for it.
        wait_for(
            "the candidate's record says it streams",
            Duration::from_secs(30),
            || async {
                let (_, v) = c.node(&candidate).api_get("/patroni").await?;
                (v["replication_state"] == "streaming").then_some(())
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let w = Writer::start(hp, Duration::from_millis(10)).await;
        w.wait_for_ack_from(c.node(&leader).pg_port, Duration::from_secs(30))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let probe = restream::probe(&c, &candidate, 2, Duration::from_secs(30)).await;
        let t0 = Instant::now();
        let resp = ha_tests::agent::http()
            .post(format!("{}/switchover", c.node(&leader).api_base()))
            .json(&serde_json::json!({"leader": leader, "candidate": candidate}))
            .send()
            .await?;
        let status = resp.status();
        let body = resp.text().await?;
        api.push(t0.elapsed());
        anyhow::ensure!(status.is_success(), "switchover refused: {status} {body}");
        w.wait_for_ack_from(c.node(&candidate).pg_port, Duration::from_secs(30))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (acks, _) = w.stop().await;
        let gap = longest_gap(&acks, t0 - Duration::from_millis(100));
        let seen = restream::of(vec![(candidate.clone(), probe)], &candidate).await;
        restreams.push(seen.and_then(|s| s.restream()));
        println!(
            "run {run}: {leader} -> {candidate}: write gap through HAProxy {:.3} s; API answered in {:.3} s ({body}); both replicas streamed from it {} after its promotion",
            gap.as_secs_f64(),
            api.last().map_or(0.0, Duration::as_secs_f64),
            secs(restreams.last().copied().flatten())
        );
        gaps.push(gap);
    }
    println!(
        "\n## switchover (POST /switchover){}, client writing every 10 ms through HAProxy",
        if o.sync { " in synchronous_mode" } else { "" }
    );
    println!("- write gap: {}  [{}]", summary(&gaps), list(&gaps));
    println!("- POST /switchover answered (200) after: {}", summary(&api));
    print_restream("both replicas", &restreams);
    println!("- command: {}", command());
    Ok(())
}

/// The member the `sync` key names as `leader`'s standby, once it names one.
async fn sync_standby(c: &TestCluster, leader: &str) -> String {
    wait_for(
        "the sync key to name a standby",
        Duration::from_secs(60),
        || async {
            let v: serde_json::Value = serde_json::from_str(&c.etcd_get("sync").await?).ok()?;
            let s = v["sync_standby"].as_str()?.split(',').next()?.to_string();
            (v["leader"] == leader && !s.is_empty()).then_some(s)
        },
    )
    .await
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("(not seen)".into(), |d| format!("{:.3} s", d.as_secs_f64()))
}

/// Promotion -> `who` streaming from the new leader, over the runs that saw it.
fn print_restream(who: &str, runs: &[Option<Duration>]) {
    let seen: Vec<Duration> = runs.iter().flatten().copied().collect();
    println!(
        "- promotion -> {who} streaming from the new leader: {}  [{}]{}",
        summary(&seen),
        list(&seen),
        if seen.len() < runs.len() {
            format!(" ({} runs not seen)", runs.len() - seen.len())
        } else {
            String::new()
        }
    );
}
