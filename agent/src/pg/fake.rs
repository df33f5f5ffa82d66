//! `FakePostgres`: an in-memory `Postgres` for the shell's tests.
//!
//! It holds a `PgState` and moves it the way a real PostgreSQL would (bootstrap gives a
//! running primary on timeline 1, an immediate stop leaves `in production`, promotion adds a
//! timeline, a clone leaves a stopped replica-to-be, ...), records every call, and injects
//! faults: `fail_next(op)` makes the next call of `op` fail without changing anything,
//! `hang(true)` blocks every operation until `hang(false)` and makes `status()` report
//! `Unknown` (what a frozen server looks like after the status timeout), `set_state`
//! replaces the state outright.
//!
//! Invariants: no I/O, no clocks; `status()` never blocks. Only built for tests
//! (`cfg(any(test, feature = "testing"))`).
//!
//! This file holds the type, its state and the test controls; `fake/calls.rs` the record of
//! calls (`Call`, `Op`), `fake/behaviour.rs` the `Postgres` implementation.

mod behaviour;
mod calls;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::watch;

pub use calls::{Call, Op};

use super::{GucValue, PgDetails, PgError, Result};
use crate::ha::{Lsn, MemberName, PgRole, PgState, Upstream};

struct Inner {
    state: PgState,
    details: PgDetails,
    calls: Vec<Call>,
    /// When `stop` was last called (tokio's clock), for timing assertions.
    stopped_at: Option<tokio::time::Instant>,
    fail: Vec<Op>,
    /// Identity and position kept across stop/start.
    sysid: String,
    timeline: u32,
    lsn: Lsn,
    /// The role the data directory would start in (standby.signal).
    role: PgRole,
    upstream: Option<Upstream>,
    slots: Vec<MemberName>,
    parameters: BTreeMap<String, GucValue>,
}

/// In-memory PostgreSQL (see the module docs).
pub struct FakePostgres {
    inner: Mutex<Inner>,
    hang: watch::Sender<bool>,
}

impl Default for FakePostgres {
    fn default() -> Self {
        FakePostgres::new()
    }
}

impl FakePostgres {
    /// No data directory yet.
    pub fn new() -> FakePostgres {
        FakePostgres {
            inner: Mutex::new(Inner {
                state: PgState::NoData,
                details: PgDetails::default(),
                calls: Vec::new(),
                stopped_at: None,
                fail: Vec::new(),
                sysid: "7000000000000000001".into(),
                timeline: 1,
                lsn: Lsn(0x0100_0000),
                role: PgRole::Primary,
                upstream: None,
                slots: Vec::new(),
                parameters: BTreeMap::new(),
            }),
            hang: watch::channel(false).0,
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current role (`Unknown` unless running).
    pub fn state_role(&self) -> PgRole {
        self.inner().state.role()
    }

    /// Replaces the state (and the identity, timeline and position it carries).
    pub fn set_state(&self, state: PgState) {
        let mut i = self.inner();
        match &state {
            PgState::Running(r) => {
                i.sysid = r.sysid.clone();
                i.timeline = r.timeline;
                i.lsn = r.lsn;
                i.role = r.role;
            }
            PgState::Stopped(s) => {
                i.sysid = s.sysid.clone();
                i.timeline = s.timeline;
            }
            _ => {}
        }
        i.state = state;
    }

    /// The details `status()` reports.
    pub fn set_details(&self, details: PgDetails) {
        self.inner().details = details;
    }

    /// The system identifier used by `bootstrap` and `create_replica`.
    pub fn set_sysid(&self, sysid: &str) {
        self.inner().sysid = sysid.to_string();
    }

    /// The next call of `op` fails (once per call of this method) without effect.
    pub fn fail_next(&self, op: Op) {
        self.inner().fail.push(op);
    }

    /// `true`: operations block until `hang(false)`; `status()` reports `Unknown`.
    pub fn hang(&self, on: bool) {
        self.hang.send_replace(on);
    }

    /// Calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.inner().calls.clone()
    }

    /// When `stop` was last entered.
    pub fn stopped_at(&self) -> Option<tokio::time::Instant> {
        self.inner().stopped_at
    }

    /// Calls so far, clearing the record.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.inner().calls)
    }

    /// Members passed to the last `sync_slots` on a running primary.
    pub fn slots(&self) -> Vec<MemberName> {
        self.inner().slots.clone()
    }

    /// Parameters from the last `reload`.
    pub fn parameters(&self) -> BTreeMap<String, GucValue> {
        self.inner().parameters.clone()
    }

    /// Waits out a hang, records the call, and applies an injected failure.
    async fn enter(&self, call: Call) -> Result<std::sync::MutexGuard<'_, Inner>> {
        let mut rx = self.hang.subscribe();
        // The sender lives as long as `self`, so this only ends when the hang is lifted.
        let _ = rx.wait_for(|hung| !*hung).await;
        let op = call.op();
        let mut i = self.inner();
        i.calls.push(call);
        if let Some(pos) = i.fail.iter().position(|o| *o == op) {
            i.fail.remove(pos);
            return Err(PgError::Other(format!("injected failure of {op}")));
        }
        Ok(i)
    }
}
