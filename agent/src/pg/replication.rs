//! `LocalPostgres`'s replication settings: follow (re-point a replica), reload, and the
//! leader's `synchronous_standby_names`. The data-copying work lives beside it: clone
//! (`clone.rs`, with `repo_clone.rs` for a restore from the pgBackRest repository), rewind
//! (`rewind.rs`) and replication slots (`slots.rs`).
//!
//! Invariants: these only rewrite `postgresql.conf` (and the pgpass file) and reload a
//! running PostgreSQL; they never start, stop or restart it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::callbacks::CallbackAction;
use super::conf;
use super::local::{LocalPostgres, lock};
use super::postmaster;
use super::{GucValue, PgError, Result};
use crate::ha::{PgRole, StartAs, Upstream};

/// Bound of the short statements here (reload, slot changes).
pub(super) const SHORT: Duration = Duration::from_secs(5);

impl LocalPostgres {
    pub(super) async fn do_follow(&self, upstream: Option<&Upstream>) -> Result<()> {
        self.clear_sync_names();
        let s = self.settings();
        let role = StartAs::Replica {
            upstream: upstream.cloned(),
        };
        conf::write_pgpass(&s)?;
        conf::write_postgresql_conf(&s, &role)?;
        *lock(&self.upstream) = upstream.cloned();
        if postmaster::running(&s.data_dir).is_some() {
            self.reload_conf().await?;
        }
        Ok(())
    }

    /// `pg_reload_conf()` over the shared session.
    pub(super) async fn reload_conf(&self) -> Result<()> {
        self.shared_query("SELECT pg_catalog.pg_reload_conf()", SHORT)
            .await
            .map(|_| ())
            .map_err(|f| PgError::Sql {
                what: "pg_reload_conf()",
                detail: f.to_string(),
            })
    }

    /// `synchronous_standby_names = value` in `postgresql.conf`, then a reload (no callback:
    /// this is the leader's own bookkeeping, not a configuration change).
    ///
    /// Nothing is written or reloaded when the configuration already says `value` (absent
    /// means empty): a reload right before a promotion was seen to leave PostgreSQL 15 stuck
    /// in recovery after "received promote request" (switchover in sync mode), and a replica
    /// about to promote usually already has the empty value.
    pub(super) async fn do_set_sync_names(&self, value: &str) -> Result<()> {
        let current = match self.settings().parameters.get(super::local::SYNC_NAMES) {
            Some(GucValue::Str(v)) => v.clone(),
            Some(other) => other.to_plain(),
            None => String::new(),
        };
        if current == value {
            return Ok(());
        }
        let mut parameters = self.settings().parameters.clone();
        parameters.insert(
            super::local::SYNC_NAMES.into(),
            GucValue::Str(value.to_string()),
        );
        self.set_parameters(parameters);
        let s = self.settings();
        conf::write_postgresql_conf(&s, &self.configured_role(&s))?;
        if postmaster::running(&s.data_dir).is_some() {
            self.reload_conf().await?;
        }
        Ok(())
    }

    pub(super) async fn do_reload(&self, parameters: BTreeMap<String, GucValue>) -> Result<()> {
        self.set_parameters(parameters);
        let s = self.settings();
        let role = self.configured_role(&s);
        conf::write_postgresql_conf(&s, &role)?;
        if postmaster::running(&s.data_dir).is_some() {
            self.reload_conf().await?;
            let pg_role = match role {
                StartAs::Primary => PgRole::Primary,
                StartAs::Replica { .. } => PgRole::Replica,
            };
            self.fire_callback(CallbackAction::OnReload, pg_role);
        }
        Ok(())
    }
}
