//! Injecting and healing each nemesis. Every fault writes a `fault` event when it is in
//! place (with what exactly was done) and a `heal` event when it is undone; the campaign then
//! waits for a healthy cluster.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::Signal;

use crate::cluster::Cluster;
use crate::events::{Event, EventLog};
use crate::net;
use crate::observe::Observer;
use crate::rng::Rng;
use crate::schedule::{Nemesis, Planned};

/// Switchovers in a storm.
const STORM: usize = 5;
/// Added latency and its jitter.
const LATENCY: Duration = Duration::from_millis(200);
const JITTER: Duration = Duration::from_millis(50);

/// What a fault needs.
pub struct Ctx<'a> {
    /// The cluster.
    pub cluster: &'a mut Cluster,
    /// The observer.
    pub observer: &'a Observer,
    /// The events file.
    pub log: &'a EventLog,
    /// How long partitions, kills and latency are held.
    pub hold: Duration,
    /// This program (the delayer runs as `<exe> delay`).
    pub exe: PathBuf,
}

impl Ctx<'_> {
    /// Records the fault, with `t` the moment its injection began (writes acknowledged from
    /// then on belong to it).
    fn fault(&self, p: &Planned, t: f64, target: Option<&str>, detail: String) {
        tracing::info!(id = p.id, nemesis = %p.nemesis, target, %detail, "--- fault injected");
        self.log.push(&Event::Fault {
            t,
            done: Some(self.log.t()),
            id: p.id,
            nemesis: p.nemesis,
            target: target.map(str::to_string),
            detail,
        });
    }

    fn healed(&self, p: &Planned) {
        tracing::info!(id = p.id, nemesis = %p.nemesis, "--- fault healed");
        self.log.push(&Event::Heal {
            t: self.log.t(),
            id: p.id,
        });
    }

    fn note(&self, p: &Planned, what: String) {
        tracing::info!(id = p.id, %what, "note");
        self.log.push(&Event::Note {
            t: self.log.t(),
            id: p.id,
            what,
        });
    }

    /// 1.5 x ttl: how long an agent stays dead or frozen.
    fn agent_outage(&self) -> Duration {
        Duration::from_millis(self.cluster.settings.ttl * 1500)
    }
}

/// Applies `p` to `leader` (the primary of a healthy cluster), holds it and heals it.
pub async fn apply(ctx: &mut Ctx<'_>, p: &Planned, leader: &str) -> anyhow::Result<()> {
    let mut rng = Rng::new(p.seed);
    let li = ctx
        .cluster
        .index(leader)
        .with_context(|| format!("no member {leader}"))?;
    let host = ctx.cluster.topo.members[li].clone();
    let others: Vec<Ipv4Addr> = ctx
        .cluster
        .topo
        .members
        .iter()
        .filter(|h| h.name != leader)
        .map(|h| h.addr)
        .collect();
    let etcd: Vec<Ipv4Addr> = ctx.cluster.topo.etcd.iter().map(|h| h.addr).collect();
    let client = ctx.cluster.topo.client.addr;
    let hold = ctx.hold;
    let t0 = ctx.log.t();
    match p.nemesis {
        Nemesis::KillMember => {
            let killed = ctx.cluster.kill_member(li).await;
            ctx.fault(
                p,
                t0,
                Some(leader),
                format!("kill -9 of every process on {}: {killed:?}", host.ns),
            );
            tokio::time::sleep(hold).await;
            ctx.cluster.start_agent(li)?;
            ctx.healed(p);
        }
        Nemesis::KillPostgres => {
            let killed = ctx.cluster.kill_postgres(li);
            if killed.is_empty() {
                bail!("no postgres process on {}", host.ns);
            }
            ctx.fault(
                p,
                t0,
                Some(leader),
                format!("kill -9 of PostgreSQL: {killed:?}"),
            );
            // Nothing to undo: the agent restarts PostgreSQL itself.
            ctx.healed(p);
        }
        Nemesis::KillAgent => {
            let pid = ctx.cluster.agent_pid(li);
            ctx.cluster.kill_agent(li).await;
            ctx.fault(
                p,
                t0,
                Some(leader),
                format!("kill -9 of ha-agent pid {pid:?}"),
            );
            tokio::time::sleep(ctx.agent_outage()).await;
            ctx.cluster.start_agent(li)?;
            ctx.healed(p);
        }
        Nemesis::StopAgent => {
            let pid = ctx.cluster.signal_agent(li, Signal::SIGSTOP);
            ctx.fault(
                p,
                t0,
                Some(leader),
                format!("SIGSTOP of ha-agent pid {pid:?}"),
            );
            tokio::time::sleep(ctx.agent_outage()).await;
            ctx.cluster.signal_agent(li, Signal::SIGCONT);
            ctx.healed(p);
        }
        Nemesis::PartitionFromEtcd => partition(ctx, p, leader, t0, &host.ns, &etcd, false).await?,
        Nemesis::PartitionFromMembers => {
            partition(ctx, p, leader, t0, &host.ns, &others, false).await?
        }
        Nemesis::Isolate => {
            let all: Vec<Ipv4Addr> = etcd
                .iter()
                .chain(&others)
                .copied()
                .chain([client])
                .collect();
            partition(ctx, p, leader, t0, &host.ns, &all, false).await?;
        }
        Nemesis::AsymmetricCut => {
            let all: Vec<Ipv4Addr> = etcd
                .iter()
                .chain(&others)
                .copied()
                .chain([client])
                .collect();
            partition(ctx, p, leader, t0, &host.ns, &all, true).await?;
        }
        Nemesis::EtcdQuorumLoss => {
            let keep = rng.below(3) as usize;
            let stopped: Vec<usize> = (0..3).filter(|i| *i != keep).collect();
            for &i in &stopped {
                ctx.cluster.kill_etcd(i).await;
            }
            let names: Vec<&str> = stopped
                .iter()
                .map(|&i| ctx.cluster.topo.etcd[i].name.as_str())
                .collect();
            ctx.fault(p, t0, None, format!("kill -9 of {names:?} (quorum lost)"));
            tokio::time::sleep(hold).await;
            for &i in &stopped {
                ctx.cluster.start_etcd(i)?;
            }
            ctx.healed(p);
        }
        Nemesis::Switchover => {
            let mut cands: Vec<String> = ctx
                .cluster
                .topo
                .members
                .iter()
                .map(|h| h.name.clone())
                .filter(|n| n != leader)
                .collect();
            rng.shuffle(&mut cands);
            // Every replica, in a random order: the first one the agent accepts. In
            // synchronous mode only the sync standby is a valid candidate (412 for the
            // other, as Patroni answers), so one fixed candidate could never be switched to.
            ctx.fault(
                p,
                t0,
                Some(leader),
                format!("switchover to the first accepted of {cands:?}"),
            );
            let to = switchover(ctx, p, leader, &cands).await?;
            ctx.note(p, format!("switched over to {to}"));
            ctx.healed(p);
        }
        Nemesis::SwitchoverStorm => {
            ctx.fault(p, t0, Some(leader), format!("{STORM} switchovers in a row"));
            let mut cur = leader.to_string();
            for step in 1..=STORM {
                let mut cands: Vec<String> = ctx
                    .cluster
                    .topo
                    .members
                    .iter()
                    .map(|h| h.name.clone())
                    .filter(|n| *n != cur)
                    .collect();
                rng.shuffle(&mut cands);
                let to = switchover(ctx, p, &cur, &cands).await?;
                ctx.note(p, format!("storm step {step}: {cur} -> {to}"));
                cur = to;
            }
            ctx.healed(p);
        }
        Nemesis::Latency => {
            let log = ctx
                .cluster
                .settings
                .log_dir
                .join(format!("delayer-{}.log", p.id));
            let args = vec![
                "delay".to_string(),
                format!("--delay-ms={}", LATENCY.as_millis()),
                format!("--jitter-ms={}", JITTER.as_millis()),
                format!("--seed={}", p.seed),
            ];
            let mut delayer =
                crate::procs::spawn_in(&host.ns, false, &ctx.exe, &args, &[], &log, true)?;
            net::queue_outgoing(&host.ns)?;
            ctx.fault(
                p,
                t0,
                Some(leader),
                format!(
                    "{} ms ± {} ms on every packet {} sends",
                    LATENCY.as_millis(),
                    JITTER.as_millis(),
                    host.name
                ),
            );
            tokio::time::sleep(hold).await;
            net::heal(&host.ns)?;
            // Closing stdin makes the delayer release what it holds and exit.
            drop(delayer.stdin.take());
            if tokio::time::timeout(Duration::from_secs(5), delayer.wait())
                .await
                .is_err()
            {
                let _ = delayer.start_kill();
                let _ = delayer.wait().await;
            }
            ctx.healed(p);
        }
    }
    Ok(())
}

async fn partition(
    ctx: &mut Ctx<'_>,
    p: &Planned,
    leader: &str,
    t0: f64,
    ns: &str,
    peers: &[Ipv4Addr],
    incoming_only: bool,
) -> anyhow::Result<()> {
    if incoming_only {
        net::cut_incoming(ns, peers)?;
    } else {
        net::cut(ns, peers)?;
    }
    let how = if incoming_only {
        "dropping packets from"
    } else {
        "no packets to or from"
    };
    ctx.fault(p, t0, Some(leader), format!("{ns}: {how} {peers:?}"));
    tokio::time::sleep(ctx.hold).await;
    net::heal(ns)?;
    ctx.healed(p);
    Ok(())
}

/// Switches over from `leader` to the first of `candidates` that the agent accepts, retrying
/// while none is ready (a member that was primary a moment ago is still rejoining). Returns
/// the new leader.
async fn switchover(
    ctx: &Ctx<'_>,
    p: &Planned,
    leader: &str,
    candidates: &[String],
) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        for c in candidates {
            let (code, body) = ctx.observer.switchover(leader, c).await;
            if code == 200 {
                ctx.note(
                    p,
                    format!("POST /switchover {leader} -> {c}: {code} {}", body.trim()),
                );
                return Ok(ctx.observer.leader_key().await.unwrap_or_else(|| c.clone()));
            }
            last = format!("{code} {}", body.trim());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ctx.note(
        p,
        format!("switchover from {leader} never accepted: {last}"),
    );
    bail!("switchover from {leader} to {candidates:?} not done within 120 s: {last}")
}
