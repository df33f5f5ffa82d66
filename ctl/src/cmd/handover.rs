//! What `switchover` and `failover` share (patronictl's `_do_failover_or_switchover`): the
//! checks and questions, then one mechanism, the cluster's `failover` key, reached two ways.
//!
//! 1. `POST /switchover` (or `/failover`) on the leader's REST API (failover: any member's,
//!    the leader's first). The agent validates, writes the key and answers once the new leader
//!    runs, or with its one-line reason for refusing.
//! 2. When no API can be reached (or a failover finds no leader), hactl writes the key itself
//!    (create-only, so a pending request is never replaced) and watches the leader key until
//!    the change happens or the agents' own limit (ttl + 2 * loop_wait) passes, and says which.
//!
//! A request whose answer never came (timeout after it was sent) is not repeated through
//! etcd: it may have been carried out.

use std::time::{Duration, Instant};

use ha_agent::dcs::{Cluster, Dcs, FailoverExpect, FailoverRecord};
use reqwest::Method;
use serde_json::{Map, Value};

use crate::api::ApiError;
use crate::cmd::{Ctx, Opened, say};
use crate::dcs::{dynamic, handover_limit, is_running_leader, no_members, require_member};
use crate::error::{failed, usage};
use crate::members;
use crate::output::{self, Format, Layout};
use crate::prompt;
use crate::pyfmt;

/// Which operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Graceful: the leader demotes and hands over.
    Switchover,
    /// To a named candidate, also when there is no leader.
    Failover,
}

impl Action {
    fn word(self) -> &'static str {
        match self {
            Action::Switchover => "switchover",
            Action::Failover => "failover",
        }
    }
}

/// A request as the command line gave it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which operation.
    pub action: Action,
    /// Cluster name (positional), if given.
    pub cluster: Option<String>,
    /// `--leader`/`--primary` (switchover).
    pub leader: Option<String>,
    /// `--candidate`.
    pub candidate: Option<String>,
    /// `--scheduled` (switchover).
    pub scheduled: Option<String>,
    /// `--force`: no questions.
    pub force: bool,
}

fn print_members(c: &Cluster, scope: &str) {
    let l = members::listing(c, scope, false, false);
    say(&output::listing(&l, Layout::Format(Format::Pretty)));
}

/// Python's `str(list)`: `['a', 'b']`.
fn py_list(names: &[String]) -> String {
    let items: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    format!("[{}]", items.join(", "))
}

/// Runs a switchover or failover.
pub async fn run(ctx: &Ctx, req: Request) -> anyhow::Result<()> {
    let o = ctx.open(req.cluster.as_deref()).await?;
    let scope = o.dcs.scope.clone();
    let word = req.action.word();
    let c = o.dcs.cluster().await?;
    if c.members.is_empty() {
        return Err(no_members(&c, &scope));
    }
    if !req.force {
        prompt::require_terminal(&format!("hactl {word} without --force"))?;
    }
    say("Current cluster topology");
    print_members(&c, &scope);

    let current = c.leader_name().map(str::to_string);
    let mut leader = req.leader.clone();
    if req.action == Action::Switchover {
        let Some(cur) = current.as_deref() else {
            return Err(failed(format!(
                "cluster {scope} has no leader: use `hactl failover --candidate NAME`"
            )));
        };
        let l = match leader.take() {
            Some(l) => l,
            None if req.force => cur.to_string(),
            None => prompt::ask("Primary", Some(cur))?,
        };
        if l != cur {
            require_member(&c, &scope, &l)?;
            return Err(failed(format!(
                "{l} is not the leader of cluster {scope} ({cur} is): use --leader {cur}"
            )));
        }
        leader = Some(l);
    }

    let mut candidates: Vec<String> = c
        .members
        .iter()
        .filter(|m| Some(m.name.as_str()) != current.as_deref() && !m.record.nofailover())
        .map(|m| m.name.clone())
        .collect();
    candidates.sort();
    if candidates.is_empty() {
        return Err(failed(format!(
            "no candidates found to {word} to: cluster {scope} has no other member that is not tagged nofailover"
        )));
    }
    let mut candidate = req.candidate.clone().filter(|s| !s.is_empty());
    if candidate.is_none() && !req.force {
        let a = prompt::ask(&format!("Candidate {}", py_list(&candidates)), Some(""))?;
        candidate = Some(a).filter(|s| !s.is_empty());
    }
    if req.action == Action::Failover && candidate.is_none() {
        return Err(usage(format!(
            "a failover needs a candidate: hactl failover --candidate NAME (candidates: {})",
            candidates.join(", ")
        )));
    }
    if let Some(cand) = candidate.as_deref()
        && !candidates.iter().any(|n| n == cand)
    {
        if current.as_deref() == Some(cand) {
            return Err(usage(format!(
                "{cand} is already the leader of cluster {scope}"
            )));
        }
        require_member(&c, &scope, cand)?;
        return Err(usage(format!(
            "{cand} is tagged nofailover and cannot become the leader (candidates: {})",
            candidates.join(", ")
        )));
    }

    let mut when = None;
    if req.action == Action::Switchover {
        let text = match req.scheduled.clone() {
            Some(s) => s,
            None if req.force => "now".into(),
            None => {
                let next_hour = (chrono::Local::now() + chrono::Duration::hours(1))
                    .format("%Y-%m-%dT%H:%M")
                    .to_string();
                prompt::ask(
                    &format!("When should the switchover take place (e.g. {next_hour} ) "),
                    Some("now"),
                )?
            }
        };
        when = parse_scheduled(&text)?;
        if when.is_some() && dynamic(&c).pause {
            return Err(failed(
                "can't schedule a switchover in the paused state: resume first, or switch over now",
            ));
        }
    }
    if !req.force {
        let demote = current
            .as_deref()
            .map(|l| format!(", demoting current leader {l}"))
            .unwrap_or_default();
        let q = match &when {
            Some(t) => format!(
                "Are you sure you want to schedule switchover of cluster {scope} at {t}{demote}?"
            ),
            None => format!("Are you sure you want to {word} cluster {scope}{demote}?"),
        };
        if !prompt::confirm(&q)? {
            return Err(failed(format!("aborting {word}")));
        }
    }

    let mut body = Map::new();
    if let Some(cand) = &candidate {
        body.insert("candidate".into(), cand.clone().into());
    }
    if req.action == Action::Switchover {
        body.insert("leader".into(), leader.clone().into());
    }
    if let Some(t) = &when {
        body.insert("scheduled_at".into(), t.clone().into());
    }
    let plan = Plan {
        action: req.action,
        leader,
        candidate,
        scheduled_at: when,
        old_leader: current,
        body: Value::Object(body),
    };
    execute(&o, &c, &plan).await
}

/// What to ask for, checked.
struct Plan {
    action: Action,
    leader: Option<String>,
    candidate: Option<String>,
    scheduled_at: Option<String>,
    old_leader: Option<String>,
    body: Value,
}

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

async fn execute(o: &Opened, c: &Cluster, plan: &Plan) -> anyhow::Result<()> {
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

/// patronictl's `parse_scheduled`: `now` (or nothing) is `None`; a time without offset is
/// local time. Returns Python's `isoformat()` of the time.
pub fn parse_scheduled(s: &str) -> anyhow::Result<Option<String>> {
    let s = s.trim();
    if s.is_empty() || s == "now" {
        return Ok(None);
    }
    let bad = || {
        usage(format!(
            "Unable to parse scheduled timestamp ({s}). It should be in an unambiguous format (e.g. ISO 8601)"
        ))
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Some(pyfmt::isoformat(&t)));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(t) = chrono::DateTime::parse_from_str(s, f) {
            return Ok(Some(pyfmt::isoformat(&t)));
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(s, f) {
            let local = n
                .and_local_timezone(chrono::Local)
                .earliest()
                .ok_or_else(bad)?;
            return Ok(Some(pyfmt::isoformat(&local.fixed_offset())));
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_times() {
        assert_eq!(parse_scheduled("now").unwrap(), None);
        assert_eq!(parse_scheduled("").unwrap(), None);
        assert_eq!(
            parse_scheduled("2030-01-02T03:04:05+01:00")
                .unwrap()
                .as_deref(),
            Some("2030-01-02T03:04:05+01:00")
        );
        assert_eq!(
            parse_scheduled("2030-01-02T03:04+00:00")
                .unwrap()
                .as_deref(),
            Some("2030-01-02T03:04:00+00:00")
        );
        let local = parse_scheduled("2030-01-02T03:04").unwrap().unwrap();
        assert!(local.starts_with("2030-01-02T03:04:00"), "{local}");
        assert!(parse_scheduled("tomorrow").is_err());
    }

    #[test]
    fn candidate_lists_like_python() {
        assert_eq!(py_list(&["a".into(), "b".into()]), "['a', 'b']");
    }
}
