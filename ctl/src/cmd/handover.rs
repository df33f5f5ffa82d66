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
//!
//! This file asks the questions and checks the answers; `handover/deliver.rs` carries the
//! request out (API first, then etcd) and reports the result.

mod deliver;

use ha_agent::dcs::Cluster;
use serde_json::{Map, Value};

use crate::cmd::{Ctx, say};
use crate::dcs::{dynamic, no_members, require_member};
use crate::error::{failed, usage};
use crate::members;
use crate::output::{self, Format, Layout};
use crate::prompt;
use crate::pyfmt;
use deliver::execute;

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
