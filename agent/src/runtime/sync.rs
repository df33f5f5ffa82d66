//! Executing the synchronous replication actions (`ha::sync`): `synchronous_standby_names`
//! through the agent's `postgresql.conf` and a reload, and the `sync` key with
//! compare-and-set. A lost compare or a failure stops the batch, which keeps the core's order
//! (key before PostgreSQL when removing a standby).

use std::collections::BTreeSet;
use std::time::Duration;

use tracing::{info, warn};

use super::Runtime;
use super::execute::{Step, bounded};
use crate::dcs::{CasOutcome, Dcs, SyncRecord};
use crate::ha::{Action, Lsn, MemberName, PgRole, PgState, SyncMode, SyncStandbyNames};
use crate::pg::{PgStatus, Postgres};

/// Which standbys are confirmed under the `synchronous_standby_names` in force (the core's
/// `Observation::sync_replicas`).
///
/// When the primary first reports a value, its current WAL position is the *mark*: every
/// commit acknowledged before the value took effect lies at or before it. A standby that
/// `pg_stat_replication` reports `sync` or `quorum`, streaming, with a flush position at or
/// past the mark holds all of them and is confirmed (Patroni's `_primary_flush_lsn` check).
/// It stays confirmed while the value stays (its WAL is on its disk even if it disconnects);
/// a new value, or PostgreSQL not running as primary, starts over.
#[derive(Debug, Default)]
pub(super) struct SyncConfirm {
    seen: Option<String>,
    mark: Lsn,
    ready: BTreeSet<MemberName>,
}

impl SyncConfirm {
    /// The value in force (parsed) and the confirmed standbys, from this cycle's status.
    pub(super) fn observe(&mut self, pg: &PgStatus) -> (Option<SyncStandbyNames>, Vec<MemberName>) {
        let (PgState::Running(r), Some(value)) = (&pg.state, &pg.details.sync_standby_names) else {
            *self = SyncConfirm::default();
            return (None, Vec::new());
        };
        if r.role != PgRole::Primary {
            *self = SyncConfirm::default();
            return (None, Vec::new());
        }
        if self.seen.as_deref() != Some(value.as_str()) {
            self.seen = Some(value.clone());
            self.mark = r.lsn;
            self.ready.clear();
        }
        for row in &pg.details.replication {
            let caught_up = row.flush_lsn.is_some_and(|f| f >= self.mark.0);
            if row.state == "streaming"
                && matches!(row.sync_state.as_str(), "sync" | "quorum")
                && caught_up
            {
                self.ready.insert(MemberName::new(&row.application_name));
            }
        }
        (
            SyncStandbyNames::parse(value),
            self.ready.iter().cloned().collect(),
        )
    }
}

impl<D: Dcs, P: Postgres> Runtime<D, P> {
    pub(super) async fn run_sync_action(&mut self, action: &Action, retry: Duration) -> Step {
        match action {
            Action::SetSyncStandbyNames(names) => {
                let value = names.to_string();
                if self.st.sync_names_applied.as_deref() == Some(value.as_str()) {
                    return Step::Done;
                }
                match self.pg.set_sync_standby_names(&value).await {
                    Ok(()) => {
                        if *names == SyncStandbyNames::Off
                            && self.st.ha.synchronous_mode != SyncMode::Off
                        {
                            warn!(
                                "synchronous_mode: no eligible synchronous standby; replication falls back to asynchronous"
                            );
                        } else {
                            info!(synchronous_standby_names = %value, "set synchronous_standby_names");
                        }
                        self.st.sync_names_applied = Some(value);
                        self.st.sync_recheck = true;
                        Step::Done
                    }
                    Err(e) => Step::Stop(format!("setting synchronous_standby_names failed: {e}")),
                }
            }
            Action::WriteSyncKey {
                standbys,
                quorum,
                revision,
            } => {
                let mut names: Vec<&str> = standbys.iter().map(|n| n.as_str()).collect();
                names.sort_unstable();
                let record = SyncRecord {
                    leader: Some(self.cfg.name.clone()),
                    sync_standby: (!names.is_empty()).then(|| names.join(",")),
                    quorum: Some(u32::try_from(*quorum).unwrap_or(u32::MAX)),
                };
                match bounded(retry, self.dcs.write_sync(&record, revision.map(|r| r.0))).await {
                    Ok(CasOutcome::Applied) => {
                        info!(sync_standby = ?record.sync_standby, quorum, "wrote the sync key");
                        Step::Done
                    }
                    Ok(CasOutcome::Lost) => Step::Stop("the sync key changed meanwhile".into()),
                    Err(e) => Step::Stop(e),
                }
            }
            Action::DeleteSyncKey { revision } => {
                match bounded(retry, self.dcs.delete_sync(revision.0)).await {
                    Ok(CasOutcome::Applied) => {
                        info!("synchronous_mode is off: deleted the sync key");
                        Step::Done
                    }
                    Ok(CasOutcome::Lost) => Step::Stop("the sync key changed meanwhile".into()),
                    Err(e) => Step::Stop(e),
                }
            }
            // invariant: the executor sends only the three actions above here
            _ => Step::Done,
        }
    }
}
