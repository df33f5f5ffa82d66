//! Executing the synchronous replication actions (`ha::sync`): `synchronous_standby_names`
//! through the agent's `postgresql.conf` and a reload, and the `sync` key with
//! compare-and-set. A lost compare or a failure stops the batch, which keeps the core's order
//! (key before PostgreSQL when removing a standby).
//!
//! Also feeds the core's confirmation rule (`ha::sync_confirm`) from PostgreSQL's status; the
//! rule itself lives in the core, the runtime only keeps its state between cycles.

use std::time::Duration;

use tracing::{info, warn};

use super::Runtime;
use super::execute::{Step, bounded};
use crate::dcs::{CasOutcome, Dcs, SyncRecord};
use crate::ha::sync_confirm::{StandbyRow, SyncConfirm, SyncReport};
use crate::ha::{Action, Lsn, MemberName, SyncMode, SyncStandbyNames};
use crate::pg::{PgStatus, Postgres};

/// The confirmation rule's input (`ha::sync_confirm`) from this cycle's status.
pub(super) fn confirm_sync(
    state: &mut SyncConfirm,
    pg: &PgStatus,
) -> (Option<SyncStandbyNames>, Vec<MemberName>) {
    let rows: Vec<StandbyRow<'_>> = pg
        .details
        .replication
        .iter()
        .map(|r| StandbyRow {
            name: &r.application_name,
            state: &r.state,
            sync_state: &r.sync_state,
            flush: r.flush_lsn.map(Lsn),
        })
        .collect();
    let report = SyncReport {
        pg: &pg.state,
        value: pg.details.sync_standby_names.as_deref(),
        rows: &rows,
    };
    let (next, confirmed) = std::mem::take(state).step(&report);
    *state = next;
    (confirmed.names, confirmed.standbys)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::{PgRole, PgState, RunningPg};
    use crate::pg::{PgDetails, ReplicationRow};

    fn primary(lsn: u64, names: &str, rows: &[(&str, &str, u64)]) -> PgStatus {
        PgStatus {
            state: PgState::Running(RunningPg {
                role: PgRole::Primary,
                sysid: "1".into(),
                timeline: 1,
                lsn: Lsn(lsn),
                replay_lsn: Lsn(lsn),
                streaming: false,
            }),
            details: PgDetails {
                sync_standby_names: Some(names.into()),
                replication: rows
                    .iter()
                    .map(|(n, sync_state, flush)| ReplicationRow {
                        usename: "replicator".into(),
                        application_name: (*n).into(),
                        client_addr: None,
                        state: "streaming".into(),
                        sync_state: (*sync_state).into(),
                        sync_priority: 1,
                        flush_lsn: Some(*flush),
                    })
                    .collect(),
                ..PgDetails::default()
            },
        }
    }

    fn names(v: &[MemberName]) -> Vec<&str> {
        v.iter().map(MemberName::as_str).collect()
    }

    #[test]
    fn the_status_feeds_the_cores_confirmation_rule() {
        let mut c = SyncConfirm::default();
        let any = r#"ANY 1 ("b","c")"#;
        // First sight of the setting: the mark is the primary's position, 100.
        let (parsed, ok) = confirm_sync(
            &mut c,
            &primary(100, any, &[("b", "quorum", 90), ("c", "quorum", 100)]),
        );
        assert!(matches!(
            parsed,
            Some(SyncStandbyNames::Quorum { count: 1, .. })
        ));
        assert_eq!(names(&ok), ["c"], "b is behind the mark");
        // b catches up; then disconnects: it stays confirmed under this setting.
        let (_, ok) = confirm_sync(
            &mut c,
            &primary(150, any, &[("b", "quorum", 120), ("c", "quorum", 150)]),
        );
        assert_eq!(names(&ok), ["b", "c"]);
        let (_, ok) = confirm_sync(&mut c, &primary(160, any, &[("c", "quorum", 160)]));
        assert_eq!(names(&ok), ["b", "c"]);
        // An asynchronous standby is never confirmed.
        let (_, ok) = confirm_sync(&mut c, &primary(160, any, &[("d", "async", 160)]));
        assert_eq!(names(&ok), ["b", "c"]);
        // A new setting starts over, with a new mark (170).
        let (_, ok) = confirm_sync(
            &mut c,
            &primary(170, r#"ANY 1 ("c")"#, &[("c", "quorum", 165)]),
        );
        assert!(ok.is_empty(), "c is behind the new mark");
        // Not a running primary: nothing.
        let mut down = primary(170, any, &[]);
        down.state = PgState::Unknown;
        assert_eq!(confirm_sync(&mut c, &down), (None, Vec::new()));
    }
}
