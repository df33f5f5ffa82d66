//! `hactl history [CLUSTER]`: the timeline history (the `history` key), one row per
//! promotion: `TL | LSN | Reason | Timestamp | New Leader`, as patronictl prints it.

use ha_agent::dcs::Cluster;
use serde_json::Value;

use crate::cmd::{Ctx, say};
use crate::output::{self, Format, Layout};
use crate::table::Align;

/// `history` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cluster name (default: the configured one).
    pub cluster_name: Option<String>,
    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value = "pretty")]
    pub format: Format,
}

/// Columns and rows of the history table (short entries padded with empty cells).
pub fn rows(c: &Cluster) -> (Vec<String>, Vec<Vec<Value>>) {
    let columns = ["TL", "LSN", "Reason", "Timestamp", "New Leader"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows = c
        .history
        .as_ref()
        .map(|h| {
            h.value
                .iter()
                .map(|e| {
                    vec![
                        e.timeline.into(),
                        e.switch_lsn.into(),
                        e.reason.clone().into(),
                        e.timestamp.clone().unwrap_or_default().into(),
                        e.new_leader.clone().unwrap_or_default().into(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    (columns, rows)
}

/// `TL` and `LSN` are right-aligned.
pub fn align(column: &str) -> Align {
    match column {
        "TL" | "LSN" => Align::Right,
        _ => Align::Left,
    }
}

/// Runs `hactl history`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let o = ctx.open(a.cluster_name.as_deref()).await?;
    let c = o.dcs.cluster().await?;
    let (columns, rows) = rows(&c);
    say(&output::render(
        &columns,
        &rows,
        &align,
        Layout::Format(a.format),
        "",
    ));
    Ok(())
}
