//! `LocalPostgres`: the real PostgreSQL, driven with pg_ctl and friends and queried with
//! tokio-postgres.
//!
//! This file holds the type, its shared state and the `Postgres` implementation, which
//! delegates: `local/queries.rs` runs SQL on the persistent session, `local/observe.rs`
//! builds `status()`'s answer, and the operations live in `bootstrap.rs`, `lifecycle.rs`
//! (start, stop, restart), `promote.rs`, `replication.rs` (follow, reload), `clone.rs`,
//! `rewind.rs` and `slots.rs`, which add `impl LocalPostgres` blocks.
//!
//! Invariants:
//! - `status()` never fails and answers within about `STATUS_BUDGET` (2 s) whatever
//!   PostgreSQL does (hung, SIGSTOPped): one persistent connection, one simple-protocol
//!   query, everything under one timeout. While a postmaster runs it spawns no process.
//! - The persistent session is dropped (its task aborted) on any connection-level failure
//!   or timeout, and reconnected on the next call.
//! - Settings are swapped as a whole (`update`); an operation works on the snapshot it read
//!   when it began.
//! - Long statements (promotion, CHECKPOINT) use their own connections so that they never
//!   queue `status()` behind them.

mod observe;
mod queries;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::callbacks::{self, CallbackAction};
use super::query::Session;
use super::{GucValue, PgDetails, PgSettings, PgStatus, Postgres, Promoted, Result};
use crate::ha::slots::IgnoreSlot;
use crate::ha::{MemberName, PgRole, PgState, StartAs, StopMode, StoppedPg, Upstream};

/// Upper bound of `status()`'s connect-and-query.
pub const STATUS_BUDGET: Duration = Duration::from_secs(2);

/// Rows of a simple query, as text columns.
pub type Rows = Vec<Vec<Option<String>>>;

/// The parameter the leader manages for synchronous replication.
pub(super) const SYNC_NAMES: &str = "synchronous_standby_names";

/// The member's own PostgreSQL.
pub struct LocalPostgres {
    /// Current settings; replaced whole by `update`/`reload`.
    settings: Mutex<Arc<PgSettings>>,
    /// The upstream last written into `postgresql.conf` (None: none, or unknown since the
    /// agent started).
    pub(super) upstream: Mutex<Option<Upstream>>,
    /// The persistent connection used by `status()` and short statements.
    session: tokio::sync::Mutex<Option<Session>>,
    /// The last reason PostgreSQL could not be asked, to warn once per change.
    last_problem: Mutex<Option<String>>,
    /// pg_controldata's answer, keyed by pg_control's modification time.
    stopped_cache: Mutex<Option<(SystemTime, StoppedPg)>>,
    /// The timeline this replica last streamed on, since PostgreSQL was last started: while
    /// the WAL receiver is down (its leader died) the receiver no longer says, and
    /// pg_control's checkpoint timeline can still be one from before a promotion it followed.
    pub(super) streamed_timeline: std::sync::atomic::AtomicU32,
}

/// Locks a std mutex, ignoring poisoning (the data is plain values).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether `data_dir` holds a cluster (`PG_VERSION` exists).
pub fn has_data(data_dir: &Path) -> bool {
    data_dir.join("PG_VERSION").is_file()
}

impl LocalPostgres {
    /// A handle on the PostgreSQL that `settings` describe. Touches nothing yet.
    pub fn new(mut settings: PgSettings) -> LocalPostgres {
        // After an agent restart the running PostgreSQL keeps the synchronous standbys the
        // last process set: carry them over until the leader sets them again, so that no
        // rewrite of postgresql.conf in between makes commits asynchronous behind the key.
        let replica = super::conf::standby_signal(&settings.data_dir).exists();
        if !replica && let Some(v) = super::conf::written_value(&settings.data_dir, SYNC_NAMES) {
            settings
                .parameters
                .entry(SYNC_NAMES.to_string())
                .or_insert(GucValue::Str(v));
        }
        LocalPostgres {
            settings: Mutex::new(Arc::new(settings)),
            upstream: Mutex::new(None),
            session: tokio::sync::Mutex::new(None),
            last_problem: Mutex::new(None),
            stopped_cache: Mutex::new(None),
            streamed_timeline: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Replaces the settings (the cluster's dynamic configuration changed). Files are
    /// rewritten at the next start, follow or reload.
    /// `synchronous_standby_names`, which only `set_sync_standby_names` sets, is kept.
    pub fn update(&self, mut settings: PgSettings) {
        let mut guard = lock(&self.settings);
        if let Some(v) = guard.parameters.get(SYNC_NAMES) {
            settings
                .parameters
                .entry(SYNC_NAMES.to_string())
                .or_insert_with(|| v.clone());
        }
        *guard = Arc::new(settings);
    }

    /// Forgets `synchronous_standby_names` (starting or re-pointed as a replica): a later
    /// promotion must not inherit standbys a former leadership chose; the leader sets them.
    pub(super) fn clear_sync_names(&self) {
        let mut guard = lock(&self.settings);
        if guard.parameters.contains_key(SYNC_NAMES) {
            let mut next = PgSettings::clone(&guard);
            next.parameters.remove(SYNC_NAMES);
            *guard = Arc::new(next);
        }
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<PgSettings> {
        lock(&self.settings).clone()
    }

    /// Changes the parameters only.
    /// `synchronous_standby_names`, which only `set_sync_standby_names` sets, is kept.
    pub(super) fn set_parameters(
        &self,
        mut parameters: std::collections::BTreeMap<String, GucValue>,
    ) {
        let mut guard = lock(&self.settings);
        let mut next = PgSettings::clone(&guard);
        if let Some(v) = next.parameters.get(SYNC_NAMES) {
            parameters
                .entry(SYNC_NAMES.to_string())
                .or_insert_with(|| v.clone());
        }
        next.parameters = parameters;
        *guard = Arc::new(next);
    }

    /// The member name, for spans.
    pub(super) fn member(&self) -> String {
        lock(&self.settings).member.clone()
    }

    /// Where PostgreSQL's own log goes.
    pub fn server_log(&self) -> PathBuf {
        super::conf::server_log(&self.settings().data_dir)
    }

    /// Runs the configured callback for `action` in the background (Patroni's
    /// `<cmd> <action> <role> <scope>`). The shell calls this for events this layer cannot
    /// see (e.g. `on_role_change` when a primary is stopped to become a replica).
    pub fn fire_callback(&self, action: CallbackAction, role: PgRole) {
        let s = self.settings();
        callbacks::fire(&s.callbacks, action, role, &s.scope);
    }

    /// The role the data directory is set up for: replica iff `standby.signal` exists.
    pub(super) fn configured_role(&self, s: &PgSettings) -> StartAs {
        if super::conf::standby_signal(&s.data_dir).exists() {
            StartAs::Replica {
                upstream: lock(&self.upstream).clone(),
            }
        } else {
            StartAs::Primary
        }
    }
}

impl Postgres for LocalPostgres {
    #[tracing::instrument(level = "debug", skip_all, fields(member = %self.member()))]
    async fn status(&self) -> PgStatus {
        // The inner budget bounds the query; this one also bounds pg_controldata.
        let limit = STATUS_BUDGET + Duration::from_millis(500);
        match tokio::time::timeout(limit, self.observe()).await {
            Ok(mut st) => {
                self.remember_timeline(&mut st);
                st
            }
            Err(_) => {
                self.note_problem(Some("status did not finish in time".into()));
                PgStatus {
                    state: PgState::Unknown,
                    details: PgDetails::default(),
                }
            }
        }
    }

    #[tracing::instrument(level = "info", skip_all, fields(member = %self.member()))]
    async fn bootstrap(&self) -> Result<()> {
        self.do_bootstrap().await
    }

    #[tracing::instrument(level = "info", skip_all, fields(member = %self.member(), ?role))]
    async fn start(&self, role: &StartAs) -> Result<()> {
        self.do_start(role, true).await
    }

    #[tracing::instrument(level = "info", skip_all, fields(member = %self.member(), ?mode))]
    async fn stop(&self, mode: StopMode) -> Result<()> {
        self.do_stop(mode, true).await
    }

    #[tracing::instrument(level = "info", skip_all, fields(member = %self.member()))]
    async fn restart(&self, role: &StartAs) -> Result<()> {
        self.do_restart(role).await
    }

    #[tracing::instrument(level = "info", skip_all, fields(member = %self.member()))]
    async fn promote(&self) -> Result<Promoted> {
        self.promote_and_describe().await
    }

    #[tracing::instrument(level = "info", skip_all, fields(member = %self.member(), upstream = ?upstream.map(|u| &u.name)))]
    async fn follow(&self, upstream: Option<&Upstream>) -> Result<()> {
        self.do_follow(upstream).await
    }

    #[tracing::instrument(level = "info", skip_all, fields(member = %self.member(), upstream = %upstream.name))]
    async fn create_replica(&self, upstream: &Upstream, sysid: &str) -> Result<()> {
        self.do_clone(upstream, sysid).await
    }

    #[tracing::instrument(level = "info", skip_all, fields(member = %self.member(), upstream = %upstream.name))]
    async fn rewind_from(&self, upstream: &Upstream) -> Result<()> {
        self.do_rewind(upstream).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(member = %self.member()))]
    async fn sync_slots(&self, members: &[MemberName], ignore: &[IgnoreSlot]) -> Result<()> {
        self.do_sync_slots(members, ignore).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(member = %self.member()))]
    async fn retry_streaming(&self) -> Result<()> {
        self.reload_conf().await
    }

    #[tracing::instrument(level = "info", skip_all, fields(member = %self.member()))]
    async fn reload(&self, parameters: std::collections::BTreeMap<String, GucValue>) -> Result<()> {
        self.do_reload(parameters).await
    }

    #[tracing::instrument(level = "info", skip_all, fields(member = %self.member(), value))]
    async fn set_sync_standby_names(&self, value: &str) -> Result<()> {
        self.do_set_sync_names(value).await
    }
}
