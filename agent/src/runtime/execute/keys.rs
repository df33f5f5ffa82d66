//! Executing the actions on the cluster's bookkeeping keys in etcd: `initialize` (the
//! bootstrap race and the system identifier), `config`, `failover` and `history`. Each write
//! is bounded by the etcd budget; a lost race or a failure stops the batch.

use std::time::Duration;

use tracing::{info, warn};

use super::{Step, bounded};
use crate::clock::wall_ms;
use crate::dcs::records::format_iso8601;
use crate::dcs::{CasOutcome, Dcs, HistoryRecord};
use crate::ha::{Action, Revision};
use crate::pg::Postgres;
use crate::runtime::Runtime;

impl<D: Dcs, P: Postgres> Runtime<D, P> {
    /// `ClaimInitialize`: the create-only race for the `initialize` key.
    pub(super) async fn claim_initialize(&mut self, retry: Duration) -> Step {
        match bounded(retry, self.dcs.claim_initialize()).await {
            Ok(CasOutcome::Applied) => {
                info!("won the initialize race: bootstrapping a new cluster");
                self.st.bootstrapping = true;
                Step::Done
            }
            Ok(CasOutcome::Lost) => Step::Stop("another member initializes the cluster".into()),
            Err(e) => Step::Stop(e),
        }
    }

    /// `Bootstrap`: initdb and the rest, as a background job.
    pub(super) fn bootstrap_job(&mut self, action: &Action) -> Step {
        let pg = self.pg.clone();
        self.spawn_job(action, false, async move {
            pg.bootstrap().await.map_err(|e| format!("{e:#}"))
        });
        Step::Done
    }

    /// `CancelInitialize`: give the `initialize` key back after a failed bootstrap.
    pub(super) async fn cancel_initialize(&mut self, retry: Duration) -> Step {
        self.st.bootstrapping = false;
        self.st.last_job = None;
        match bounded(retry, self.dcs.cancel_initialize()).await {
            Ok(_) => Step::Done,
            Err(e) => Step::Stop(e),
        }
    }

    /// `WriteInitialize`: publish the new cluster's system identifier.
    pub(super) async fn write_initialize(&mut self, sysid: &str, retry: Duration) -> Step {
        match bounded(retry, self.dcs.write_initialize(sysid)).await {
            Ok(()) => {
                info!(sysid = %sysid, "published the system identifier");
                self.st.bootstrapping = false;
                Step::Done
            }
            Err(e) => Step::Stop(e),
        }
    }

    /// `SeedConfig`: write the `config` key (first time, or over an unusable value).
    pub(super) async fn seed_config(
        &mut self,
        replacing: Option<Revision>,
        retry: Duration,
    ) -> Step {
        // The configuration last read from etcd (a wiped or garbled key is put back as
        // it was), else `bootstrap.dcs`.
        let value = if self.st.config_seen {
            self.st.dynamic.raw.clone()
        } else {
            self.cfg
                .bootstrap
                .as_ref()
                .map(|b| b.dcs.clone())
                .filter(serde_json::Value::is_object)
                .unwrap_or_else(|| self.st.dynamic.raw.clone())
        };
        let r = match replacing {
            None => bounded(retry, self.dcs.create_config(&value)).await,
            Some(rev) => {
                warn!(
                    "the config key holds no usable configuration: writing back the last one seen"
                );
                bounded(retry, self.dcs.write_config(&value, rev.0)).await
            }
        };
        match r {
            Ok(_) => Step::Done,
            Err(e) => Step::Stop(e),
        }
    }

    /// `RepairInitialize`: replace an `initialize` key that holds no system identifier.
    pub(super) async fn repair_initialize(
        &mut self,
        found: &str,
        sysid: &str,
        retry: Duration,
    ) -> Step {
        match bounded(retry, self.dcs.repair_initialize(found, sysid)).await {
            Ok(o) => {
                warn!(found = %found, sysid = %sysid, outcome = ?o, "the initialize key held no system identifier: replaced with ours");
                Step::Done
            }
            Err(e) => Step::Stop(e),
        }
    }

    /// `ClearFailover`: remove a handled switchover or failover request.
    pub(super) async fn clear_failover(&mut self, revision: Revision, retry: Duration) -> Step {
        match bounded(retry, self.dcs.clear_failover(revision.0)).await {
            Ok(o) => {
                info!(outcome = ?o, "cleared the failover key");
                Step::Done
            }
            Err(e) => Step::Stop(e),
        }
    }

    /// Appends the timelines PostgreSQL's history file knows and `history` does not, the
    /// newest stamped with now and our name (Patroni's format).
    pub(super) async fn record_history(&mut self, file: &[(u32, u64, String)]) {
        let mut history: Vec<HistoryRecord> = self
            .st
            .cluster
            .as_ref()
            .and_then(|c| c.history.as_ref())
            .map(|h| h.value.clone())
            .unwrap_or_default();
        let newest = file.iter().map(|e| e.0).max();
        for (tl, lsn, reason) in file {
            if history.iter().any(|h| h.timeline == *tl) {
                continue;
            }
            let stamp = Some(*tl) == newest;
            history.push(HistoryRecord {
                timeline: *tl,
                switch_lsn: *lsn,
                reason: reason.clone(),
                timestamp: stamp.then(|| format_iso8601(wall_ms())),
                new_leader: stamp.then(|| self.cfg.name.clone()),
            });
        }
        history.sort_by_key(|h| h.timeline);
        let retry = Duration::from_millis(self.st.ha.retry_timeout.0);
        if let Err(e) = bounded(retry, self.dcs.write_history(&history)).await {
            warn!("writing the history key failed: {e}");
        }
    }
}
