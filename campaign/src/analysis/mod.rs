//! The checker: turns the raw events of a campaign into its findings. Pure (no I/O, no
//! clock), so it is unit-tested on recorded events with planted faults (`tests.rs`).
//!
//! What it reports, per fault and overall:
//! - **lost acknowledged writes**: values whose insert was acknowledged (through HAProxy, or
//!   directly by a member) but which the final primary does not hold;
//! - **two writable primaries**: intervals in which two members both accepted direct writes
//!   (see [`overlap`] for the exact rule and why it cannot fire on a clean switchover);
//! - **the longest write gap** through HAProxy: the longest time between two consecutive
//!   acknowledgements that overlaps the fault's window;
//! - **heal time**: from the heal (rules removed, processes back) to the first moment the
//!   cluster was seen healthy (one primary, every other member streaming from it);
//! - **unhealed faults**: those after which the cluster never became healthy.
//!
//! A fault's window runs from its injection to the next fault's (the last one to the end of
//! the campaign); writes, gaps and overlaps are attributed by time.

pub mod overlap;
pub mod report;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::events::{Event, Table, in_ranges};
use crate::schedule::Nemesis;
pub use overlap::Overlap;

/// With asynchronous replication, how long before a fault is in place (its processes killed,
/// its rules active) a write acknowledged by the leader may still be lost with it: a commit is
/// acknowledged once it is on the leader's disk, and is shipped to the replicas an instant
/// later, an instant a crash or a cut can fall into. Half a second is far above the
/// replication delay of a healthy cluster here (milliseconds) and far below what a lagging
/// replica promoted by mistake would lose.
pub const ASYNC_WINDOW: f64 = 0.5;

/// What one fault's window showed.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultResult {
    /// Position in the schedule (0: the warm-up before the first fault).
    pub id: u32,
    /// The nemesis (None for the warm-up).
    pub nemesis: Option<Nemesis>,
    /// The member it was aimed at.
    pub target: Option<String>,
    /// Window start (injection) and end (next injection or end of campaign), in seconds.
    pub window: (f64, f64),
    /// Writes acknowledged through HAProxy in the window.
    pub acked: usize,
    /// Of those, values missing on the final primary.
    pub lost: Vec<i64>,
    /// Writes through HAProxy missing on the final primary that were acknowledged within
    /// [`ASYNC_WINDOW`] before this fault was in place, with asynchronous replication: the
    /// leader acknowledged them but was killed or cut off before shipping them (reported,
    /// not failures; see [`Report::direct_losses_fail`]).
    pub lost_async: Vec<i64>,
    /// Direct writes acknowledged in the window and missing on the final primary
    /// (member, value).
    pub lost_direct: Vec<(String, i64)>,
    /// Intervals with two writable primaries starting in the window.
    pub overlaps: Vec<Overlap>,
    /// The longest gap between two HAProxy acknowledgements ending in the window:
    /// (start, length) in seconds.
    pub longest_gap: Option<(f64, f64)>,
    /// Heal → healthy, in seconds.
    pub heal_time: Option<f64>,
    /// Why the cluster did not heal, if it did not.
    pub unhealed: Option<String>,
}

/// Everything the checker found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The schedule's seed.
    pub seed: Option<u64>,
    /// `async` or `sync`.
    pub mode: String,
    /// ttl, loop_wait, retry_timeout.
    pub timing: [u64; 3],
    /// The command that ran the campaign.
    pub command: String,
    /// Per fault, in schedule order (the warm-up window first).
    pub faults: Vec<FaultResult>,
    /// Whether the final primary's `campaign_w` was read.
    pub checked_w: bool,
    /// Whether the final primary's `campaign_d` was read.
    pub checked_d: bool,
    /// Whether the events end with an `end` line (the campaign finished writing them).
    pub complete: bool,
    /// Write attempts through HAProxy, and how many were acknowledged.
    pub attempts: (usize, usize),
    /// Direct write attempts, and how many were acknowledged.
    pub direct_attempts: (usize, usize),
}

impl Report {
    /// Every way the campaign failed: lost acknowledged writes, two writable primaries,
    /// unhealed faults, and checks that could not be made. Empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.faults {
            let what = match f.nemesis {
                Some(n) => format!(
                    "fault #{} ({n}, target {})",
                    f.id,
                    f.target.as_deref().unwrap_or("-")
                ),
                None => "warm-up before the first fault".to_string(),
            };
            if !f.lost.is_empty() {
                out.push(format!(
                    "{what}: {} acknowledged write(s) through HAProxy lost: {}",
                    f.lost.len(),
                    sample(&f.lost.iter().map(ToString::to_string).collect::<Vec<_>>())
                ));
            }
            if !f.lost_direct.is_empty() && self.direct_losses_fail() {
                out.push(lost_direct(&what, f));
            }
            for o in &f.overlaps {
                out.push(format!(
                    "{what}: two writable primaries {} and {} from t={:.3} s for up to {:.3} s",
                    o.a, o.b, o.start, o.length
                ));
            }
            if let Some(why) = &f.unhealed {
                out.push(format!("{what}: never healed: {why}"));
            }
        }
        if !self.checked_w {
            out.push("the final primary's campaign_w was never read: lost writes through HAProxy not checked".into());
        }
        if !self.checked_d {
            out.push(
                "the final primary's campaign_d was never read: lost direct writes not checked"
                    .into(),
            );
        }
        if !self.complete {
            out.push("the events file has no end line: the campaign stopped early".into());
        }
        out
    }

    /// Whether the campaign passed.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// Whether a lost direct write fails the campaign: only with synchronous replication.
    /// With asynchronous replication a primary cut off from its replicas keeps acknowledging
    /// writes until it demotes (at the latest `retry_timeout` before its lease expires), and
    /// those writes are not on the member that takes over: that is asynchronous replication's
    /// documented window, not a fault of the agent. The direct writers reach every member
    /// whatever the partition, so they see it; the writer through HAProxy, like an
    /// application, is cut off with the rest of the cluster, and its losses always fail.
    pub fn direct_losses_fail(&self) -> bool {
        self.mode == "sync"
    }

    /// Findings that do not fail the campaign (asynchronous mode only): direct writes lost,
    /// and writes through HAProxy lost within [`ASYNC_WINDOW`] of a fault.
    pub fn notes(&self) -> Vec<String> {
        if self.direct_losses_fail() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for f in &self.faults {
            let what = format!(
                "fault #{} ({}, target {})",
                f.id,
                f.nemesis.map_or("warm-up".into(), |n| n.to_string()),
                f.target.as_deref().unwrap_or("-")
            );
            if !f.lost_async.is_empty() {
                let l: Vec<String> = f.lost_async.iter().map(ToString::to_string).collect();
                out.push(format!(
                    "{what}: {} write(s) through HAProxy acknowledged less than {ASYNC_WINDOW} s before the fault was in place, lost with the leader (asynchronous replication): {}",
                    l.len(),
                    sample(&l)
                ));
            }
            if !f.lost_direct.is_empty() {
                out.push(
                    lost_direct(&what, f)
                        + " (asynchronous replication: acknowledged by a primary whose writes did not reach the member that took over)",
                );
            }
        }
        out
    }
}

fn lost_direct(what: &str, f: &FaultResult) -> String {
    let l: Vec<String> = f
        .lost_direct
        .iter()
        .map(|(m, v)| format!("{m}:{v}"))
        .collect();
    format!(
        "{what}: {} acknowledged direct write(s) lost: {}",
        l.len(),
        sample(&l)
    )
}

/// The first values of a long list, for a one-line message.
fn sample(v: &[String]) -> String {
    if v.len() <= 10 {
        v.join(", ")
    } else {
        format!("{}, … ({} more)", v[..10].join(", "), v.len() - 10)
    }
}

/// Analyzes the events of one campaign (in file order).
pub fn analyze(events: &[Event]) -> Report {
    let mut r = Report {
        seed: None,
        mode: String::new(),
        timing: [0; 3],
        command: String::new(),
        faults: Vec::new(),
        checked_w: false,
        checked_d: false,
        complete: false,
        attempts: (0, 0),
        direct_attempts: (0, 0),
    };
    let mut end = 0.0f64;
    let mut lookups: BTreeMap<&'static str, &[[i64; 2]]> = BTreeMap::new();
    let mut faults: Vec<FaultResult> = vec![window(0, None, None, 0.0)];
    let mut heals: BTreeMap<u32, f64> = BTreeMap::new();
    let mut healthy: BTreeMap<u32, f64> = BTreeMap::new();
    let mut acks: Vec<(f64, i64)> = Vec::new();
    let mut injections: Vec<(f64, f64, u32)> = Vec::new();
    let mut direct_acks: Vec<(f64, &str, i64)> = Vec::new();
    for ev in events {
        match ev {
            Event::Start {
                seed,
                mode,
                timing,
                command,
                ..
            } => {
                r.seed = Some(*seed);
                r.mode.clone_from(mode);
                r.timing = *timing;
                r.command.clone_from(command);
            }
            Event::Fault {
                t,
                done,
                id,
                nemesis,
                target,
                ..
            } => {
                faults.push(window(*id, Some(*nemesis), target.clone(), *t));
                injections.push((*t, done.unwrap_or(*t), *id));
            }
            Event::Heal { t, id } => {
                heals.insert(*id, *t);
            }
            Event::Healthy { t, id, .. } => {
                healthy.entry(*id).or_insert(*t);
            }
            Event::Unhealed { id, why, .. } => {
                if let Some(f) = faults.iter_mut().find(|f| f.id == *id) {
                    f.unhealed = Some(why.clone());
                }
            }
            Event::W { v, e, ok, .. } => {
                r.attempts.0 += 1;
                if *ok {
                    r.attempts.1 += 1;
                    acks.push((*e, *v));
                }
                end = end.max(*e);
            }
            Event::D { m, v, e, ok, .. } => {
                r.direct_attempts.0 += 1;
                if *ok {
                    r.direct_attempts.1 += 1;
                    direct_acks.push((*e, m.as_str(), *v));
                }
                end = end.max(*e);
            }
            Event::Lookup { table, present, .. } => {
                let key = match table {
                    Table::W => "w",
                    Table::D => "d",
                };
                lookups.insert(key, present.as_slice());
            }
            Event::End { t } => {
                r.complete = true;
                end = end.max(*t);
            }
            Event::Note { .. } => {}
        }
    }
    faults.sort_by(|a, b| a.window.0.total_cmp(&b.window.0));
    let starts: Vec<f64> = faults.iter().map(|f| f.window.0).collect();
    for (i, f) in faults.iter_mut().enumerate() {
        f.window.1 = starts.get(i + 1).copied().unwrap_or(end.max(f.window.0));
        if let (Some(h), Some(ok)) = (heals.get(&f.id), healthy.get(&f.id)) {
            f.heal_time = Some(ok - h);
        }
    }
    let index_of = |t: f64| starts.partition_point(|s| *s <= t).saturating_sub(1);
    acks.sort_by(|a, b| a.0.total_cmp(&b.0));
    let sync = r.mode == "sync";
    for &(e, v) in &acks {
        let i = index_of(e);
        faults[i].acked += 1;
        if let Some(present) = lookups.get("w")
            && !in_ranges(present, v)
        {
            let at_injection = injections
                .iter()
                .find(|(t, done, _)| e >= t - ASYNC_WINDOW && e <= *done)
                .map(|(_, _, id)| *id);
            match at_injection.and_then(|id| faults.iter().position(|f| f.id == id)) {
                Some(j) if !sync => faults[j].lost_async.push(v),
                _ => faults[i].lost.push(v),
            }
        }
    }
    if let Some(present) = lookups.get("d") {
        for &(e, m, v) in &direct_acks {
            if !in_ranges(present, v) {
                faults[index_of(e)].lost_direct.push((m.to_string(), v));
            }
        }
    }
    r.checked_w = lookups.contains_key("w");
    r.checked_d = lookups.contains_key("d");
    for o in overlap::find(events) {
        faults[index_of(o.start)].overlaps.push(o);
    }
    // A gap belongs to the window where it ends: the fault that caused it starts after the
    // last acknowledgement before it (a kill lands a few ms after a write), so the gap's start
    // usually lies in the previous window.
    for w in acks.windows(2) {
        let (a, b) = (w[0].0, w[1].0);
        let f = &mut faults[index_of(b)];
        if f.longest_gap.is_none_or(|(_, len)| b - a > len) {
            f.longest_gap = Some((a, b - a));
        }
    }
    r.faults = faults;
    r
}

fn window(id: u32, nemesis: Option<Nemesis>, target: Option<String>, t: f64) -> FaultResult {
    FaultResult {
        id,
        nemesis,
        target,
        window: (t, t),
        acked: 0,
        lost: Vec::new(),
        lost_async: Vec::new(),
        lost_direct: Vec::new(),
        overlaps: Vec::new(),
        longest_gap: None,
        heal_time: None,
        unhealed: None,
    }
}
