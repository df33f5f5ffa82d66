//! The raw events of a campaign, one JSON object per line in `events.jsonl`: what was done
//! (faults, heals), what the workload saw (every write attempt with its send and answer time)
//! and what the final primary holds. The checker ([`crate::analysis`]) reads nothing else, so
//! every figure of a report can be recomputed from the file (`ha-campaign analyze FILE`).
//!
//! Times `t`, `s` (sent) and `e` (answered) are seconds since the campaign started, from one
//! monotonic clock shared by every thread of the campaign process.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::schedule::Nemesis;

/// Which table a final lookup read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// `campaign_w`, written through HAProxy.
    W,
    /// `campaign_d`, written directly to each member.
    D,
}

/// One line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// First line: how the campaign ran.
    Start {
        /// Unix time in ms at t = 0 (to match the agents' logs).
        wall_ms: u64,
        /// The seed of the schedule.
        seed: u64,
        /// `async` or `sync`.
        mode: String,
        /// Lease ttl, loop_wait and retry_timeout in seconds.
        timing: [u64; 3],
        /// The command line.
        command: String,
    },
    /// A fault was injected.
    Fault {
        /// When its injection began.
        t: f64,
        /// When it was in place (processes killed, rules active).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        done: Option<f64>,
        /// Its position in the schedule (1-based).
        id: u32,
        /// What.
        nemesis: Nemesis,
        /// The member it was aimed at, if any.
        target: Option<String>,
        /// Details (victims, candidates, rules).
        detail: String,
    },
    /// The fault was healed (rules removed, processes restarted or resumed).
    Heal {
        /// When.
        t: f64,
        /// Fault id.
        id: u32,
    },
    /// The cluster was healthy again: one primary and every other member streaming from it.
    Healthy {
        /// When it was first seen healthy.
        t: f64,
        /// Fault id (0: after the initial bootstrap).
        id: u32,
        /// The primary.
        primary: String,
    },
    /// The cluster did not become healthy within the heal timeout.
    Unhealed {
        /// When the campaign gave up.
        t: f64,
        /// Fault id.
        id: u32,
        /// The last state seen.
        why: String,
    },
    /// Something worth knowing for a later reading (a switchover's answer, a storm step).
    Note {
        /// When.
        t: f64,
        /// Fault id (0 outside faults).
        id: u32,
        /// Free text.
        what: String,
    },
    /// One write attempt through HAProxy.
    W {
        /// The value (unique, increasing).
        v: i64,
        /// Sent.
        s: f64,
        /// Answered (or failed).
        e: f64,
        /// Acknowledged (committed).
        ok: bool,
        /// The member that acknowledged it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        srv: Option<String>,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        err: Option<String>,
    },
    /// One direct write attempt on member `m` (a new connection each time).
    D {
        /// The member.
        m: String,
        /// The value (unique).
        v: i64,
        /// Sent (before connecting).
        s: f64,
        /// Answered (or failed).
        e: f64,
        /// Acknowledged (committed).
        ok: bool,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        err: Option<String>,
    },
    /// The values a table holds on the final primary, as inclusive ranges.
    Lookup {
        /// When.
        t: f64,
        /// The member read.
        primary: String,
        /// Which table.
        table: Table,
        /// Sorted, disjoint, inclusive ranges of present values.
        present: Vec<[i64; 2]>,
    },
    /// Last line.
    End {
        /// When.
        t: f64,
    },
}

/// The campaign's clock: seconds since the start.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    /// Seconds since the start, to the microsecond (a short decimal that reads back
    /// exactly from JSON).
    pub fn t(&self) -> f64 {
        self.start.elapsed().as_micros() as f64 / 1e6
    }
}

/// Appends events to `events.jsonl`; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct EventLog {
    out: Arc<Mutex<BufWriter<File>>>,
    /// The clock every event's time comes from.
    pub clock: Clock,
}

/// Reading or writing the events file failed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not an event.
    #[error("{path} line {line}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Why.
        source: serde_json::Error,
    },
}

impl EventLog {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path, clock: Clock) -> Result<EventLog, EventsError> {
        let f = File::create(path).map_err(|source| EventsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(EventLog {
            out: Arc::new(Mutex::new(BufWriter::new(f))),
            clock,
        })
    }

    /// Seconds since the start.
    pub fn t(&self) -> f64 {
        self.clock.t()
    }

    /// Appends one event. A failed write is reported once on stderr and otherwise ignored:
    /// the workload must not stop because the disk is slow (the report then says the file is
    /// incomplete when it cannot be parsed).
    pub fn push(&self, ev: &Event) {
        let Ok(line) = serde_json::to_string(ev) else {
            return;
        };
        let mut out = match self.out.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Err(e) = writeln!(out, "{line}") {
            tracing::error!(error = %e, "cannot write to the events file");
        }
    }

    /// Writes buffered events to the file.
    pub fn flush(&self) {
        let mut out = match self.out.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let _ = out.flush();
    }
}

/// Reads every event of a file.
pub fn read(path: &Path) -> Result<Vec<Event>, EventsError> {
    let name = path.display().to_string();
    let f = File::open(path).map_err(|source| EventsError::Io {
        path: name.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|source| EventsError::Io {
            path: name.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let ev = serde_json::from_str(&line).map_err(|source| EventsError::Parse {
            path: name.clone(),
            line: i + 1,
            source,
        })?;
        out.push(ev);
    }
    Ok(out)
}

/// Sorted values as inclusive ranges: `[1, 2, 3, 7]` → `[[1, 3], [7, 7]]`.
pub fn to_ranges(sorted: &[i64]) -> Vec<[i64; 2]> {
    let mut out: Vec<[i64; 2]> = Vec::new();
    for &v in sorted {
        match out.last_mut() {
            Some(r) if v == r[1] + 1 => r[1] = v,
            Some(r) if v <= r[1] => {}
            _ => out.push([v, v]),
        }
    }
    out
}

/// Whether `v` lies in one of the sorted inclusive `ranges`.
pub fn in_ranges(ranges: &[[i64; 2]], v: i64) -> bool {
    let i = ranges.partition_point(|r| r[1] < v);
    ranges.get(i).is_some_and(|r| r[0] <= v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_round_trip() {
        let r = to_ranges(&[1, 2, 3, 7, 9, 10]);
        assert_eq!(r, vec![[1, 3], [7, 7], [9, 10]]);
        for v in [1, 2, 3, 7, 9, 10] {
            assert!(in_ranges(&r, v), "{v}");
        }
        for v in [0, 4, 6, 8, 11] {
            assert!(!in_ranges(&r, v), "{v}");
        }
        assert!(to_ranges(&[]).is_empty());
    }

    #[test]
    fn events_serialize_as_tagged_lines() {
        let ev = Event::W {
            v: 5,
            s: 1.5,
            e: 1.501,
            ok: true,
            srv: Some("node1".into()),
            err: None,
        };
        let line = serde_json::to_string(&ev).unwrap();
        assert_eq!(
            line,
            r#"{"ev":"w","v":5,"s":1.5,"e":1.501,"ok":true,"srv":"node1"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), ev);
    }
}
