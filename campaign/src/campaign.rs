//! One campaign, start to end: network, etcd, members, HAProxy, workload; then each planned
//! fault in turn (wait for a healthy cluster, inject, hold, heal, wait for a healthy cluster
//! again); then the final lookup of every acknowledged value on the final primary, and the
//! checker's report computed from the events file.
//!
//! Clean-up is not done here but by [`crate::guard::Guard`] in `main`, which runs however
//! this ends (error, panic, Ctrl-C, SIGTERM).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::analysis::{self, Report};
use crate::cluster::{Cluster, Settings};
use crate::events::{self, Clock, Event, EventLog, Table, to_ranges};
use crate::nemesis::{self, Ctx};
use crate::net::{Instance, Topology};
use crate::nsrt::NsRuntime;
use crate::observe::Observer;
use crate::schedule::Planned;
use crate::workload::{SCHEMA, Workload};

/// How to run a campaign.
#[derive(Debug, Clone)]
pub struct Options {
    /// The schedule's seed (also in the report).
    pub seed: u64,
    /// The faults, in order.
    pub schedule: Vec<Planned>,
    /// Member settings (timing, sync mode, binaries, directories).
    pub settings: Settings,
    /// How long a fault is held.
    pub hold: Duration,
    /// How long the cluster may take to become healthy after a heal.
    pub heal_timeout: Duration,
    /// Pause between a healthy cluster and the next fault.
    pub quiet: Duration,
    /// Period of the writer through HAProxy.
    pub interval: Duration,
    /// Where `events.jsonl`, `report.md` and `logs/` go.
    pub out: PathBuf,
    /// The command line, for the report.
    pub command: String,
    /// Which namespaces and network the run uses.
    pub instance: Instance,
}

/// Runs the campaign; returns the checker's report (also written to `<out>/report.md`).
pub async fn run(o: &Options) -> anyhow::Result<Report> {
    let topo = Topology::of(o.instance);
    topo.create().context("create the network")?;
    std::fs::create_dir_all(&o.settings.log_dir).context("create the log directory")?;
    std::fs::create_dir_all(&o.settings.data_dir).context("create the data directory")?;
    let events_path = o.out.join("events.jsonl");
    let log = EventLog::create(&events_path, Clock::start())?;
    let wall_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let s = &o.settings;
    log.push(&Event::Start {
        wall_ms,
        seed: o.seed,
        mode: if s.sync { "sync" } else { "async" }.into(),
        timing: [s.ttl, s.loop_wait, s.retry_timeout],
        command: o.command.clone(),
    });
    let flusher = {
        let log = log.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                log.flush();
            }
        })
    };
    let result = drive(o, topo, &log).await;
    flusher.abort();
    log.push(&Event::End { t: log.t() });
    log.flush();
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "campaign stopped early");
    }
    let report = analysis::analyze(&events::read(&events_path)?);
    let text = analysis::report::render(&report);
    std::fs::write(o.out.join("report.md"), &text).context("write report.md")?;
    println!("{text}");
    println!(
        "raw events: {}\nlogs: {}",
        events_path.display(),
        o.settings.log_dir.display()
    );
    result.map(|()| report)
}

async fn drive(o: &Options, topo: Topology, log: &EventLog) -> anyhow::Result<()> {
    let obs_rt = Arc::new(NsRuntime::start(&topo.observer.ns)?);
    let client_rt = NsRuntime::start(&topo.client.ns)?;
    let observer = Observer::new(obs_rt.clone(), topo.clone())?;
    let mut cluster = Cluster::new(topo.clone(), o.settings.clone());
    let result = schedule(o, &topo, log, &observer, &client_rt, &mut cluster).await;
    // PostgreSQL's logs live in the data directories, which are removed at the end: keep
    // them however the run ended (they explain a member that would not start).
    cluster.keep_postgres_logs();
    drop(client_rt);
    result
}

async fn schedule(
    o: &Options,
    topo: &Topology,
    log: &EventLog,
    observer: &Observer,
    client_rt: &NsRuntime,
    cluster: &mut Cluster,
) -> anyhow::Result<()> {
    let obs_rt = observer.runtime().clone();
    let bootstrap = Duration::from_secs(180);

    tracing::info!("--- starting etcd (3 members)");
    for i in 0..3 {
        cluster.start_etcd(i)?;
    }
    wait_etcd(observer, bootstrap).await?;
    tracing::info!("--- starting 3 members");
    for i in 0..3 {
        cluster.start_agent(i)?;
    }
    let primary = healthy(observer, log, 0, bootstrap).await?;
    cluster.start_haproxy()?;
    observer
        .execute(&primary, SCHEMA)
        .await
        .context("create the campaign tables")?;
    tracing::info!(%primary, "--- cluster healthy; starting the workload");
    let workload = Workload::start(client_rt, &obs_rt, topo, log, o.interval);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while workload.acks() == 0 {
        if tokio::time::Instant::now() > deadline {
            bail!("no write acknowledged through HAProxy within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(o.quiet).await;

    let exe = std::env::current_exe().context("find this program")?;
    let mut outcome = Ok(());
    for p in &o.schedule {
        let leader = match observer.wait_healthy(o.heal_timeout).await {
            Ok(l) => l,
            Err(why) => {
                outcome = Err(anyhow::anyhow!(
                    "cluster not healthy before fault #{}: {why}",
                    p.id
                ));
                break;
            }
        };
        tracing::info!(id = p.id, nemesis = %p.nemesis, %leader, "--- fault {} of {}", p.id, o.schedule.len());
        let mut ctx = Ctx {
            cluster,
            observer,
            log,
            hold: o.hold,
            exe: exe.clone(),
        };
        if let Err(e) = nemesis::apply(&mut ctx, p, &leader).await {
            log.push(&Event::Unhealed {
                t: log.t(),
                id: p.id,
                why: format!("the fault could not be applied or undone: {e:#}"),
            });
            outcome = Err(e.context(format!("fault #{} ({})", p.id, p.nemesis)));
            break;
        }
        if let Err(e) = healthy(observer, log, p.id, o.heal_timeout).await {
            outcome = Err(e.context(format!("fault #{} ({})", p.id, p.nemesis)));
            break;
        }
        if let Err(e) = wait_etcd(observer, o.heal_timeout).await {
            log.push(&Event::Unhealed {
                t: log.t(),
                id: p.id,
                why: format!("{e:#}"),
            });
            outcome = Err(e);
            break;
        }
        log.flush();
        tokio::time::sleep(o.quiet).await;
    }

    tracing::info!("--- stopping the workload; final lookup");
    workload.stop().await;
    let last = o.schedule.last().map_or(0, |p| p.id);
    let final_primary = match observer.wait_healthy(o.heal_timeout).await {
        Ok(p) => p,
        Err(why) => {
            // Read whatever single primary there is: lost writes are still worth knowing.
            let h = observer.health().await;
            h.primary
                .with_context(|| format!("no primary for the final lookup: {why}"))?
        }
    };
    for (table, name) in [(Table::W, "campaign_w"), (Table::D, "campaign_d")] {
        let values = observer.values(&final_primary, name).await?;
        log.push(&Event::Lookup {
            t: log.t(),
            primary: final_primary.clone(),
            table,
            present: to_ranges(&values),
        });
    }
    log.push(&Event::Note {
        t: log.t(),
        id: last,
        what: format!("final lookup on {final_primary}"),
    });
    outcome
}

/// Waits for a healthy cluster and records it; records an unhealed fault otherwise.
async fn healthy(
    observer: &Observer,
    log: &EventLog,
    id: u32,
    timeout: Duration,
) -> anyhow::Result<String> {
    match observer.wait_healthy(timeout).await {
        Ok(primary) => {
            tracing::info!(id, %primary, "--- cluster healthy");
            log.push(&Event::Healthy {
                t: log.t(),
                id,
                primary: primary.clone(),
            });
            Ok(primary)
        }
        Err(why) => {
            log.push(&Event::Unhealed {
                t: log.t(),
                id,
                why: why.clone(),
            });
            bail!(
                "the cluster did not become healthy within {} s: {why}",
                timeout.as_secs()
            )
        }
    }
}

async fn wait_etcd(observer: &Observer, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    while !observer.etcd_healthy().await {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "etcd not healthy (3 members) within {} s",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}
