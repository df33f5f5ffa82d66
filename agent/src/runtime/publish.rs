//! What the agent tells others after a cycle: its member record (written only when it
//! changed), the leader's `status` (when its position moved), and the snapshot the REST API
//! answers from; plus the immediate announcements of a demotion (before PostgreSQL stops) and
//! a promotion (before the rest of the batch), so health checks move traffic without waiting
//! for the end of the cycle.

use std::collections::BTreeMap;

use tracing::warn;

use super::{NodeSnapshot, Runtime, member};
use crate::dcs::{Dcs, StatusRecord};
use crate::ha::{Decision, PgState};
use crate::pg::{PgStatus, Postgres};

impl<D: Dcs, P: Postgres> Runtime<D, P> {
    /// Writes our member record (when changed), the leader's `status` (when its position
    /// changed) and the snapshot for the API.
    pub(super) async fn publish(
        &mut self,
        pg: &PgStatus,
        decision: &Decision,
        dcs_up: bool,
        leader: bool,
    ) {
        let job = self.jobs.running().map(|j| j.kind);
        let (role, state) = member::role_and_state(pg, job, &self.st.last_role);
        self.st.last_role = role.clone();
        let tags: serde_json::Map<String, serde_json::Value> =
            self.cfg.tags.raw.clone().into_iter().collect();
        let retry = self.etcd_budget();
        if dcs_up {
            let rec = member::record(
                &self.cfg.conn_url(),
                &self.cfg.api_url(),
                &role,
                &state,
                pg,
                &tags,
                self.st.ha.pause,
            );
            // What etcd holds now: a record that was wiped or garbled is written again.
            let stored = self.st.cluster.clone();
            let stored_rec = stored
                .as_ref()
                .and_then(|c| c.member(&self.cfg.name))
                .map(|m| &m.record);
            if self.st.published_member.as_ref() != Some(&rec) || stored_rec != Some(&rec) {
                match tokio::time::timeout(retry, self.dcs.publish_member(&rec)).await {
                    Ok(Ok(())) => self.st.published_member = Some(rec),
                    Ok(Err(e)) => warn!("publishing our member record failed: {e}"),
                    Err(_) => warn!("publishing our member record timed out"),
                }
            }
            if leader && let PgState::Running(r) = &pg.state {
                let status = StatusRecord {
                    optime: r.lsn.0,
                    slots: BTreeMap::new(),
                    retain_slots: self
                        .st
                        .slots_applied
                        .iter()
                        .flatten()
                        .map(|m| crate::pg::slot_name(m.as_str()))
                        .collect(),
                };
                let stored_status = stored.as_ref().and_then(|c| c.status.as_ref());
                if self.st.published_status.as_ref() != Some(&status)
                    || stored_status != Some(&status)
                {
                    match tokio::time::timeout(retry, self.dcs.write_status(&status)).await {
                        Ok(Ok(())) => self.st.published_status = Some(status),
                        Ok(Err(e)) => warn!("writing the status key failed: {e}"),
                        Err(_) => warn!("writing the status key timed out"),
                    }
                }
                // The leader keeps `history` as it last saw it (a wiped or garbled key is put
                // back; the next promotion appends to it).
                if stored.as_ref().is_some_and(|c| c.history.is_none())
                    && let Some(h) = self.st.history_seen.clone()
                {
                    match tokio::time::timeout(retry, self.dcs.write_history(&h)).await {
                        Ok(Ok(())) => warn!(
                            "the history key was gone or unusable: wrote back the last one seen"
                        ),
                        Ok(Err(e)) => warn!("writing the history key failed: {e}"),
                        Err(_) => warn!("writing the history key timed out"),
                    }
                }
            }
        }
        let snap = NodeSnapshot {
            member: self.cfg.name.clone(),
            scope: self.cfg.scope.clone(),
            cycle: self.st.cycle,
            published_at: tokio::time::Instant::now(),
            pg: pg.clone(),
            role,
            state,
            holds_leader_key: leader,
            writable_until: self.demote_point().map(|m| self.clock.instant(m)),
            failsafe_active: self.failsafe_active(),
            guards: self.guards.describe(self.st.ha.pause),
            demoting: self.st.demoting,
            cluster: self.st.cluster.clone(),
            dcs_last_seen: self.st.dcs_last_seen,
            dcs_unreachable: !dcs_up,
            ha: self.st.ha.clone(),
            dynamic: self.st.dynamic.clone(),
            reason: decision.reason.to_string(),
            job,
            tags,
            noloadbalance: self.cfg.tags.noloadbalance,
            nofailover: self.st.ha.nofailover,
            shutting_down: false,
            patroni_json: bytes::Bytes::new(),
        }
        .rendered();
        self.snapshot.send_replace(snap);
    }

    /// Marks the published state as demoting before PostgreSQL is stopped, so health checks
    /// move traffic away at once.
    pub(super) fn announce_demotion(&mut self) {
        self.st.demoting = true;
        self.snapshot.send_modify(|s| {
            s.demoting = true;
            s.holds_leader_key = false;
            // Peers racing for the lease must not mistake us for a running primary, and
            // health checks must stop sending traffic here.
            s.state = "stopping".into();
            s.render();
        });
    }

    /// Publishes the promoted state at once, before the rest of the batch (history, slots,
    /// member record): health checks send writes here as soon as PostgreSQL takes them.
    pub(super) async fn announce_promotion(&mut self) {
        let pg = self.pg.status().await;
        let writable = self.demote_point().map(|m| self.clock.instant(m));
        self.snapshot.send_modify(|s| {
            s.pg = pg;
            s.holds_leader_key = true;
            s.writable_until = writable;
            s.demoting = false;
            s.role = "primary".into();
            s.state = "running".into();
            s.published_at = tokio::time::Instant::now();
            s.render();
        });
    }
}
