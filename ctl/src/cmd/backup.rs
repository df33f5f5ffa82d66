//! `hactl backup [--type full|incr|diff]`: run a backup now; `hactl backups`: list them.
//!
//! `backup` writes a request into the cluster's `backup` key (compare-and-set, as switchover
//! writes `failover`), and the leader's backup runner takes it at its next tick (2 s), claims
//! it and runs it; hactl then waits for the outcome with the request's id. One mechanism for
//! scheduled and on-demand backups: whichever member leads runs it, from a healthy replica
//! when there is one, never two at once, and the result lands where `/cluster`, `hactl list`
//! and the metrics read it. A request made while there is no leader waits for one.
//!
//! `backups` runs `pgbackrest info` with the agent's own pgBackRest configuration (`-c` must
//! be the agent's YAML with its `backup` section), so it needs the repository reachable from
//! where hactl runs; it writes no log file there.

use std::path::PathBuf;
use std::time::Duration;

use ha_agent::backup::info::{BackupInfo, StanzaInfo};
use ha_agent::backup::pgbackrest::Pgbackrest;
use ha_agent::backup::record::BackupRequest;
use ha_agent::config::{BackupConfig, Config};
use ha_agent::dcs::CasOutcome;
use ha_agent::ha::backup::BackupKind;
use serde_json::Value;

use crate::cmd::{Ctx, say};
use crate::error::{failed, usage};
use crate::output::{self, Format, Layout};
use crate::table::Align;

/// `backup` options.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Backup type.
    #[arg(long = "type", value_parser = ["full", "diff", "incr"], default_value = "full")]
    pub kind: String,
    /// Seconds to wait for the outcome (0: do not wait).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// `backups` options.
#[derive(Debug, clap::Args)]
pub struct BackupsArgs {
    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value = "pretty")]
    pub format: Format,
}

/// The agent's configuration with its `backup` section (`-c`).
pub fn agent_backup_config(ctx: &Ctx) -> anyhow::Result<(Config, BackupConfig)> {
    let path: PathBuf = ctx.source.config_file.clone().ok_or_else(|| {
        usage("give the agent's configuration file with -c: it has the backup section")
    })?;
    let (cfg, _) = Config::load(&path).map_err(|e| usage(format!("{e}")))?;
    let backup = cfg.backup.clone().ok_or_else(|| {
        usage(format!(
            "{}: no backup section: backups are not configured",
            path.display()
        ))
    })?;
    Ok((cfg, backup))
}

/// `pgbackrest info` of the configured stanza.
pub async fn stanza_info(cfg: &Config, backup: &BackupConfig) -> anyhow::Result<StanzaInfo> {
    let pgbr = Pgbackrest::new(backup, cfg.postgresql.superuser.password.clone());
    let args = ["--output=json".to_string(), "--log-level-file=off".into()];
    let json = pgbr
        .run("info", &args, Duration::from_secs(120))
        .await
        .map_err(|e| failed(e.to_string()))?;
    ha_agent::backup::info::parse(&json).map_err(failed)
}

/// Runs `hactl backup`.
pub async fn run_backup(ctx: &Ctx, a: BackupArgs) -> anyhow::Result<()> {
    let kind = BackupKind::parse(&a.kind).ok_or_else(|| usage("--type: full, diff or incr"))?;
    let o = ctx.open(None).await?;
    let now = ha_agent::backup::runner::unix_now();
    let id = format!("hactl-{now}-{}", std::process::id());
    let mut written = false;
    for _ in 0..5 {
        let current = o.dcs.dcs.read_backup().await?;
        let (mut record, revision) = match current {
            Some(v) => (v.value, Some(v.revision)),
            None => (Default::default(), None),
        };
        if let Some(q) = &record.request {
            return Err(failed(format!(
                "a {} backup requested at {} has not started yet; try again later",
                q.kind, q.at
            )));
        }
        record.request = Some(BackupRequest {
            id: id.clone(),
            kind,
            at: now,
        });
        if o.dcs.dcs.write_backup(&record, revision).await? == CasOutcome::Applied {
            written = true;
            break;
        }
    }
    if !written {
        return Err(failed("the backup key kept changing; try again"));
    }
    say(&format!("{kind} backup requested ({id})"));
    if a.timeout == 0 {
        return Ok(());
    }
    let outcome = o
        .dcs
        .wait_for(Duration::from_secs(a.timeout), |c| {
            let last = c.backup.as_ref()?.value.last.clone()?;
            (last.request.as_deref() == Some(id.as_str())).then_some(last)
        })
        .await
        .ok_or_else(|| {
            failed(format!(
                "no outcome within {} s (is there a leader?)",
                a.timeout
            ))
        })?;
    if outcome.ok {
        say(&format!(
            "backup {} done by {} from {} in {} s",
            outcome.label.as_deref().unwrap_or("?"),
            outcome.member,
            outcome.source,
            outcome.duration().unwrap_or(0)
        ));
        Ok(())
    } else {
        Err(failed(format!(
            "backup failed on {}: {}",
            outcome.member,
            outcome.error.as_deref().unwrap_or("unknown error")
        )))
    }
}

/// Runs `hactl backups`.
pub async fn run_backups(ctx: &Ctx, a: BackupsArgs) -> anyhow::Result<()> {
    let (cfg, backup) = agent_backup_config(ctx)?;
    let info = stanza_info(&cfg, &backup).await?;
    if matches!(a.format, Format::Json) {
        say(&serde_json::to_string(&info.backups)?);
        return Ok(());
    }
    let columns: Vec<String> = [
        "Label",
        "Type",
        "Start",
        "Stop",
        "Size",
        "WAL start",
        "WAL stop",
        "Member",
        "Source",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<Value>> = info.backups.iter().map(row).collect();
    say(&output::render(
        &columns,
        &rows,
        &|c: &str| {
            if c == "Size" {
                Align::Right
            } else {
                Align::Left
            }
        },
        Layout::Format(a.format),
        "",
    ));
    if info.status_code != 0 {
        eprintln!("stanza {}: {}", backup.stanza, info.status);
    }
    Ok(())
}

fn row(b: &BackupInfo) -> Vec<Value> {
    let time = |t: Option<i64>| {
        t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    };
    vec![
        b.label.clone().into(),
        b.kind.clone().into(),
        time(b.start).into(),
        time(b.stop).into(),
        b.size
            .map(|s| format!("{:.1} MB", s as f64 / 1e6))
            .unwrap_or_default()
            .into(),
        b.wal_start.clone().unwrap_or_default().into(),
        b.wal_stop.clone().unwrap_or_default().into(),
        b.member.clone().unwrap_or_default().into(),
        b.source.clone().unwrap_or_default().into(),
    ]
}
