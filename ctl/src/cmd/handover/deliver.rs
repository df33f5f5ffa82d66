//! Carrying out a checked switchover or failover: `POST /switchover` (or `/failover`) on the
//! members' REST API in order, else the `failover` key written into etcd (create-only) and
//! the leader key watched; then the cluster as it is now.

use std::time::{Duration, Instant};

use ha_agent::dcs::{Cluster, Dcs, FailoverExpect, FailoverRecord};
use reqwest::Method;

use super::{Action, Plan, print_members};
use crate::api::ApiError;
use crate::cmd::{Opened, say};
use crate::dcs::{handover_limit, is_running_leader};
use crate::error::failed;
use crate::pyfmt;

/// The members whose API to try, in order.
fn targets<'a>(c: &'a Cluster, plan: &Plan) -> Vec<(&'a str, &'a str)> {
    let mut order: Vec<&str> = Vec::new();
    if let Some(l) = plan.old_leader.as_deref() {
        order.push(l);
    }
    if plan.action == Action::Failover && plan.old_leader.is_some() {
        if let Some(cand) = plan.candidate.as_deref() {
            order.push(cand);
        }
        order.extend(c.members.iter().map(|m| m.name.as_str()));
    }
    let mut seen = std::collections::BTreeSet::new();
    order
        .into_iter()
        .filter(|n| seen.insert(*n))
        .filter_map(|n| {
            let m = c.member(n)?;
            (!m.record.api_url.is_empty()).then_some((m.name.as_str(), m.record.api_url.as_str()))
        })
        .collect()
}

pub(super) async fn execute(o: &Opened, c: &Cluster, plan: &Plan) -> anyhow::Result<()> {
    let word = plan.action.word();
    let limit = handover_limit(c);
    let mut unreachable = Vec::new();
    for (name, api_url) in targets(c, plan) {
        let started = Instant::now();
        match o
            .api
            .call(
                api_url,
                Method::POST,
                word,
                Some(&plan.body),
                limit + Duration::from_secs(15),
            )
            .await
        {
            Ok(r) if r.status == 200 => {
                say(&format!("{} {}", pyfmt::timestamp(6), r.text()));
                return report_done(o, plan, started).await;
            }
            Ok(r) if r.status == 202 => {
                say(&format!("{} {}", pyfmt::timestamp(6), r.text()));
                return Ok(());
            }
            Ok(r) => {
                return Err(failed(format!(
                    "{word} refused by {name} (HTTP {}): {}",
                    r.status,
                    r.text()
                )));
            }
            Err(ApiError::Unreachable(e)) => unreachable.push(format!("{name}: {e}")),
            Err(ApiError::NoAnswer(e)) => {
                return Err(failed(format!(
                    "asked {name} for the {word} but got no answer ({e}); it may still happen: check with `hactl list`"
                )));
            }
        }
    }
    if unreachable.is_empty() {
        say(&format!(
            "{} the cluster has no leader: writing the {word} request into etcd",
            pyfmt::timestamp(6)
        ));
    } else {
        say(&format!(
            "{} Could not {word} using Patroni api, falling back to DCS ({})",
            pyfmt::timestamp(6),
            unreachable.join("; ")
        ));
    }
    through_etcd(o, plan, limit).await
}

/// Writes the `failover` key (create-only) and watches for the new leader.
async fn through_etcd(o: &Opened, plan: &Plan, limit: Duration) -> anyhow::Result<()> {
    let word = plan.action.word();
    let rec = FailoverRecord {
        leader: plan.leader.clone(),
        member: plan.candidate.clone(),
        scheduled_at: plan.scheduled_at.clone(),
    };
    let started = Instant::now();
    match o
        .dcs
        .dcs
        .write_failover(&rec, FailoverExpect::NoPending)
        .await
    {
        Ok(ha_agent::dcs::CasOutcome::Applied) => {}
        Ok(ha_agent::dcs::CasOutcome::Lost) => {
            return Err(failed(
                "another switchover or failover is already pending in etcd: wait for it, or cancel a scheduled one with `hactl flush switchover`",
            ));
        }
        Err(e) => {
            return Err(failed(format!(
                "writing the failover key into etcd failed: {e}"
            )));
        }
    }
    if let Some(t) = &plan.scheduled_at {
        say(&format!("Switchover scheduled at {t} (written into etcd)"));
        return Ok(());
    }
    say(&format!(
        "wrote the {word} request into etcd; waiting up to {} s for the agents to carry it out",
        limit.as_secs()
    ));
    let old = plan.old_leader.clone();
    let outcome = o
        .dcs
        .wait_for(limit, |c| {
            let l = c.leader_name()?;
            (Some(l) != old.as_deref() && is_running_leader(c, l)).then(|| l.to_string())
        })
        .await;
    match outcome {
        Some(_) => report_done(o, plan, started).await,
        None => {
            let state = match o.dcs.cluster().await {
                Ok(c) => match c.leader_name() {
                    Some(l) => format!("{l} still holds the leader lock"),
                    None => "the leader lock is vacant".into(),
                },
                Err(e) => format!("etcd: {e:#}"),
            };
            let pending = if o.dcs.cluster().await.is_ok_and(|c| c.failover.is_some()) {
                " (the request is still pending in etcd)"
            } else {
                ""
            };
            Err(failed(format!(
                "the {word} was requested through etcd but did not happen within {} s: {state}{pending}",
                limit.as_secs()
            )))
        }
    }
}

/// Prints the cluster after the change and who leads it now.
async fn report_done(o: &Opened, plan: &Plan, started: Instant) -> anyhow::Result<()> {
    let took = started.elapsed();
    let c = o.dcs.cluster().await?;
    print_members(&c, &o.dcs.scope);
    match c.leader_name() {
        Some(l) if Some(l) != plan.old_leader.as_deref() => {
            say(&format!(
                "{l} is the leader now ({} took {:.1} s)",
                plan.action.word(),
                took.as_secs_f64()
            ));
            Ok(())
        }
        Some(l) => Err(failed(format!(
            "the agent reported success, but etcd still shows {l} as the leader"
        ))),
        None => Err(failed(
            "the agent reported success, but the leader lock is vacant now: check with `hactl list`",
        )),
    }
}
