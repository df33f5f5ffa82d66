//! `EtcdDcs`: the cluster's keys in etcd v3, in Patroni's layout and with Patroni's etcd3
//! compare-and-set semantics.
//!
//! Request budget (an idle 3-node cluster should cost etcd about 0.4 requests/s, as Patroni's
//! does): the agent calls [`EtcdDcs::start_watch`], after which `cluster()` answers from a
//! watch-maintained cache (`cache.rs`) and a loop costs one lease keepalive message. Writes
//! whose value and lease the live cache already shows (`members/<me>`, `status`, `history`)
//! are skipped, as Patroni's `touch_member` does. Without the watch (hactl) every read is one
//! range request.
//!
//! Invariants:
//! - every call is bounded by `op_timeout` and every failure is `DcsError::Unavailable`;
//!   a lost compare is `CasOutcome::Lost`;
//! - a timed-out write may still be applied later, so every write to `leader` is a CAS;
//! - any failure on the shared connection invalidates the cache (a frozen etcd may take a
//!   few seconds to break the watch), so the next `cluster()` asks etcd itself;
//! - the lease is kept alive only by callers (`keepalive`, `renew_leader`), never in the
//!   background (`lease.rs`).
//!
//! This module does not decide anything: it reports outcomes and leaves policy to `ha`.

mod backup;
mod cache;
mod conn;
mod lease;
mod txn;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp};
use tokio::task::JoinHandle;
use tracing::instrument;

use self::cache::Cache;
use self::conn::{Conn, Failure};
use self::lease::{Kept, Lease};
use self::txn::{absent, at_revision, delete_if, encode, failover_pending, holds, outcome, put_if};
use crate::dcs::{
    CasOutcome, Cluster, Dcs, EtcdSettings, FailoverExpect, FailoverRecord, HistoryRecord, Keys,
    MemberRecord, RawKv, Result, StatusRecord, SyncRecord,
};

/// The cluster in etcd, as seen by one member (who owns one lease).
pub struct EtcdDcs {
    conn: Arc<Conn>,
    cache: Arc<Cache>,
    keys: Keys,
    me: String,
    op_timeout: Duration,
    lease: Lease,
    watch: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for EtcdDcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No settings here: they hold the etcd password.
        f.debug_struct("EtcdDcs")
            .field("prefix", &self.keys.prefix())
            .field("member", &self.me)
            .field("lease", &self.lease.current())
            .finish_non_exhaustive()
    }
}

impl EtcdDcs {
    /// Prepares a client for `settings.endpoints`; no request is made, so this succeeds while
    /// etcd is down (the first call connects, and later calls retry). `ttl_secs` is the TTL
    /// of our lease until `set_ttl` says otherwise; `op_timeout` bounds every call.
    pub async fn connect(
        settings: &EtcdSettings,
        keys: Keys,
        member: &str,
        ttl_secs: u64,
        op_timeout: Duration,
    ) -> Result<EtcdDcs> {
        let conn = Conn::new(settings, op_timeout)?;
        let lease = Lease::new(
            keys.leader(),
            keys.member(member),
            member.to_string(),
            ttl_secs,
        );
        Ok(EtcdDcs {
            conn: Arc::new(conn),
            cache: Arc::new(Cache::default()),
            keys,
            me: member.to_string(),
            op_timeout,
            lease,
            watch: Mutex::new(None),
        })
    }

    /// Starts the watch task that keeps the cluster cache (the agent calls this once; hactl
    /// does not). Needs a tokio runtime; the task ends when this `EtcdDcs` is dropped.
    /// Without it, `changed()` never resolves.
    pub fn start_watch(&self) {
        let mut slot = self
            .watch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(tokio::spawn(cache::run(
                self.conn.clone(),
                self.cache.clone(),
                self.keys.clone(),
                self.op_timeout,
            )));
        }
    }

    /// Whether `cluster()` is currently answered from the live watch cache.
    pub fn watch_is_live(&self) -> bool {
        self.cache.is_live()
    }

    /// The cluster's keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Our lease id (0 when none is held).
    pub fn lease_id(&self) -> i64 {
        self.lease.current()
    }

    /// Runs `f` with the client, within `op_timeout`; a connection failure invalidates the
    /// cache.
    async fn run<T, F, Fut>(&self, f: F) -> std::result::Result<T, Failure>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let work = async {
            let client = self.conn.client().await?;
            f(client).await
        };
        let r = tokio::time::timeout(self.op_timeout, work)
            .await
            .unwrap_or(Err(Failure::Timeout(self.op_timeout)));
        if let Err(f) = &r
            && f.is_transport()
        {
            self.cache.invalidate();
        }
        r
    }

    /// A compare-and-set without lease.
    async fn cas(&self, txn: Txn) -> Result<CasOutcome> {
        self.run(|c| async move { Ok(c.kv_client().txn(txn).await?.succeeded()) })
            .await
            .map(outcome)
            .map_err(|f| f.into_dcs("txn"))
    }

    /// A compare-and-set whose writes go under our lease (granted if needed). A lease etcd
    /// does not know is forgotten and reported as `Lost`.
    async fn leased_cas(&self, build: impl FnOnce(i64) -> Txn) -> Result<CasOutcome> {
        let r = self
            .run(|c| async move {
                let id = self.lease.id(&c).await?;
                match c.kv_client().txn(build(id)).await {
                    Ok(resp) => Ok(resp.succeeded()),
                    Err(e) => {
                        let f = Failure::from(e);
                        if f.is_lease_not_found() {
                            self.lease.forget(id);
                        }
                        Err(f)
                    }
                }
            })
            .await;
        match r {
            Ok(applied) => Ok(outcome(applied)),
            Err(f) if f.is_lease_not_found() => Ok(CasOutcome::Lost),
            Err(f) => Err(f.into_dcs("txn")),
        }
    }

    /// A plain put, skipped when the live cache already shows this value under this lease.
    async fn put(&self, key: String, value: Vec<u8>, lease: i64) -> Result<()> {
        self.put_inner(key, value, lease)
            .await
            .map_err(|f| f.into_dcs("put"))
    }

    async fn put_inner(
        &self,
        key: String,
        value: Vec<u8>,
        lease: i64,
    ) -> std::result::Result<(), Failure> {
        if let Some(Some(e)) = self.cache.entry(&key)
            && e.value == value
            && e.lease == lease
        {
            return Ok(());
        }
        let opts = (lease != 0).then(|| PutOptions::new().with_lease(lease));
        self.run(|c| async move {
            c.kv_client().put(key, value, opts).await?;
            Ok(())
        })
        .await
    }

    async fn keepalive_inner(&self) -> Result<Kept> {
        self.run(|c| async move { self.lease.keepalive(&c).await })
            .await
            .map_err(|f| f.into_dcs("lease keepalive"))
    }

    fn leader_put(&self, lease: i64) -> TxnOp {
        TxnOp::put(
            self.keys.leader(),
            self.me.as_str(),
            Some(PutOptions::new().with_lease(lease)),
        )
    }
}

/// Whether the transaction in the else branch of `resp` succeeded.
fn nested_succeeded(resp: &etcd_client::TxnResponse) -> bool {
    resp.op_responses().into_iter().any(|r| match r {
        etcd_client::TxnOpResponse::Txn(t) => t.succeeded(),
        _ => false,
    })
}

impl Drop for EtcdDcs {
    fn drop(&mut self) {
        if let Some(h) = self
            .watch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            h.abort();
        }
    }
}

impl Dcs for EtcdDcs {
    fn cached_cluster(&self) -> Option<Cluster> {
        self.cache.cluster(&self.keys)
    }

    #[instrument(level = "debug", skip_all, fields(prefix = %self.keys.prefix()))]
    async fn cluster(&self) -> Result<Cluster> {
        if let Some(c) = self.cache.cluster(&self.keys) {
            return Ok(c);
        }
        let prefix = self.keys.prefix().to_string();
        let resp = self
            .run(|c| async move {
                let opts = GetOptions::new().with_prefix();
                Ok(c.kv_client().get(prefix, Some(opts)).await?)
            })
            .await
            .map_err(|f| f.into_dcs("range"))?;
        let kvs = resp.kvs().iter().filter_map(|kv| {
            Some(RawKv {
                key: kv.key_str().ok()?,
                value: kv.value(),
                mod_revision: kv.mod_revision(),
                lease: kv.lease(),
            })
        });
        Ok(Cluster::from_kvs(&self.keys, kvs))
    }

    async fn changed(&self) {
        self.cache.changed().await;
    }

    fn set_ttl(&self, ttl_secs: u64) {
        self.lease.set_ttl(ttl_secs);
    }

    #[instrument(level = "debug", skip_all, fields(member = %self.me))]
    async fn keepalive(&self) -> Result<CasOutcome> {
        Ok(match self.keepalive_inner().await? {
            Kept::Alive | Kept::Granted => CasOutcome::Applied,
            Kept::Gone => CasOutcome::Lost,
        })
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.leader()))]
    async fn acquire_leader(&self) -> Result<CasOutcome> {
        // Keep the lease alive first, so that it runs a full ttl from before this call (the
        // caller counts the new leader's validity from then). A lease found gone is replaced
        // by a fresh one when the key is written.
        self.keepalive_inner().await?;
        let key = self.keys.leader();
        self.leased_cas(|lease| {
            Txn::new()
                .when([absent(&key)])
                .and_then([self.leader_put(lease)])
        })
        .await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.leader()))]
    async fn renew_leader(&self) -> Result<CasOutcome> {
        // Only the lease the key was held under renews it: a lease granted just now means
        // that one is gone, and taking the key again is an acquire, the core's decision.
        if self.keepalive_inner().await? != Kept::Alive {
            return Ok(CasOutcome::Lost);
        }
        let key = self.keys.leader();
        let lease = self.lease.current();
        // The lease is alive, so a key the live cache shows under it is still there.
        if let Some(Some(e)) = self.cache.entry(&key)
            && lease != 0
            && e.lease == lease
            && String::from_utf8_lossy(&e.value).trim() == self.me
        {
            return Ok(CasOutcome::Applied);
        }
        // Re-attach the key while it holds our name; if it is gone altogether (deleted by
        // hand, or every key of the cluster wiped) while our lease lives, create it again, as
        // Patroni does: nobody else can have been given it in between, and a member that
        // took it meanwhile makes the create fail.
        let r = self
            .run(|c| async move {
                let id = self.lease.id(&c).await?;
                let recreate = Txn::new()
                    .when([absent(&key)])
                    .and_then([self.leader_put(id)]);
                let txn = Txn::new()
                    .when([holds(&key, &self.me)])
                    .and_then([self.leader_put(id)])
                    .or_else([TxnOp::txn(recreate)]);
                match c.kv_client().txn(txn).await {
                    Ok(resp) => Ok(resp.succeeded() || nested_succeeded(&resp)),
                    Err(e) => {
                        let f = Failure::from(e);
                        if f.is_lease_not_found() {
                            self.lease.forget(id);
                        }
                        Err(f)
                    }
                }
            })
            .await;
        match r {
            Ok(applied) => Ok(outcome(applied)),
            Err(f) if f.is_lease_not_found() => Ok(CasOutcome::Lost),
            Err(f) => Err(f.into_dcs("txn")),
        }
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.leader(), revision))]
    async fn take_over_leader(&self, revision: i64) -> Result<CasOutcome> {
        self.keepalive_inner().await?;
        let key = self.keys.leader();
        self.leased_cas(|lease| {
            Txn::new()
                .when([at_revision(&key, revision)])
                .and_then([self.leader_put(lease)])
        })
        .await
    }

    fn lease_id(&self) -> i64 {
        self.lease.current()
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.leader()))]
    async fn release_leader(&self) -> Result<CasOutcome> {
        let key = self.keys.leader();
        self.cas(delete_if(holds(&key, &self.me), key)).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.member(&self.me)))]
    async fn publish_member(&self, record: &MemberRecord) -> Result<()> {
        let value = encode("member record", record)?;
        let key = self.keys.member(&self.me);
        // Twice at most: a first attempt that finds our lease gone grants a new one.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let lease = self
                .run(|c| async move { self.lease.id(&c).await })
                .await
                .map_err(|f| f.into_dcs("lease grant"))?;
            match self.put_inner(key.clone(), value.clone(), lease).await {
                Err(f) if attempt == 1 && f.is_lease_not_found() => self.lease.forget(lease),
                other => return other.map_err(|f| f.into_dcs("put")),
            }
        }
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.initialize()))]
    async fn claim_initialize(&self) -> Result<CasOutcome> {
        let key = self.keys.initialize();
        self.cas(put_if(absent(&key), key, "")).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.initialize()))]
    async fn write_initialize(&self, sysid: &str) -> Result<()> {
        let value = sysid.as_bytes().to_vec();
        self.put(self.keys.initialize(), value, 0).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.initialize()))]
    async fn repair_initialize(&self, found: &str, sysid: &str) -> Result<CasOutcome> {
        let key = self.keys.initialize();
        self.cas(put_if(holds(&key, found), key, sysid)).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.initialize()))]
    async fn cancel_initialize(&self) -> Result<CasOutcome> {
        let key = self.keys.initialize();
        self.cas(delete_if(holds(&key, ""), key)).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.config()))]
    async fn create_config(&self, config: &serde_json::Value) -> Result<CasOutcome> {
        let key = self.keys.config();
        let value = encode("config", config)?;
        self.cas(put_if(absent(&key), key, value)).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.config(), revision))]
    async fn write_config(&self, config: &serde_json::Value, revision: i64) -> Result<CasOutcome> {
        let key = self.keys.config();
        let value = encode("config", config)?;
        self.cas(put_if(at_revision(&key, revision), key, value))
            .await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.status()))]
    async fn write_status(&self, status: &StatusRecord) -> Result<()> {
        let value = encode("status", status)?;
        self.put(self.keys.status(), value, 0).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.history()))]
    async fn write_history(&self, history: &[HistoryRecord]) -> Result<()> {
        let value = encode("history", history)?;
        self.put(self.keys.history(), value, 0).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.failsafe()))]
    async fn write_failsafe(
        &self,
        members: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        let value = encode("failsafe", members)?;
        self.put(self.keys.failsafe(), value, 0).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.failover(), expect = ?expect))]
    async fn write_failover(
        &self,
        request: &FailoverRecord,
        expect: FailoverExpect,
    ) -> Result<CasOutcome> {
        let key = self.keys.failover();
        let value = encode("failover", request)?;
        let compare = match expect {
            FailoverExpect::Revision(r) => at_revision(&key, r),
            FailoverExpect::NoPending => {
                // Absent: create-only. Present but empty (`{}`, ""): CAS on what we saw.
                let k = key.clone();
                let resp = self
                    .run(|c| async move { Ok(c.kv_client().get(k, None).await?) })
                    .await
                    .map_err(|f| f.into_dcs("range"))?;
                match resp.kvs().first() {
                    None => absent(&key),
                    Some(kv) if failover_pending(kv.value()) => return Ok(CasOutcome::Lost),
                    Some(kv) => at_revision(&key, kv.mod_revision()),
                }
            }
        };
        self.cas(put_if(compare, key, value)).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.failover(), revision))]
    async fn clear_failover(&self, revision: i64) -> Result<CasOutcome> {
        let key = self.keys.failover();
        self.cas(delete_if(at_revision(&key, revision), key)).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.sync(), revision))]
    async fn write_sync(&self, sync: &SyncRecord, revision: Option<i64>) -> Result<CasOutcome> {
        let key = self.keys.sync();
        let value = encode("sync", sync)?;
        let compare = match revision {
            None => absent(&key),
            Some(r) => at_revision(&key, r),
        };
        self.cas(put_if(compare, key, value)).await
    }

    #[instrument(level = "debug", skip_all, fields(key = %self.keys.sync(), revision))]
    async fn delete_sync(&self, revision: i64) -> Result<CasOutcome> {
        let key = self.keys.sync();
        self.cas(delete_if(at_revision(&key, revision), key)).await
    }

    #[instrument(level = "debug", skip_all, fields(member = %self.me))]
    async fn revoke_lease(&self) -> Result<()> {
        self.run(|c| async move { self.lease.revoke(&c).await })
            .await
            .map_err(|f| f.into_dcs("lease revoke"))
    }

    #[instrument(level = "debug", skip_all, fields(prefix = %self.keys.prefix()))]
    async fn delete_cluster(&self) -> Result<()> {
        let prefix = self.keys.prefix().to_string();
        self.run(|c| async move {
            let opts = DeleteOptions::new().with_prefix();
            c.kv_client().delete(prefix, Some(opts)).await?;
            Ok(())
        })
        .await
        .map_err(|f| f.into_dcs("delete"))
    }
}

#[cfg(test)]
mod tests;
