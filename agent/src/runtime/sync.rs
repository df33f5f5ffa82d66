//! Executing the synchronous replication actions (`ha::sync`): `synchronous_standby_names`
//! through the agent's `postgresql.conf` and a reload, and the `sync` key with
//! compare-and-set. A lost compare or a failure stops the batch, which keeps the core's order
//! (key before PostgreSQL when removing a standby).

use std::time::Duration;

use tracing::{info, warn};

use super::Runtime;
use super::execute::{Step, bounded};
use crate::dcs::{CasOutcome, Dcs, SyncRecord};
use crate::ha::{Action, SyncMode, SyncStandbyNames};
use crate::pg::Postgres;

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
                        Step::Done
                    }
                    Err(e) => Step::Stop(format!("setting synchronous_standby_names failed: {e}")),
                }
            }
            Action::WriteSyncKey { standbys, revision } => {
                let names: Vec<&str> = standbys.iter().map(|n| n.as_str()).collect();
                let record = SyncRecord {
                    leader: Some(self.cfg.name.clone()),
                    sync_standby: (!names.is_empty()).then(|| names.join(",")),
                    quorum: None,
                };
                match bounded(retry, self.dcs.write_sync(&record, revision.map(|r| r.0))).await {
                    Ok(CasOutcome::Applied) => {
                        info!(sync_standby = ?record.sync_standby, "wrote the sync key");
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
