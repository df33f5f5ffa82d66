//! The cluster in etcd, as hactl uses it: an [`EtcdDcs`] built from the settings, read with
//! one range request per `cluster()` call (hactl never starts the agent's watch and never
//! holds a lease), plus small queries over the parsed [`Cluster`].
//!
//! Writes go only through the compare-and-set methods (`write_failover`, `write_config`,
//! `clear_failover`) and `delete_cluster`.

use std::time::{Duration, Instant};

use anyhow::Context;
use ha_agent::config::DynamicConfig;
use ha_agent::dcs::etcd::EtcdDcs;
use ha_agent::dcs::{Cluster, Dcs, Keys, MemberEntry};

use crate::config::Settings;
use crate::error::{failed, usage};

/// Bound of every etcd call.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// One cluster in etcd.
pub struct ClusterDcs {
    /// The cluster name.
    pub scope: String,
    /// The connection (lazy: the first call connects).
    pub dcs: EtcdDcs,
    endpoints: String,
}

impl ClusterDcs {
    /// Prepares a client for cluster `scope`; no request is made yet.
    pub async fn connect(settings: &Settings, scope: &str) -> anyhow::Result<ClusterDcs> {
        let keys = Keys::new(&settings.namespace, scope);
        // The member name only labels a lease, and hactl never takes one.
        let dcs = EtcdDcs::connect(&settings.etcd, keys, "hactl", 30, OP_TIMEOUT)
            .await
            .map_err(|e| usage(format!("etcd settings: {e}")))?;
        Ok(ClusterDcs {
            scope: scope.to_string(),
            dcs,
            endpoints: settings.etcd.endpoints.join(","),
        })
    }

    /// Reads the whole cluster (one range request).
    pub async fn cluster(&self) -> anyhow::Result<Cluster> {
        self.dcs.cluster().await.with_context(|| {
            format!(
                "cannot read cluster {} from etcd at {} (is etcd up? check etcd3.hosts or --dcs-url)",
                self.scope, self.endpoints
            )
        })
    }

    /// Polls the cluster every 200 ms until `done` returns `Some`, or `limit` passes
    /// (then `None`). etcd errors while polling are ignored (the last one is reported by the
    /// caller's timeout message).
    pub async fn wait_for<T>(
        &self,
        limit: Duration,
        mut done: impl FnMut(&Cluster) -> Option<T>,
    ) -> Option<T> {
        let start = Instant::now();
        loop {
            if let Ok(c) = self.dcs.cluster().await
                && let Some(v) = done(&c)
            {
                return Some(v);
            }
            if start.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The cluster's dynamic configuration, read leniently (defaults where absent).
pub fn dynamic(c: &Cluster) -> DynamicConfig {
    c.config
        .as_ref()
        .map(|v| DynamicConfig::from_json(&v.value).0)
        .unwrap_or_default()
}

/// Member names, comma-separated, for messages.
pub fn member_list(c: &Cluster) -> String {
    let names: Vec<&str> = c.members.iter().map(|m| m.name.as_str()).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The member `name`, or a usage error naming the members there are.
pub fn require_member<'a>(
    c: &'a Cluster,
    scope: &str,
    name: &str,
) -> anyhow::Result<&'a MemberEntry> {
    c.member(name).ok_or_else(|| {
        usage(format!(
            "no member named {name} in cluster {scope} (members: {})",
            member_list(c)
        ))
    })
}

/// Whether `name` holds the leader key and reports itself a running primary.
pub fn is_running_leader(c: &Cluster, name: &str) -> bool {
    c.leader_name() == Some(name)
        && c.member(name)
            .is_some_and(|m| m.record.state == "running" && m.record.normalized_role() == "primary")
}

/// An error for a cluster that has no member at all (not initialized or wrong scope).
pub fn no_members(c: &Cluster, scope: &str) -> anyhow::Error {
    if c.initialize.is_none() && c.config.is_none() {
        failed(format!(
            "cluster {scope} has no keys in etcd: check the scope and namespace (hactl list shows what is there)"
        ))
    } else {
        failed(format!("cluster {scope} has no members registered in etcd"))
    }
}

/// How long to wait for a leader change: what the agent itself allows a switchover.
pub fn handover_limit(c: &Cluster) -> Duration {
    let d = dynamic(c);
    let ha = ha_agent::ha::HaConfig {
        ttl: ha_agent::ha::Millis::secs(d.ttl),
        loop_wait: ha_agent::ha::Millis::secs(d.loop_wait),
        ..ha_agent::ha::HaConfig::default()
    };
    Duration::from_millis(ha_agent::ha::candidate::handover_timeout(&ha).0)
}
