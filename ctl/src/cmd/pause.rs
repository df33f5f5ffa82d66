//! `hactl pause` / `hactl resume`: maintenance mode on or off, as patronictl does it:
//! `PATCH /config {"pause": true}` (resume: `{"pause": null}`) through the first member whose
//! API answers, the leader first. When none answers, the `config` key is changed directly
//! with a compare-and-set on its revision. `--wait` polls every member's `GET /patroni` until
//! each shows the new state.

use std::time::{Duration, Instant};

use ha_agent::api::control::merge_patch;
use ha_agent::config::DynamicConfig;
use ha_agent::dcs::{CasOutcome, Cluster, Dcs};
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::cmd::{Ctx, Opened, say};
use crate::dcs::{dynamic, no_members};
use crate::error::failed;

/// `pause`/`resume` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cluster name (default: the configured one).
    pub cluster_name: Option<String>,
    /// Wait until every member shows the new state.
    #[arg(long)]
    pub wait: bool,
}

/// Members with an API, the leader first (patronictl's `get_all_members_leader_first`).
fn leader_first(c: &Cluster) -> Vec<(&str, &str)> {
    let leader = c.leader_name();
    let mut v: Vec<(&str, &str)> = c
        .members
        .iter()
        .filter(|m| !m.record.api_url.is_empty())
        .map(|m| (m.name.as_str(), m.record.api_url.as_str()))
        .collect();
    v.sort_by_key(|(n, _)| Some(*n) != leader);
    v
}

/// Runs `hactl pause` (`paused`) or `hactl resume`.
pub async fn run(ctx: &Ctx, a: Args, paused: bool) -> anyhow::Result<()> {
    let o = ctx.open(a.cluster_name.as_deref()).await?;
    let scope = o.dcs.scope.clone();
    let c = o.dcs.cluster().await?;
    if c.members.is_empty() {
        return Err(no_members(&c, &scope));
    }
    if dynamic(&c).pause == paused {
        return Err(failed(format!(
            "cluster {scope} is {} paused",
            if paused { "already" } else { "not" }
        )));
    }
    let (verb, done) = if paused {
        ("pause", "paused")
    } else {
        ("resume", "resumed")
    };
    let patch = json!({ "pause": if paused { Value::Bool(true) } else { Value::Null } });
    let mut applied = false;
    let mut errors = Vec::new();
    for (name, url) in leader_first(&c) {
        match o
            .api
            .call(
                url,
                Method::PATCH,
                "config",
                Some(&patch),
                Duration::from_secs(10),
            )
            .await
        {
            Ok(r) if r.status == 200 => {
                applied = true;
                break;
            }
            Ok(r) => {
                return Err(failed(format!(
                    "Failed: {verb} cluster management status code={}, ({})",
                    r.status,
                    r.text()
                )));
            }
            Err(e @ (ApiError::Unreachable(_) | ApiError::NoAnswer(_))) => {
                errors.push(format!("{name}: {e}"));
            }
        }
    }
    if !applied {
        say(&format!(
            "no member's REST API answered ({}); changing the config key in etcd directly",
            errors.join("; ")
        ));
        write_directly(&o, &c, &patch).await?;
    }
    if a.wait {
        say(&format!(
            "'{verb}' request sent, waiting until it is recognized by all nodes"
        ));
        wait_applied(&o, &c, paused).await?;
    }
    say(&format!("Success: cluster management is {done}"));
    Ok(())
}

/// Merges `patch` into the config key with a compare-and-set on its revision.
async fn write_directly(o: &Opened, c: &Cluster, patch: &Value) -> anyhow::Result<()> {
    let Some(current) = &c.config else {
        return Err(failed(format!(
            "cluster {} has no config key in etcd to change",
            o.dcs.scope
        )));
    };
    let mut value = current.value.clone();
    merge_patch(&mut value, patch);
    DynamicConfig::validate(&value)
        .map_err(|why| failed(format!("the resulting configuration is invalid: {why}")))?;
    match o.dcs.dcs.write_config(&value, current.revision).await {
        Ok(CasOutcome::Applied) => Ok(()),
        Ok(CasOutcome::Lost) => Err(failed(
            "the configuration was changed by someone else meanwhile: run the command again",
        )),
        Err(e) => Err(failed(format!("writing the config key failed: {e}"))),
    }
}

/// Waits until every member that had an API shows `pause == paused` in `GET /patroni`.
async fn wait_applied(o: &Opened, c: &Cluster, paused: bool) -> anyhow::Result<()> {
    let d = dynamic(c);
    let limit = Duration::from_secs(2 * d.loop_wait + 10);
    let start = Instant::now();
    let members = leader_first(c);
    loop {
        let mut behind = Vec::new();
        for (name, url) in &members {
            let shows = o
                .api
                .patroni(url)
                .await
                .ok()
                .map(|p| p.get("pause").and_then(Value::as_bool).unwrap_or(false));
            if shows != Some(paused) {
                behind.push(*name);
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= limit {
            return Err(failed(format!(
                "{} didn't recognize the {} state after {} seconds",
                behind.join(", "),
                if paused { "pause" } else { "resume" },
                limit.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
