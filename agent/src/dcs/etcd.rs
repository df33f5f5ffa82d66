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
mod ops;
mod txn;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, PutOptions, Txn, TxnOp};
use tokio::task::JoinHandle;

use self::cache::Cache;
use self::conn::{Conn, Failure};
use self::lease::{Kept, Lease};
use self::txn::outcome;
use crate::dcs::{CasOutcome, EtcdSettings, Keys, Result};

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

#[cfg(test)]
mod tests;
