//! What the agent last saw and did, published by the runtime after every cycle on a
//! `tokio::sync::watch` channel (`runtime::snapshot` re-exports this module). The REST API answers only from this snapshot: it never queries etcd or
//! PostgreSQL while a health check waits, so a hung database cannot slow HAProxy down.

use std::sync::Arc;

use tokio::time::Instant;

use crate::config::DynamicConfig;
use crate::dcs::Cluster;
use crate::ha::{HaConfig, JobKind, PgRole, PgState};
use crate::pg::PgStatus;

/// One cycle's published state.
#[derive(Debug, Clone)]
pub struct NodeSnapshot {
    /// Member name.
    pub member: String,
    /// Cluster name.
    pub scope: String,
    /// Cycle number (0 before the first cycle finished).
    pub cycle: u64,
    /// When this snapshot was published.
    pub published_at: Instant,
    /// Local PostgreSQL as last observed.
    pub pg: PgStatus,
    /// The role shown in `/patroni` and the member record (`primary`, `replica`, `uninitialized`).
    pub role: String,
    /// The state shown there (`running`, `starting`, `stopped`, `creating replica`, ...).
    pub state: String,
    /// This member holds the leader key (as of the last successful etcd read or renewal).
    pub holds_leader_key: bool,
    /// Until when this member may accept writes: the demotion point of its authority (lease
    /// or failsafe round). Health checks stop vouching for it as primary from then on.
    pub writable_until: Option<Instant>,
    /// Failsafe mode keeps this leader running without etcd.
    pub failsafe_active: bool,
    /// The fence and the watchdog, as `/patroni` shows them.
    pub guards: serde_json::Value,
    /// The demotion of this node has begun (health checks must move traffic away at once).
    pub demoting: bool,
    /// The last successful read of the cluster, shared.
    pub cluster: Option<Arc<Cluster>>,
    /// Wall-clock seconds of the last successful etcd contact.
    pub dcs_last_seen: Option<u64>,
    /// etcd was unreachable at the last cycle.
    pub dcs_unreachable: bool,
    /// Effective HA settings.
    pub ha: HaConfig,
    /// Effective dynamic configuration.
    pub dynamic: DynamicConfig,
    /// The last decision's reason (Patroni's one-line summary).
    pub reason: String,
    /// A background job in flight.
    pub job: Option<JobKind>,
    /// This member's tags as configured.
    pub tags: serde_json::Map<String, serde_json::Value>,
    /// `noloadbalance` tag.
    pub noloadbalance: bool,
    /// `nofailover` (or priority 0).
    pub nofailover: bool,
    /// The agent is shutting down.
    pub shutting_down: bool,
    /// `GET /patroni`'s body for this snapshot, rendered once when published (health checks
    /// answer with it without building JSON per request).
    pub patroni_json: bytes::Bytes,
}

impl NodeSnapshot {
    /// The snapshot before the first cycle: nothing known yet.
    pub fn initial(member: &str, scope: &str, ha: HaConfig, dynamic: DynamicConfig) -> Self {
        NodeSnapshot {
            member: member.to_string(),
            scope: scope.to_string(),
            cycle: 0,
            published_at: Instant::now(),
            pg: PgStatus {
                state: PgState::Unknown,
                details: Default::default(),
            },
            role: "uninitialized".into(),
            state: "starting".into(),
            holds_leader_key: false,
            writable_until: None,
            failsafe_active: false,
            guards: serde_json::Value::Null,
            demoting: false,
            cluster: None,
            dcs_last_seen: None,
            dcs_unreachable: false,
            ha,
            dynamic,
            reason: String::new(),
            job: None,
            tags: Default::default(),
            noloadbalance: false,
            nofailover: false,
            shutting_down: false,
            patroni_json: bytes::Bytes::from_static(b"{}"),
        }
        .rendered()
    }

    /// This snapshot with `patroni_json` rendered from its fields.
    pub fn rendered(mut self) -> Self {
        self.render();
        self
    }

    /// Re-renders `patroni_json` after a field changed.
    pub fn render(&mut self) {
        let body =
            serde_json::to_string(&super::patroni::patroni(self)).unwrap_or_else(|_| "{}".into());
        self.patroni_json = bytes::Bytes::from(body);
    }

    /// Whether this snapshot is recent enough to vouch for a role at `now`: published within
    /// ttl. A node that cannot tell whether it is still leader must not say it is.
    pub fn is_fresh(&self, now: Instant) -> bool {
        self.cycle > 0 && now.saturating_duration_since(self.published_at) < self.ha_ttl()
    }

    /// The lease TTL as a duration.
    pub fn ha_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ha.ttl.0)
    }

    /// Leader with authority at `now` (before its demotion point), PostgreSQL answering as
    /// primary, not demoting.
    pub fn is_writable_leader(&self, now: Instant) -> bool {
        self.is_fresh(now)
            && self.holds_leader_key
            && !self.demoting
            && self.writable_until.is_some_and(|u| u > now)
            && self.pg.state.role() == PgRole::Primary
    }

    /// PostgreSQL answers as a replica.
    pub fn is_running_replica(&self) -> bool {
        self.pg.state.role() == PgRole::Replica
    }
}
