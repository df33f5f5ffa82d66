//! `hactl reinit [CLUSTER] MEMBER... [--wait]`: `POST /reinitialize` on replicas (their data
//! is deleted and cloned again from the leader). With `--wait`, polls each member's
//! `GET /patroni` until it runs again as a streaming replica with a new postmaster (the
//! start time must change, so a member that has not begun yet is not taken as done).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::cmd::select::{self, Role};
use crate::cmd::{Ctx, cluster_and_members, say};
use crate::dcs::no_members;
use crate::error::{failed, usage};
use crate::members;
use crate::output::{self, Format, Layout};
use crate::prompt;

/// `reinit` options (patronictl's).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// [CLUSTER] MEMBER...: the replicas to rebuild.
    pub targets: Vec<String>,
    /// Ask nothing (and cancel a reinitialization already running).
    #[arg(long)]
    pub force: bool,
    /// Clone from the leader (not from another replica).
    #[arg(long = "from-leader")]
    pub from_leader: bool,
    /// Wait until each member streams again.
    #[arg(long)]
    pub wait: bool,
}

/// Runs `hactl reinit`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    let (cluster, mut names) = cluster_and_members(&a.targets, settings.scope.as_deref());
    let o = ctx.open(cluster.as_deref()).await?;
    let scope = o.dcs.scope.clone();
    let c = o.dcs.cluster().await?;
    if c.members.is_empty() {
        return Err(no_members(&c, &scope));
    }
    if !a.force {
        prompt::require_terminal("hactl reinit without --force")?;
        let l = members::listing(&c, &scope, false, false);
        say(&output::listing(&l, Layout::Format(Format::Pretty)));
    }
    if names.is_empty() {
        if a.force {
            return Err(usage(
                "name the replica(s) to reinitialize: hactl reinit MEMBER",
            ));
        }
        let replicas: Vec<&str> = select::with_role(&c, Role::Replica)
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        names = vec![prompt::ask(
            &format!(
                "Which member do you want to reinitialize [{}]?",
                replicas.join(", ")
            ),
            Some(""),
        )?];
    }
    for n in &names {
        crate::dcs::require_member(&c, &scope, n)?;
        if c.leader_name() == Some(n.as_str()) {
            return Err(usage(format!(
                "{n} is the leader of cluster {scope}; only replicas can be reinitialized (switch over first)"
            )));
        }
    }
    let chosen = select::members(&c, &scope, &names, Role::Replica)?;
    if !a.force {
        let list: Vec<&str> = chosen.iter().map(|m| m.name.as_str()).collect();
        if !prompt::confirm(&format!(
            "Are you sure you want to reinitialize members {}?",
            list.join(", ")
        ))? {
            return Err(failed("aborted reinitialize"));
        }
    }

    let mut started: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    let mut failures = Vec::new();
    for m in &chosen {
        let api = m.record.api_url.as_str();
        let before = o.api.patroni(api).await.ok().and_then(|p| {
            p.get("postmaster_start_time")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let mut body = json!({"force": a.force, "from_leader": a.from_leader});
        loop {
            let r = o
                .api
                .call(
                    api,
                    Method::POST,
                    "reinitialize",
                    Some(&body),
                    Duration::from_secs(45),
                )
                .await;
            match r {
                Ok(r) if r.status < 400 => {
                    say(&format!("Success: reinitialize for member {}", m.name));
                    started.insert(m.name.clone(), (api.to_string(), before));
                }
                Ok(r) => {
                    say(&format!(
                        "Failed: reinitialize for member {}, status code={}, ({})",
                        m.name,
                        r.status,
                        r.text()
                    ));
                    if r.text().ends_with(" already in progress")
                        && !a.force
                        && prompt::confirm("Do you want to cancel it and reinitialize anyway?")?
                    {
                        body["force"] = true.into();
                        continue;
                    }
                    failures.push(format!("{}: {}", m.name, r.text()));
                }
                Err(e) => {
                    say(&format!("Failed: reinitialize for member {}, {e}", m.name));
                    failures.push(format!("{}: {e}", m.name));
                }
            }
            break;
        }
    }
    if a.wait && !started.is_empty() {
        wait_streaming(&o.api, started).await;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failed(format!(
            "reinitialize failed on {} of {} member(s): {}",
            failures.len(),
            chosen.len(),
            failures.join("; ")
        )))
    }
}

/// Polls until every member runs as a streaming replica with a new postmaster.
async fn wait_streaming(
    api: &crate::api::Api,
    mut pending: BTreeMap<String, (String, Option<String>)>,
) {
    let mut last_shown = String::new();
    let mut last_state: BTreeMap<String, String> = BTreeMap::new();
    while !pending.is_empty() {
        let names: Vec<&str> = pending.keys().map(String::as_str).collect();
        let line = format!(
            "Waiting for reinitialize to complete on: {}",
            names.join(", ")
        );
        if line != last_shown {
            say(&line);
            last_shown = line;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut done = Vec::new();
        for (name, (url, before)) in &pending {
            let Ok(p) = api.patroni(url).await else {
                continue;
            };
            let state = p
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let streaming = p.get("replication_state").and_then(Value::as_str) == Some("streaming");
            let start = p.get("postmaster_start_time").and_then(Value::as_str);
            if last_state.get(name) != Some(&state) {
                say(&format!("{name}: {state}"));
                last_state.insert(name.clone(), state.clone());
            }
            if state == "running" && streaming && (before.is_none() || start != before.as_deref()) {
                done.push(name.clone());
            }
        }
        for n in done {
            say(&format!("Reinitialize is completed on: {n}"));
            pending.remove(&n);
        }
    }
}
