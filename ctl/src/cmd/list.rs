//! `hactl list` and `hactl topology`: the members as patronictl shows them, read from etcd
//! with one range request per cluster (no REST API call), optionally refreshed every few
//! seconds.

use std::time::Duration;

use crate::cmd::{Ctx, say};
use crate::dcs::ClusterDcs;
use crate::error::usage;
use crate::members;
use crate::output::{self, Format, Layout};

/// `list` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Clusters to list (default: the configured one).
    pub cluster_names: Vec<String>,
    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value = "pretty")]
    pub format: Format,
    /// Also show pending restarts, scheduled restarts and tags.
    #[arg(short = 'e', long)]
    pub extended: bool,
    /// Print a timestamp first.
    #[arg(short = 't', long)]
    pub timestamp: bool,
    /// Refresh every 2 seconds.
    #[arg(short = 'W')]
    pub w: bool,
    /// Refresh every SECS seconds.
    #[arg(short = 'w', long = "watch", value_name = "SECS")]
    pub watch: Option<f64>,
}

/// `topology` options.
#[derive(Debug, clap::Args)]
pub struct TopologyArgs {
    /// Clusters to show (default: the configured one).
    pub cluster_names: Vec<String>,
    /// Refresh every 2 seconds.
    #[arg(short = 'W')]
    pub w: bool,
    /// Refresh every SECS seconds.
    #[arg(short = 'w', long = "watch", value_name = "SECS")]
    pub watch: Option<f64>,
}

/// `hactl list`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let layout = Layout::Format(a.format);
    show(
        ctx,
        &a.cluster_names,
        layout,
        a.extended,
        a.timestamp,
        interval(a.w, a.watch)?,
    )
    .await
}

/// `hactl topology`.
pub async fn topology(ctx: &Ctx, a: TopologyArgs) -> anyhow::Result<()> {
    show(
        ctx,
        &a.cluster_names,
        Layout::Topology,
        false,
        false,
        interval(a.w, a.watch)?,
    )
    .await
}

/// `-W` (every 2 s) or `--watch SECS`.
pub(crate) fn interval(w: bool, watch: Option<f64>) -> anyhow::Result<Option<Duration>> {
    match watch {
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(usage(format!(
            "--watch {s}: give a positive number of seconds"
        ))),
        None => Ok(w.then(|| Duration::from_secs(2))),
    }
}

async fn show(
    ctx: &Ctx,
    names: &[String],
    layout: Layout,
    extended: bool,
    timestamp: bool,
    every: Option<Duration>,
) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    let names = if names.is_empty() {
        vec![settings.scope(None)?]
    } else {
        names.to_vec()
    };
    let mut clusters = Vec::new();
    for n in &names {
        clusters.push(ClusterDcs::connect(&settings, n).await?);
    }
    loop {
        let started = tokio::time::Instant::now();
        let mut text = Vec::new();
        if timestamp {
            text.push(crate::pyfmt::timestamp(0));
        }
        for c in &clusters {
            let cluster = c.cluster().await?;
            let l = members::listing(&cluster, &c.scope, extended, layout == Layout::Topology);
            text.push(output::listing(&l, layout));
        }
        if every.is_some() {
            // click.clear(): clear the screen and home the cursor.
            print!("\x1b[2J\x1b[1;1H");
        }
        say(&text.join("\n"));
        let Some(every) = every else {
            return Ok(());
        };
        tokio::time::sleep_until(started + every).await;
    }
}
