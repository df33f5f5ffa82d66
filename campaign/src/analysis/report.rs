//! The report as text: a Markdown table per nemesis (the one the README publishes), one line
//! per fault, and the list of failures with the times to look up in `events.jsonl`.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{FaultResult, Report};
use crate::schedule::Nemesis;

/// Figures of one table row (one nemesis, or all).
#[derive(Debug, Default)]
struct Row {
    faults: usize,
    acked: usize,
    lost: usize,
    lost_async: usize,
    lost_direct: usize,
    overlaps: usize,
    overlap_secs: f64,
    gaps: Vec<f64>,
    heals: Vec<f64>,
    unhealed: usize,
}

impl Row {
    fn add(&mut self, f: &FaultResult) {
        self.faults += 1;
        self.acked += f.acked;
        self.lost += f.lost.len();
        self.lost_async += f.lost_async.len();
        self.lost_direct += f.lost_direct.len();
        self.overlaps += f.overlaps.len();
        self.overlap_secs += f.overlaps.iter().map(|o| o.length).sum::<f64>();
        if let Some((_, g)) = f.longest_gap {
            self.gaps.push(g);
        }
        if let Some(h) = f.heal_time {
            self.heals.push(h);
        }
        if f.unhealed.is_some() {
            self.unhealed += 1;
        }
    }

    fn cells(&self, name: &str, direct_fails: bool) -> String {
        let direct = if direct_fails { self.lost_direct } else { 0 };
        let verdict = if self.lost + direct + self.overlaps + self.unhealed == 0 {
            "pass"
        } else {
            "**FAIL**"
        };
        let overlaps = if self.overlaps == 0 {
            "0".to_string()
        } else {
            format!("**{}** ({:.1} s)", self.overlaps, self.overlap_secs)
        };
        let lost = if self.lost == 0 {
            "0".to_string()
        } else {
            format!("**{}**", self.lost)
        };
        let in_window = format!("{} / {}", self.lost_async, self.lost_direct);
        format!(
            "| {name} | {} | {} | {lost} | {in_window} | {overlaps} | {} | {} | {} | {verdict} |",
            self.faults,
            self.acked,
            med_max(&self.gaps),
            med_max(&self.heals),
            self.unhealed
        )
    }
}

/// "median / max" of seconds, or "-".
fn med_max(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let mid = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    format!("{mid:.2} / {:.2}", s[s.len() - 1])
}

/// The summary table: one row per nemesis that ran, then all faults together.
pub fn table(r: &Report) -> String {
    let mut rows: BTreeMap<Nemesis, Row> = BTreeMap::new();
    let mut all = Row::default();
    for f in &r.faults {
        if let Some(n) = f.nemesis {
            rows.entry(n).or_default().add(f);
            all.add(f);
        }
    }
    let mut out = String::from(
        "| nemesis | faults | writes acked (HAProxy) | acked writes lost (HAProxy) | lost to async replication (HAProxy / direct) | two writable primaries (count, time) | longest write gap, s (median / max) | heal → healthy, s (median / max) | unhealed | result |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (n, row) in &rows {
        let _ = writeln!(out, "{}", row.cells(n.name(), r.direct_losses_fail()));
    }
    let _ = writeln!(out, "{}", all.cells("**all**", r.direct_losses_fail()));
    out
}

/// The whole report: header, table, one line per fault, failures and verdict.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# hapg fault campaign: seed {}, {} replication, ttl {} / loop_wait {} / retry_timeout {}\n",
        r.seed.map_or("?".into(), |s| s.to_string()),
        r.mode,
        r.timing[0],
        r.timing[1],
        r.timing[2]
    );
    let _ = writeln!(out, "command: `{}`\n", r.command);
    out.push_str(&table(r));
    let _ = writeln!(
        out,
        "\nwrites through HAProxy: {} attempts, {} acknowledged; direct writes: {} attempts, {} acknowledged\n",
        r.attempts.0, r.attempts.1, r.direct_attempts.0, r.direct_attempts.1
    );
    out.push_str("## faults\n\n");
    for f in &r.faults {
        let name = f.nemesis.map_or("warm-up".to_string(), |n| n.to_string());
        let gap = f
            .longest_gap
            .map_or("-".into(), |(at, len)| format!("{len:.2} s at t={at:.1}"));
        let heal = match (&f.unhealed, f.heal_time) {
            (Some(why), _) => format!("NEVER HEALED ({why})"),
            (None, Some(h)) => format!("{h:.2} s"),
            (None, None) => "-".into(),
        };
        let _ = writeln!(
            out,
            "- #{} {name} → {} at t={:.1} s: {} acked, {} lost, async losses {} + {} direct, {} overlaps, longest gap {gap}, healthy after {heal}",
            f.id,
            f.target.as_deref().unwrap_or("-"),
            f.window.0,
            f.acked,
            f.lost.len(),
            f.lost_async.len(),
            f.lost_direct.len(),
            f.overlaps.len(),
        );
    }
    let notes = r.notes();
    if !notes.is_empty() {
        out.push_str("\n## notes (not failures)\n\n");
        for n in &notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    let failures = r.failures();
    if failures.is_empty() {
        out.push_str("\nresult: PASSED (no acknowledged write lost, never two writable primaries, every fault healed)\n");
    } else {
        out.push_str("\n## failures\n\n");
        for f in &failures {
            let _ = writeln!(out, "- {f}");
        }
        let _ = writeln!(out, "\nresult: FAILED ({} finding(s))", failures.len());
    }
    out
}
