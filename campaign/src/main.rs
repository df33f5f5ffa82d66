//! `ha-campaign`: runs a fault campaign against a 3-member hapg cluster on network
//! namespaces (as root), or re-analyzes the events of an earlier one. See the README section
//! "Fault campaign".
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ha_campaign::campaign::{self, Options};
use ha_campaign::cluster::Settings;
use ha_campaign::guard::Guard;
use ha_campaign::net::Instance;
use ha_campaign::schedule::{self, Nemesis};

#[derive(Parser, Debug)]
#[command(name = "ha-campaign", about = "fault campaign for hapg")]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Run a campaign (as root).
    Run(RunArgs),
    /// Recompute the report from an events file.
    Analyze {
        /// `events.jsonl` of a campaign.
        events: PathBuf,
    },
    /// Remove what a killed campaign left behind (namespaces, processes, data).
    Cleanup {
        /// The instance to clean up (see `run --instance`).
        #[arg(long, default_value_t = 0, value_parser = instance_number)]
        instance: u8,
    },
    /// Internal: the packet delayer of the latency nemesis (runs inside the victim's host).
    #[command(hide = true)]
    Delay {
        #[arg(long)]
        delay_ms: u64,
        #[arg(long)]
        jitter_ms: u64,
        #[arg(long)]
        seed: u64,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The CI schedule: every nemesis not expected to fail, once each, with fast timing
    /// (ttl 10, loop_wait 2, retry_timeout 3) unless given.
    #[arg(long, conflicts_with = "faults")]
    ci: bool,
    /// Number of faults drawn at random (in shuffled rounds of every allowed nemesis).
    #[arg(long)]
    faults: Option<u32>,
    /// Seed of the schedule and of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only these nemeses (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    nemeses: Option<Vec<Nemesis>>,
    /// Replication mode: `sync` sets `synchronous_mode: true` in bootstrap.dcs.
    #[arg(long, default_value = "async", value_parser = ["async", "sync"])]
    mode: String,
    /// Lease ttl, seconds (default 30, or 10 with --ci).
    #[arg(long)]
    ttl: Option<u64>,
    /// loop_wait, seconds (default 10, or 2 with --ci).
    #[arg(long)]
    loop_wait: Option<u64>,
    /// retry_timeout, seconds (default 10, or 3 with --ci).
    #[arg(long)]
    retry_timeout: Option<u64>,
    /// How long partitions, kills and latency are held, seconds (default 1.5 x ttl).
    #[arg(long)]
    hold_secs: Option<f64>,
    /// How long the cluster may take to heal, seconds (default max(120, 10 x ttl)).
    #[arg(long)]
    heal_timeout_secs: Option<u64>,
    /// Pause after a healthy cluster before the next fault, seconds.
    #[arg(long, default_value_t = 3.0)]
    quiet_secs: f64,
    /// Period of the writer through HAProxy, ms.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Output directory (default target/campaign/<time>-seed<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The agent binary (default: the newest target/{debug,release}/ha-agent).
    #[arg(long)]
    agent_bin: Option<PathBuf>,
    /// Run beside other campaigns: instance N (1-9) has its own namespaces (`hapgcN-*`),
    /// network (10.213.N.0/24), lock and data directory; 0 is the default layout.
    #[arg(long, default_value_t = 0, value_parser = instance_number)]
    instance: u8,
}

fn instance_number(s: &str) -> Result<u8, String> {
    s.parse::<u8>()
        .ok()
        .filter(|n| Instance::new(*n).is_some())
        .ok_or_else(|| format!("an instance is a number from 0 to {}", Instance::MAX))
}

/// The instance named by a number [`instance_number`] accepted.
fn instance(n: u8) -> Instance {
    Instance::new(n).unwrap_or_default()
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.what {
        What::Run(a) => run(a),
        What::Analyze { events } => analyze(&events),
        What::Cleanup { instance: n } => {
            Guard::acquire(instance(n), &instance(n).data_dir()).map(|_| true)
        }
        What::Delay {
            delay_ms,
            jitter_ms,
            seed,
        } => ha_campaign::delay::run(
            Duration::from_millis(delay_ms),
            Duration::from_millis(jitter_ms),
            seed,
        )
        .map(|()| true),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ha-campaign: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn analyze(events: &std::path::Path) -> anyhow::Result<bool> {
    let report = ha_campaign::analysis::analyze(&ha_campaign::events::read(events)?);
    println!("{}", ha_campaign::analysis::report::render(&report));
    Ok(report.passed())
}

fn run(a: RunArgs) -> anyhow::Result<bool> {
    let (ttl, loop_wait, retry_timeout) = if a.ci {
        (
            a.ttl.unwrap_or(10),
            a.loop_wait.unwrap_or(2),
            a.retry_timeout.unwrap_or(3),
        )
    } else {
        (
            a.ttl.unwrap_or(30),
            a.loop_wait.unwrap_or(10),
            a.retry_timeout.unwrap_or(10),
        )
    };
    anyhow::ensure!(
        loop_wait + 2 * retry_timeout <= ttl,
        "--ttl/--loop-wait/--retry-timeout: the agent needs loop_wait + 2 x retry_timeout <= ttl"
    );
    let allowed = match (&a.nemeses, a.ci) {
        (Some(n), _) => n.clone(),
        (None, true) => schedule::ci_nemeses(),
        (None, false) => schedule::ALL.to_vec(),
    };
    let plan = if a.ci && a.nemeses.is_none() {
        schedule::ci(a.seed)
    } else {
        schedule::random(a.seed, a.faults.unwrap_or(allowed.len() as u32), &allowed)
    };
    let root = ha_tests::procs::workspace_root();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let out = a.out.unwrap_or_else(|| {
        root.join("target")
            .join("campaign")
            .join(format!("{stamp}-seed{}", a.seed))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let agent_bin = match a.agent_bin {
        Some(p) => p,
        None => ha_tests::procs::workspace_bin("ha-agent"),
    };
    let instance = instance(a.instance);
    let data_dir = instance.data_dir();
    let opts = Options {
        seed: a.seed,
        schedule: plan,
        settings: Settings {
            ttl,
            loop_wait,
            retry_timeout,
            sync: a.mode == "sync",
            agent_bin,
            data_dir: data_dir.clone(),
            log_dir: out.join("logs"),
        },
        hold: Duration::from_secs_f64(a.hold_secs.unwrap_or(ttl as f64 * 1.5)),
        heal_timeout: Duration::from_secs(a.heal_timeout_secs.unwrap_or((10 * ttl).max(120))),
        quiet: Duration::from_secs_f64(a.quiet_secs),
        interval: Duration::from_millis(a.interval_ms.max(1)),
        out,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        instance,
    };
    let names: Vec<String> = opts
        .schedule
        .iter()
        .map(|p| p.nemesis.to_string())
        .collect();
    tracing::info!(seed = a.seed, ttl, loop_wait, retry_timeout, schedule = ?names, "campaign");
    let guard = Guard::acquire(instance, &data_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("build the runtime")?;
    let result = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listen for SIGTERM")?;
        tokio::select! {
            r = campaign::run(&opts) => r.map(Some),
            _ = tokio::signal::ctrl_c() => Ok(None),
            _ = term.recv() => Ok(None),
        }
    });
    // Processes started by the campaign are killed with the runtime, then the guard removes
    // the namespaces and the data.
    drop(rt);
    drop(guard);
    match result? {
        Some(report) => Ok(report.passed()),
        None => {
            eprintln!("ha-campaign: interrupted; cleaned up");
            Ok(false)
        }
    }
}
