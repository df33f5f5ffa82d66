//! What this member publishes about itself: the `members/<name>` record (Patroni's fields) and
//! the role/state words shown by the API, derived from PostgreSQL's state and the job in flight.

use crate::dcs::MemberRecord;
use crate::ha::{ControlState, JobKind, PgRole, PgState};
use crate::pg::PgStatus;

/// Role and state words, as Patroni shows them.
pub(crate) fn role_and_state(
    pg: &PgStatus,
    job: Option<JobKind>,
    last_role: &str,
) -> (String, String) {
    let role = match (&pg.state, pg.state.role()) {
        (_, PgRole::Primary) => "primary".to_string(),
        (_, PgRole::Replica) => "replica".to_string(),
        (PgState::NoData, _) if job.is_none() => "uninitialized".to_string(),
        _ => last_role.to_string(),
    };
    let state = match job {
        Some(JobKind::Clone | JobKind::Reinitialize) => "creating replica",
        Some(JobKind::Bootstrap) => "initializing new cluster",
        Some(JobKind::Rewind) => "running pg_rewind",
        Some(JobKind::Restart) => "restarting",
        Some(JobKind::Start) => "starting",
        None => match &pg.state {
            PgState::Running(_) => "running",
            PgState::Starting => "starting",
            PgState::Unknown => "unknown",
            PgState::NoData => "stopped",
            PgState::Stopped(s) => match s.control_state {
                ControlState::InProduction | ControlState::InRecovery => "crashed",
                _ => "stopped",
            },
        },
    };
    (role, state.to_string())
}

/// The member record for `pg`.
pub(crate) fn record(
    conn_url: &str,
    api_url: &str,
    role: &str,
    state: &str,
    pg: &PgStatus,
    tags: &serde_json::Map<String, serde_json::Value>,
    pause: bool,
) -> MemberRecord {
    let mut r = MemberRecord {
        conn_url: conn_url.to_string(),
        api_url: api_url.to_string(),
        state: state.to_string(),
        role: role.to_string(),
        version: crate::VERSION.to_string(),
        tags: tags.clone().into_iter().collect(),
        pending_restart: pg.details.pending_restart,
        pause,
        database_system_identifier: crate::ha::keys::local_sysid(&pg.state).map(str::to_string),
        ..MemberRecord::default()
    };
    match &pg.state {
        PgState::Running(run) => {
            r.timeline = Some(run.timeline);
            r.xlog_location = Some(run.lsn.0);
            // While a job (clone, start) still runs, the member is not a usable replica yet:
            // no replication state, so nobody counts it as streaming.
            if run.role == PgRole::Replica && state == "running" {
                r.replay_lsn = pg.details.replay_lsn.or(Some(run.replay_lsn.0));
                r.receive_lsn = pg.details.receive_lsn;
                r.replication_state = Some(if run.streaming {
                    "streaming".into()
                } else {
                    "in archive recovery".into()
                });
            }
        }
        PgState::Stopped(s) => r.timeline = Some(s.timeline),
        _ => {}
    }
    r
}
