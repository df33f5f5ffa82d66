//! SIGTERM/SIGINT: carries out `ha::shutdown::plan` (the policy: how to stop PostgreSQL, whether
//! to release the leader key), then lets the fence go (disarm, exit) once PostgreSQL stopped,
//! then revokes our lease (our member key disappears with it).

use std::time::Duration;

use tracing::{info, warn};

use super::Runtime;
use crate::dcs::Dcs;
use crate::ha;
use crate::pg::Postgres;

impl<D: Dcs, P: Postgres> Runtime<D, P> {
    pub(super) async fn shutdown(&mut self) {
        let retry = Duration::from_millis(self.st.ha.retry_timeout.0);
        self.snapshot.send_modify(|s| {
            s.shutting_down = true;
            s.render();
        });
        if let Some(j) = self.jobs.abort().await {
            info!(job = %j.kind, "cancelled job for shutdown");
        }
        let leader = self
            .st
            .cluster
            .as_ref()
            .and_then(|c| c.leader_name().map(str::to_string))
            .as_deref()
            == Some(self.cfg.name.as_str());
        let plan = ha::shutdown::plan(self.st.ha.pause, leader);
        let mut stopped = true;
        match plan.stop {
            None => info!("maintenance mode: leaving PostgreSQL running"),
            Some(mode) => {
                self.announce_demotion();
                if let Err(e) = self.pg.stop(mode).await {
                    tracing::error!("stopping PostgreSQL failed: {e}; the fence stays armed");
                    stopped = false;
                }
            }
        }
        if plan.release_leader {
            match tokio::time::timeout(retry, self.dcs.release_leader()).await {
                Ok(Ok(o)) => info!(outcome = ?o, "released the leader key"),
                Ok(Err(e)) => warn!("releasing the leader key failed: {e}"),
                Err(_) => warn!("releasing the leader key timed out"),
            }
        }
        // The fence guards nothing now (or, paused, is not meant to); a PostgreSQL that would
        // not stop keeps it armed.
        if stopped {
            self.guards.exit(&self.clock).await;
        }
        match tokio::time::timeout(retry, self.dcs.revoke_lease()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!("revoking our lease failed: {e}"),
            Err(_) => warn!("revoking our lease timed out"),
        }
        info!("stopped");
    }
}
