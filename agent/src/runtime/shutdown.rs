//! SIGTERM/SIGINT: stop PostgreSQL (a leader checkpoints first), release the leader key so a
//! replica takes over at once rather than after ttl, let the fence go (disarm, exit), then
//! revoke our lease (our member key disappears with it). In maintenance mode PostgreSQL is
//! left running, as Patroni does; a PostgreSQL that would not stop keeps the fence armed.

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
        let mut stopped = true;
        if self.st.ha.pause {
            info!("maintenance mode: leaving PostgreSQL running");
        } else {
            self.announce_demotion();
            let mode = if leader {
                ha::StopMode::Graceful
            } else {
                ha::StopMode::Fast
            };
            if let Err(e) = self.pg.stop(mode).await {
                tracing::error!("stopping PostgreSQL failed: {e}; the fence stays armed");
                stopped = false;
            }
            if leader {
                match tokio::time::timeout(retry, self.dcs.release_leader()).await {
                    Ok(Ok(o)) => info!(outcome = ?o, "released the leader key"),
                    Ok(Err(e)) => warn!("releasing the leader key failed: {e}"),
                    Err(_) => warn!("releasing the leader key timed out"),
                }
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
