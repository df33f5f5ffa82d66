//! `hactl reload [CLUSTER] [MEMBER...]|--all`: `POST /reload` on each chosen member (the
//! agent re-reads its YAML and applies what changed). Output lines are patronictl's.

use std::time::Duration;

use reqwest::Method;

use crate::cmd::select::{self, Role};
use crate::cmd::{Ctx, cluster_and_members, say};
use crate::dcs::{dynamic, no_members};
use crate::error::{failed, usage};
use crate::members;
use crate::output::{self, Format, Layout};
use crate::prompt;

/// `reload` options (patronictl's, plus --all).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// [CLUSTER] MEMBER...: members to reload (none: every member of --role).
    pub targets: Vec<String>,
    /// Every member (of --role).
    #[arg(long)]
    pub all: bool,
    /// Only members with this role.
    #[arg(short = 'r', long, value_enum, default_value = "any")]
    pub role: Role,
    /// Ask nothing.
    #[arg(long)]
    pub force: bool,
}

/// Runs `hactl reload`.
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
    let chosen = select::members(&c, &scope, &names, a.role)?;
    if !a.force {
        prompt::require_terminal("hactl reload without --force")?;
        let l = members::listing(&c, &scope, false, false);
        say(&output::listing(&l, Layout::Format(Format::Pretty)));
        let names: Vec<&str> = chosen.iter().map(|m| m.name.as_str()).collect();
        if !prompt::confirm(&format!(
            "Are you sure you want to reload members {}?",
            names.join(", ")
        ))? {
            return Err(failed("aborted reload"));
        }
    }
    let loop_wait = dynamic(&c).loop_wait;
    let mut failures = Vec::new();
    for m in &chosen {
        let r = o
            .api
            .call(
                &m.record.api_url,
                Method::POST,
                "reload",
                None,
                Duration::from_secs(30),
            )
            .await;
        match r {
            Ok(r) if r.status == 200 => say(&format!("No changes to apply on member {}", m.name)),
            Ok(r) if r.status == 202 => say(&format!(
                "Reload request received for member {} and will be processed within {loop_wait} seconds",
                m.name
            )),
            Ok(r) => {
                say(&format!(
                    "Failed: reload for member {}, status code={}, ({})",
                    m.name,
                    r.status,
                    r.text()
                ));
                failures.push(format!("{}: {}", m.name, r.text()));
            }
            Err(e) => {
                say(&format!("Failed: reload for member {}, {e}", m.name));
                failures.push(format!("{}: {e}", m.name));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failed(format!(
            "reload failed on {} of {} member(s): {}",
            failures.len(),
            chosen.len(),
            failures.join("; ")
        )))
    }
}
