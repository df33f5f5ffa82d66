//! `hactl restart [CLUSTER] [MEMBER...]|--all`: `POST /restart` on each chosen member, one
//! after the other (each answers when its PostgreSQL is back). Output lines are patronictl's;
//! any failure makes the command fail (exit 1) with the agent's reason.
//!
//! `--scheduled` is passed on as patronictl does; hapg's agent does not schedule restarts yet
//! and refuses with its reason, which is printed.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value};

use crate::api::ApiError;
use crate::cmd::handover::parse_scheduled;
use crate::cmd::select::{self, Role};
use crate::cmd::{Ctx, cluster_and_members, say};
use crate::dcs::{dynamic, no_members};
use crate::error::{failed, usage};
use crate::members;
use crate::output::{self, Format, Layout};
use crate::prompt;

/// `restart` options (patronictl's, plus --all).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// [CLUSTER] MEMBER...: members to restart (none: every member of --role).
    pub targets: Vec<String>,
    /// Every member (of --role).
    #[arg(long)]
    pub all: bool,
    /// Only members with this role.
    #[arg(short = 'r', long, value_enum, default_value = "any")]
    pub role: Role,
    /// Only one of the chosen members, picked at random.
    #[arg(long = "any")]
    pub any: bool,
    /// When: an ISO 8601 time, or `now`.
    #[arg(long, value_name = "TIME")]
    pub scheduled: Option<String>,
    /// Only if PostgreSQL's version is lower than this (e.g. 15.8).
    #[arg(long = "pg-version", value_name = "VERSION")]
    pub pg_version: Option<String>,
    /// Only members that need a restart for a changed setting.
    #[arg(long)]
    pub pending: bool,
    /// Fail (and fail over if needed) when the restart takes longer than this.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Ask nothing.
    #[arg(long)]
    pub force: bool,
}

/// Runs `hactl restart`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    let (cluster, names) = cluster_and_members(&a.targets, settings.scope.as_deref());
    if a.all && !names.is_empty() {
        return Err(usage("give member names or --all, not both"));
    }
    let o = ctx.open(cluster.as_deref()).await?;
    let scope = o.dcs.scope.clone();
    let c = o.dcs.cluster().await?;
    if c.members.is_empty() {
        return Err(no_members(&c, &scope));
    }
    let mut chosen = select::members(&c, &scope, &names, a.role)?;
    if !a.force {
        prompt::require_terminal("hactl restart without --force")?;
        let l = members::listing(&c, &scope, false, false);
        say(&output::listing(&l, Layout::Format(Format::Pretty)));
    }
    let scheduled_text = match a.scheduled.clone() {
        Some(s) => s,
        None if a.force => "now".into(),
        None => {
            let next_hour = (chrono::Local::now() + chrono::Duration::hours(1))
                .format("%Y-%m-%dT%H:%M")
                .to_string();
            prompt::ask(
                &format!("When should the restart take place (e.g. {next_hour}) "),
                Some("now"),
            )?
        }
    };
    let scheduled = parse_scheduled(&scheduled_text)?;
    let mut content = Map::new();
    if a.pending {
        content.insert("restart_pending".into(), true.into());
        if scheduled.is_none() {
            chosen.retain(|m| m.record.pending_restart);
            if chosen.is_empty() {
                say("No member needs a restart (none shows a pending restart)");
                return Ok(());
            }
        }
    }
    if a.any && chosen.len() > 1 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as usize)
            .unwrap_or(0);
        let pick = chosen[nanos % chosen.len()];
        chosen = vec![pick];
    }
    let names: Vec<&str> = chosen.iter().map(|m| m.name.as_str()).collect();
    if !a.force {
        let q = match &scheduled {
            Some(_) if a.pending => "The nodes needing a restart will be identified at the scheduled time, and might be different from the ones showing pending restart right now. Is this fine?".to_string(),
            Some(t) => format!("Are you sure you want to schedule restart of members {} at {t}?", names.join(", ")),
            None => format!("Are you sure you want to restart members {}?", names.join(", ")),
        };
        if !prompt::confirm(&q)? {
            return Err(failed(if scheduled.is_some() {
                "aborted scheduled restart"
            } else {
                "aborted restart"
            }));
        }
    }
    let version = match a.pg_version.clone() {
        Some(v) => Some(v),
        None if a.force => None,
        None => Some(prompt::ask(
            "Restart if the PostgreSQL version is less than provided (e.g. 9.5.2) ",
            Some(""),
        )?)
        .filter(|v| !v.is_empty()),
    };
    if let Some(v) = version {
        if !v
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(usage(format!(
                "--pg-version {v}: expected a PostgreSQL version like 15.8"
            )));
        }
        content.insert("postgres_version".into(), v.into());
    }
    if let Some(t) = &scheduled {
        if dynamic(&c).pause {
            return Err(failed("can't schedule a restart in the paused state"));
        }
        content.insert("schedule".into(), t.clone().into());
    }
    if let Some(t) = &a.timeout {
        content.insert("timeout".into(), t.clone().into());
    }
    let body = Value::Object(content);
    // The agent waits up to 4 * ttl + 60 s for PostgreSQL to come back.
    let limit = Duration::from_secs(dynamic(&c).ttl * 4 + 75);
    let mut failures = Vec::new();
    for m in &chosen {
        let r = o
            .api
            .call(
                &m.record.api_url,
                Method::POST,
                "restart",
                Some(&body),
                limit,
            )
            .await;
        match r {
            Ok(r) if r.status == 200 => say(&format!("Success: restart on member {}", m.name)),
            Ok(r) if r.status == 202 => {
                say(&format!("Success: restart scheduled on member {}", m.name));
            }
            Ok(r) if r.status == 409 => {
                say(&format!(
                    "Failed: another restart is already scheduled on member {}",
                    m.name
                ));
                failures.push(format!("{}: another restart is already scheduled", m.name));
            }
            Ok(r) => {
                say(&format!(
                    "Failed: restart for member {}, status code={}, ({})",
                    m.name,
                    r.status,
                    r.text()
                ));
                failures.push(format!("{}: {}", m.name, r.text()));
            }
            Err(e) => {
                let why = match e {
                    ApiError::Unreachable(e) => format!("its REST API is unreachable ({e})"),
                    ApiError::NoAnswer(e) => format!("no answer ({e})"),
                };
                say(&format!("Failed: restart for member {}, {why}", m.name));
                failures.push(format!("{}: {why}", m.name));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failed(format!(
            "restart failed on {} of {} member(s): {}",
            failures.len(),
            chosen.len(),
            failures.join("; ")
        )))
    }
}
