//! The configuration while the agent runs: the cluster's dynamic configuration as it changes
//! in etcd (timing, lease TTL, PostgreSQL parameters, reloaded at once), and the file itself
//! re-read on `POST /reload` or SIGHUP (an invalid file is refused, the running one kept).

use std::sync::Arc;

use tracing::{info, warn};

use super::Runtime;
use crate::config::{Config, DynamicConfig};
use crate::dcs::{Cluster, Dcs};
use crate::pg::Postgres;

impl<D: Dcs, P: Postgres> Runtime<D, P> {
    /// Reads the cluster's dynamic configuration and applies changes: HA timing, lease TTL,
    /// PostgreSQL parameters (reloaded at once when PostgreSQL runs).
    pub(super) async fn apply_dynamic(&mut self, cluster: &Cluster) {
        let rev = cluster.config.as_ref().map(|c| c.revision);
        if rev == self.st.dynamic_revision && rev.is_some() {
            return;
        }
        let dynamic = match &cluster.config {
            Some(c) => {
                // Over the configuration in force: a bad value keeps what it replaced.
                let (d, warnings) = DynamicConfig::from_json_over(&c.value, &self.st.dynamic);
                for w in warnings {
                    warn!("cluster config: {}", w.0);
                }
                self.st.config_seen = true;
                d
            }
            // Gone or unusable: keep what is in force (the leader writes it back).
            None => return,
        };
        self.st.dynamic_revision = rev;
        if dynamic == self.st.dynamic {
            return;
        }
        let ha = self.cfg.ha_config(&dynamic);
        if ha.ttl != self.st.ha.ttl {
            self.dcs.set_ttl(ha.ttl.0 / 1000);
        }
        let settings = self.cfg.pg_settings(&dynamic);
        if settings != self.st.pg_settings {
            info!("cluster configuration changed; reloading PostgreSQL settings");
            if let Err(e) = self.pg.reload(settings.parameters.clone()).await {
                warn!("reloading PostgreSQL after a configuration change failed: {e}");
            }
            self.st.pg_settings = settings;
        }
        self.st.ha = ha;
        self.st.dynamic = dynamic;
    }

    /// Re-reads the configuration file (`POST /reload`, SIGHUP) and applies what can change
    /// at run time: PostgreSQL parameters, tags, timing defaults. An invalid file is refused
    /// and the running configuration kept.
    pub(super) async fn reload_config(&mut self) -> Result<String, String> {
        let (cfg, warnings) = Config::load(&self.cfg.path).map_err(|e| e.to_string())?;
        for w in warnings {
            warn!("{}", w.0);
        }
        if cfg.name != self.cfg.name || cfg.scope != self.cfg.scope {
            return Err("name and scope cannot change while the agent runs".into());
        }
        let pending = crate::config::reload::not_reloadable(&self.cfg, &cfg);
        for key in &pending {
            warn!(
                key,
                "{key} changed in {} but a reload does not apply it: restart the agent to use it",
                cfg.path.display()
            );
        }
        self.cfg = Arc::new(cfg);
        self.st.ha = self.cfg.ha_config(&self.st.dynamic);
        let settings = self.cfg.pg_settings(&self.st.dynamic);
        if settings != self.st.pg_settings {
            self.pg
                .reload(settings.parameters.clone())
                .await
                .map_err(|e| format!("reloading PostgreSQL: {e}"))?;
            self.st.pg_settings = settings;
        }
        self.st.published_member = None;
        info!("configuration reloaded from {}", self.cfg.path.display());
        if pending.is_empty() {
            Ok("reloaded".into())
        } else {
            Ok(format!(
                "reloaded; not applied until the agent restarts: {}",
                pending.join(", ")
            ))
        }
    }
}
