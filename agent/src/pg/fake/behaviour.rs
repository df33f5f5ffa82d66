//! `FakePostgres` as a `Postgres`: each operation records its call, applies an injected
//! failure, and moves the state the way a real PostgreSQL would.

use std::collections::BTreeMap;

use super::{Call, FakePostgres, Inner};
use crate::ha::slots::IgnoreSlot;
use crate::ha::{
    ControlState, MemberName, PgRole, PgState, RunningPg, StartAs, StopMode, StoppedPg, Upstream,
};
use crate::pg::{GucValue, PgDetails, PgError, PgStatus, Postgres, Promoted, Result};

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
