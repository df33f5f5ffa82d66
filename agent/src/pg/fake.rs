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

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use tokio::sync::watch;

use super::{GucValue, PgDetails, PgError, PgStatus, Postgres, Promoted, Result};
use crate::ha::slots::IgnoreSlot;
use crate::ha::{
    ControlState, Lsn, MemberName, PgRole, PgState, RunningPg, StartAs, StopMode, StoppedPg,
    Upstream,
};

/// The operations of `trait Postgres` (for `fail_next`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `bootstrap`.
    Bootstrap,
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `restart`.
    Restart,
    /// `promote`.
    Promote,
    /// `follow`.
    Follow,
    /// `retry_streaming`.
    RetryStreaming,
    /// `create_replica`.
    Clone,
    /// `rewind_from`.
    Rewind,
    /// `sync_slots`.
    SyncSlots,
    /// `reload`.
    Reload,
    /// `set_sync_standby_names`.
    SetSyncStandbyNames,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One recorded call with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `bootstrap()`.
    Bootstrap,
    /// `start(role)`.
    Start(StartAs),
    /// `stop(mode)`.
    Stop(StopMode),
    /// `restart()`.
    Restart,
    /// `promote()`.
    Promote,
    /// `follow(upstream)`.
    Follow(Option<Upstream>),
    /// `retry_streaming()`.
    RetryStreaming,
    /// `create_replica(upstream)`.
    Clone(Upstream),
    /// `rewind_from(upstream)`.
    Rewind(Upstream),
    /// `sync_slots(members)`.
    SyncSlots(Vec<MemberName>),
    /// `reload(parameters)`.
    Reload(BTreeMap<String, GucValue>),
    /// `set_sync_standby_names(value)`.
    SetSyncStandbyNames(String),
}

impl Call {
    /// The operation this call is of.
    pub fn op(&self) -> Op {
        match self {
            Call::Bootstrap => Op::Bootstrap,
            Call::Start(_) => Op::Start,
            Call::Stop(_) => Op::Stop,
            Call::Restart => Op::Restart,
            Call::Promote => Op::Promote,
            Call::Follow(_) => Op::Follow,
            Call::RetryStreaming => Op::RetryStreaming,
            Call::Clone(_) => Op::Clone,
            Call::Rewind(_) => Op::Rewind,
            Call::SyncSlots(_) => Op::SyncSlots,
            Call::Reload(_) => Op::Reload,
            Call::SetSyncStandbyNames(_) => Op::SetSyncStandbyNames,
        }
    }
}

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

fn running(i: &Inner, role: PgRole, streaming: bool) -> PgState {
    PgState::Running(RunningPg {
        role,
        sysid: i.sysid.clone(),
        timeline: i.timeline,
        lsn: i.lsn,
        replay_lsn: i.lsn,
        streaming,
    })
}

fn stopped(i: &Inner, control_state: ControlState) -> PgState {
    PgState::Stopped(StoppedPg {
        sysid: i.sysid.clone(),
        timeline: i.timeline,
        control_state,
        checkpoint_lsn: i.lsn,
    })
}

fn is_running(state: &PgState) -> bool {
    matches!(
        state,
        PgState::Running(_) | PgState::Starting | PgState::Unknown
    )
}

impl Postgres for FakePostgres {
    async fn status(&self) -> PgStatus {
        if *self.hang.borrow() {
            return PgStatus {
                state: PgState::Unknown,
                details: PgDetails::default(),
            };
        }
        let i = self.inner();
        PgStatus {
            state: i.state.clone(),
            details: i.details.clone(),
        }
    }

    async fn bootstrap(&self) -> Result<()> {
        let mut i = self.enter(Call::Bootstrap).await?;
        if i.state != PgState::NoData {
            return Err(PgError::Other(
                "data directory already holds a cluster".into(),
            ));
        }
        i.timeline = 1;
        i.role = PgRole::Primary;
        i.state = running(&i, PgRole::Primary, false);
        Ok(())
    }

    async fn start(&self, role: &StartAs) -> Result<()> {
        let mut i = self.enter(Call::Start(role.clone())).await?;
        match &i.state {
            PgState::NoData => return Err(PgError::Other("no cluster to start".into())),
            s if is_running(s) => return Ok(()),
            _ => {}
        }
        let (pg_role, streaming) = match role {
            StartAs::Primary => (PgRole::Primary, false),
            StartAs::Replica { upstream } => (PgRole::Replica, upstream.is_some()),
        };
        i.role = pg_role;
        i.upstream = match role {
            StartAs::Primary => None,
            StartAs::Replica { upstream } => upstream.clone(),
        };
        i.state = running(&i, pg_role, streaming);
        Ok(())
    }

    async fn stop(&self, mode: StopMode) -> Result<()> {
        let mut i = self.enter(Call::Stop(mode)).await?;
        i.stopped_at = Some(tokio::time::Instant::now());
        if !is_running(&i.state) {
            return Ok(());
        }
        let primary = i.role == PgRole::Primary;
        let control = match (mode, primary) {
            (StopMode::Immediate, true) => ControlState::InProduction,
            (StopMode::Immediate, false) => ControlState::InRecovery,
            (_, true) => ControlState::ShutDown,
            (_, false) => ControlState::ShutDownInRecovery,
        };
        i.state = stopped(&i, control);
        Ok(())
    }

    async fn restart(&self, role: &StartAs) -> Result<()> {
        let mut i = self.enter(Call::Restart).await?;
        if i.state == PgState::NoData {
            return Err(PgError::Other("no cluster to restart".into()));
        }
        let role = match role {
            StartAs::Primary => PgRole::Primary,
            StartAs::Replica { upstream } => {
                i.upstream = upstream.clone();
                PgRole::Replica
            }
        };
        i.role = role;
        let streaming = role == PgRole::Replica && i.upstream.is_some();
        i.state = running(&i, role, streaming);
        Ok(())
    }

    async fn promote(&self) -> Result<Promoted> {
        let mut i = self.enter(Call::Promote).await?;
        match &i.state {
            PgState::Running(r) if r.role == PgRole::Replica => {}
            other => {
                return Err(PgError::Sql {
                    what: "promote",
                    detail: format!("recovery is not in progress ({other:?})"),
                });
            }
        }
        let old = i.timeline;
        i.timeline += 1;
        i.role = PgRole::Primary;
        i.upstream = None;
        i.state = running(&i, PgRole::Primary, false);
        Ok(Promoted {
            timeline: i.timeline,
            history: vec![(old, i.lsn.0, "no recovery target specified".into())],
        })
    }

    async fn retry_streaming(&self) -> Result<()> {
        self.enter(Call::RetryStreaming).await.map(|_| ())
    }

    async fn follow(&self, upstream: Option<&Upstream>) -> Result<()> {
        let mut i = self.enter(Call::Follow(upstream.cloned())).await?;
        i.upstream = upstream.cloned();
        if let PgState::Running(r) = &mut i.state
            && r.role == PgRole::Replica
        {
            r.streaming = upstream.is_some();
        }
        Ok(())
    }

    async fn create_replica(&self, upstream: &Upstream, sysid: &str) -> Result<()> {
        let mut i = self.enter(Call::Clone(upstream.clone())).await?;
        // The copy takes the leader's identity, which the caller vouched for.
        i.sysid = sysid.to_string();
        i.role = PgRole::Replica;
        i.upstream = Some(upstream.clone());
        i.state = stopped(&i, ControlState::InProduction);
        Ok(())
    }

    async fn rewind_from(&self, upstream: &Upstream) -> Result<()> {
        let mut i = self.enter(Call::Rewind(upstream.clone())).await?;
        if i.state == PgState::NoData {
            return Err(PgError::Other("no cluster to rewind".into()));
        }
        i.role = PgRole::Replica;
        i.state = stopped(&i, ControlState::InRecovery);
        Ok(())
    }

    async fn sync_slots(&self, members: &[MemberName], _ignore: &[IgnoreSlot]) -> Result<()> {
        let mut i = self.enter(Call::SyncSlots(members.to_vec())).await?;
        if matches!(&i.state, PgState::Running(r) if r.role == PgRole::Primary) {
            i.slots = members.to_vec();
        }
        Ok(())
    }

    async fn reload(&self, parameters: BTreeMap<String, GucValue>) -> Result<()> {
        let mut i = self.enter(Call::Reload(parameters.clone())).await?;
        i.parameters = parameters;
        Ok(())
    }

    async fn set_sync_standby_names(&self, value: &str) -> Result<()> {
        let mut i = self
            .enter(Call::SetSyncStandbyNames(value.to_string()))
            .await?;
        i.parameters.insert(
            "synchronous_standby_names".into(),
            GucValue::Str(value.to_string()),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::ConnTarget;
    use std::time::Duration;

    fn leader() -> Upstream {
        Upstream {
            name: MemberName::new("pg1"),
            conn: ConnTarget {
                host: "10.0.0.1".into(),
                port: 5432,
            },
        }
    }

    #[tokio::test]
    async fn bootstrap_stop_start_and_promote_move_the_state_plausibly() {
        let pg = FakePostgres::new();
        assert_eq!(pg.status().await.state, PgState::NoData);
        pg.bootstrap().await.unwrap();
        let r = pg.status().await.state.running().cloned().unwrap();
        assert_eq!((r.role, r.timeline), (PgRole::Primary, 1));
        assert!(pg.bootstrap().await.is_err());

        pg.stop(StopMode::Immediate).await.unwrap();
        assert!(matches!(
            pg.status().await.state,
            PgState::Stopped(StoppedPg {
                control_state: ControlState::InProduction,
                ..
            })
        ));
        pg.rewind_from(&leader()).await.unwrap();
        pg.start(&StartAs::Replica {
            upstream: Some(leader()),
        })
        .await
        .unwrap();
        let r = pg.status().await.state.running().cloned().unwrap();
        assert!(r.role == PgRole::Replica && r.streaming);
        pg.follow(None).await.unwrap();
        assert!(!pg.status().await.state.running().unwrap().streaming);

        let p = pg.promote().await.unwrap();
        assert_eq!(p.timeline, 2);
        assert_eq!(p.history[0].0, 1);
        assert_eq!(pg.status().await.state.role(), PgRole::Primary);
        assert!(pg.promote().await.is_err(), "a primary cannot be promoted");
        pg.stop(StopMode::Fast).await.unwrap();
        pg.restart(&StartAs::Primary).await.unwrap();
        assert_eq!(pg.status().await.state.role(), PgRole::Primary);
        assert_eq!(pg.calls().len(), 10);
        assert_eq!(pg.take_calls()[0], Call::Bootstrap);
        assert!(pg.calls().is_empty());
    }

    #[tokio::test]
    async fn clone_leaves_a_stopped_cluster_to_start_as_replica() {
        let pg = FakePostgres::new();
        pg.set_sysid("42");
        pg.create_replica(&leader(), "42").await.unwrap();
        match pg.status().await.state {
            PgState::Stopped(s) => assert_eq!(s.sysid, "42"),
            other => panic!("{other:?}"),
        }
        pg.restart(&StartAs::Replica {
            upstream: Some(leader()),
        })
        .await
        .unwrap();
        assert_eq!(pg.status().await.state.role(), PgRole::Replica);
    }

    #[tokio::test]
    async fn injected_failures_hit_once_and_change_nothing() {
        let pg = FakePostgres::new();
        pg.fail_next(Op::Bootstrap);
        assert!(pg.bootstrap().await.is_err());
        assert_eq!(pg.status().await.state, PgState::NoData);
        pg.bootstrap().await.unwrap();
        assert_eq!(pg.calls(), vec![Call::Bootstrap, Call::Bootstrap]);
        pg.set_state(PgState::Starting);
        assert_eq!(pg.status().await.state, PgState::Starting);
    }

    #[tokio::test]
    async fn a_hung_fake_blocks_operations_but_not_status() {
        let pg = std::sync::Arc::new(FakePostgres::new());
        pg.bootstrap().await.unwrap();
        pg.hang(true);
        assert_eq!(pg.status().await.state, PgState::Unknown);
        let blocked =
            tokio::time::timeout(Duration::from_millis(50), pg.stop(StopMode::Fast)).await;
        assert!(blocked.is_err(), "stop finished while hung");
        let pg2 = pg.clone();
        let stop = tokio::spawn(async move { pg2.stop(StopMode::Fast).await });
        tokio::task::yield_now().await;
        pg.hang(false);
        stop.await.unwrap().unwrap();
        assert!(matches!(pg.status().await.state, PgState::Stopped(_)));
    }
}
