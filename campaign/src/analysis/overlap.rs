//! Two writable primaries, from the direct writers' attempts.
//!
//! Each member has its own writer that opens a new connection and inserts one row every
//! 100 ms, one attempt after another. An acknowledged attempt sent at `s` and answered at `e`
//! proves the member committed a write at some moment in `[s, e]`. A **run** is a maximal
//! sequence of consecutive acknowledged attempts of one member (any failed attempt ends it);
//! the member is taken to have been writable throughout a run.
//!
//! Two members A and B were **both writable** when a write of B was certainly committed
//! between two writes of one run of A: B's `[s, e]` lies inside A's run between its first
//! answer and its last send (`e_first(A) <= s(B)` and `e(B) <= s_last(A)`). That is, A had
//! already committed a write before B committed, and A committed another after. The rule uses
//! only the order the client saw, so a slow or stalled client cannot invent an overlap: in a
//! clean switchover every write of the old primary is committed before the new one is
//! promoted, and the test can never hold.
//!
//! The interval reported is an upper bound: from the later of the two runs' first sends to
//! the earlier of their last answers.

use std::collections::BTreeMap;

use crate::events::Event;

/// An interval with two writable primaries.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlap {
    /// One member.
    pub a: String,
    /// The other.
    pub b: String,
    /// Start, seconds since the campaign start.
    pub start: f64,
    /// Length in seconds (an upper bound, see the module docs).
    pub length: f64,
    /// The write of `b` that proves it: (value, sent, answered).
    pub evidence: (i64, f64, f64),
}

/// One acknowledged direct write.
#[derive(Debug, Clone, Copy)]
struct Ack {
    v: i64,
    s: f64,
    e: f64,
}

/// A run of consecutive acknowledged attempts of one member.
#[derive(Debug)]
struct Run<'a> {
    member: &'a str,
    acks: Vec<Ack>,
}

impl Run<'_> {
    fn first(&self) -> Ack {
        self.acks[0]
    }
    fn last(&self) -> Ack {
        self.acks[self.acks.len() - 1]
    }
    /// A write of `other` committed strictly between two writes of this run, if any.
    fn interleaved(&self, other: &Run<'_>) -> Option<Ack> {
        let (lo, hi) = (self.first().e, self.last().s);
        if hi <= lo {
            return None;
        }
        let from = other.acks.partition_point(|a| a.s < lo);
        other.acks[from..]
            .iter()
            .take_while(|a| a.s <= hi)
            .find(|a| a.e <= hi)
            .copied()
    }
}

/// Every interval with two writable primaries, in time order.
pub fn find(events: &[Event]) -> Vec<Overlap> {
    let mut attempts: BTreeMap<&str, Vec<(f64, f64, bool, i64)>> = BTreeMap::new();
    for ev in events {
        if let Event::D { m, v, s, e, ok, .. } = ev {
            attempts
                .entry(m.as_str())
                .or_default()
                .push((*s, *e, *ok, *v));
        }
    }
    let mut runs: Vec<Run<'_>> = Vec::new();
    for (member, mut list) in attempts {
        list.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut cur: Vec<Ack> = Vec::new();
        for (s, e, ok, v) in list {
            if ok {
                cur.push(Ack { v, s, e });
            } else if !cur.is_empty() {
                runs.push(Run {
                    member,
                    acks: std::mem::take(&mut cur),
                });
            }
        }
        if !cur.is_empty() {
            runs.push(Run { member, acks: cur });
        }
    }
    // Sweep in start order: a later run that starts after this one's last answer cannot
    // overlap it, nor can any run after that one.
    runs.sort_by(|x, y| x.first().s.total_cmp(&y.first().s));
    let mut out = Vec::new();
    for (i, ra) in runs.iter().enumerate() {
        for rb in runs[i + 1..]
            .iter()
            .take_while(|rb| rb.first().s < ra.last().e)
        {
            if ra.member == rb.member {
                continue;
            }
            let start = ra.first().s.max(rb.first().s);
            let end = ra.last().e.min(rb.last().e);
            if end <= start {
                continue;
            }
            let (a, b, proof) = match (ra.interleaved(rb), rb.interleaved(ra)) {
                (Some(p), _) => (ra.member, rb.member, p),
                (None, Some(p)) => (rb.member, ra.member, p),
                (None, None) => continue,
            };
            out.push(Overlap {
                a: a.to_string(),
                b: b.to_string(),
                start,
                length: end - start,
                evidence: (proof.v, proof.s, proof.e),
            });
        }
    }
    out.sort_by(|x, y| x.start.total_cmp(&y.start));
    out
}
