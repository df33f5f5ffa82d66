//! `MemoryDcs`: an in-process fake of `EtcdDcs` with the same semantics, for the shell's tests.
//!
//! One [`MemoryStore`] plays etcd; each agent under test gets its own `MemoryDcs` (its own
//! member name and lease) on a clone of the store handle. Lease expiry runs on
//! `tokio::time::Instant`, so a test under `tokio::time::pause()` steps through TTLs with
//! `tokio::time::advance` (that needs tokio's `test-util` feature in the test's crate).
//!
//! Fault injection: [`MemoryDcs::set_hanging`] makes every call hang (a blackholed etcd),
//! [`MemoryDcs::set_unreachable`] cuts one member off (every call returns
//! `DcsError::Unavailable`), [`MemoryStore::set_unreachable`] takes the whole store down, and
//! [`MemoryStore::expire_lease_of`] ends a member's lease at once.
//!
//! Invariants shared with `EtcdDcs`: a lost compare is `CasOutcome::Lost`; the lease lives only
//! as long as `keepalive`/`renew_leader` are called; a lease found gone is reported once by
//! `keepalive` and replaced by the next call; `renew_leader` never creates `leader`.

mod store;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

pub use self::store::MemoryStore;
use self::store::{LeaseNotFound, Store};
use crate::dcs::{
    CasOutcome, Cluster, Dcs, DcsError, FailoverExpect, FailoverRecord, HistoryRecord, Keys,
    MemberRecord, RawKv, Result, StatusRecord, SyncRecord,
};

/// Our lease: id and the TTL it was granted with.
#[derive(Debug, Clone, Copy)]
struct Held {
    id: i64,
    ttl: u64,
}

/// One member's view of a [`MemoryStore`].
#[derive(Debug)]
pub struct MemoryDcs {
    store: MemoryStore,
    keys: Keys,
    me: String,
    desired_ttl: AtomicU64,
    lease: Mutex<Option<Held>>,
    /// A lease was found gone by a write; the next keepalive reports it.
    lost_unreported: AtomicBool,
    unreachable: AtomicBool,
    hanging: AtomicBool,
    /// The store's change counter as of the last `changed()` that returned.
    seen: Mutex<u64>,
    /// Wakes `changed()` on a fault injection (a watch break for the real thing).
    fault: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn encode<T: serde::Serialize + ?Sized>(what: &'static str, v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| DcsError::Invalid {
        what,
        detail: e.to_string(),
    })
}

fn outcome(applied: bool) -> CasOutcome {
    if applied {
        CasOutcome::Applied
    } else {
        CasOutcome::Lost
    }
}

impl MemoryDcs {
    /// Member `member` of the cluster at `keys` on `store`, with lease TTL `ttl_secs`.
    pub fn new(store: MemoryStore, keys: Keys, member: &str, ttl_secs: u64) -> MemoryDcs {
        let seen = *store.subscribe().borrow();
        MemoryDcs {
            store,
            keys,
            me: member.to_string(),
            desired_ttl: AtomicU64::new(ttl_secs),
            lease: Mutex::new(None),
            lost_unreported: AtomicBool::new(false),
            unreachable: AtomicBool::new(false),
            hanging: AtomicBool::new(false),
            seen: Mutex::new(seen),
            fault: Notify::new(),
        }
    }

    /// Cuts this member off from the store (every call fails) or reconnects it.
    pub fn set_unreachable(&self, unreachable: bool) {
        if self.unreachable.swap(unreachable, Ordering::AcqRel) != unreachable {
            self.fault.notify_one();
        }
    }

    /// The store this member uses.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// The cluster's keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Our lease id (0 when none is held).
    pub fn lease_id(&self) -> i64 {
        lock(&self.lease).map_or(0, |h| h.id)
    }

    /// Every request from now on hangs (never answers) until `set_hanging(false)`: a dead
    /// route or a frozen etcd, where calls neither succeed nor fail.
    pub fn set_hanging(&self, hanging: bool) {
        self.hanging.store(hanging, Ordering::Release);
    }

    /// Waits forever while hanging is injected.
    async fn stall(&self) {
        while self.hanging.load(Ordering::Acquire) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    fn is_unreachable(&self) -> bool {
        self.unreachable.load(Ordering::Acquire) || self.store.is_unreachable()
    }

    fn check(&self, op: &'static str) -> Result<()> {
        if self.is_unreachable() {
            return Err(DcsError::Unavailable {
                op,
                detail: "etcd unreachable (injected fault)".into(),
            });
        }
        Ok(())
    }

    /// Runs `f` with the store and our lease id (granted if there is none). A lease the store
    /// does not know is forgotten and reported as `Lost`, as etcd's "lease not found".
    fn with_lease(
        &self,
        f: impl FnOnce(&mut Store, i64) -> std::result::Result<bool, LeaseNotFound>,
    ) -> CasOutcome {
        let mut held = lock(&self.lease);
        let ttl = self.desired_ttl.load(Ordering::Relaxed);
        let r = self.store.with(|st, now| {
            let id = match *held {
                Some(h) => h.id,
                None => {
                    let id = st.grant(&self.me, ttl, now);
                    *held = Some(Held { id, ttl });
                    id
                }
            };
            f(st, id)
        });
        match r {
            Ok(applied) => outcome(applied),
            Err(LeaseNotFound) => {
                *held = None;
                self.lost_unreported.store(true, Ordering::Release);
                CasOutcome::Lost
            }
        }
    }

    /// A compare-and-set without lease: `f` returns whether it applied.
    fn cas(&self, op: &'static str, f: impl FnOnce(&mut Store) -> bool) -> Result<CasOutcome> {
        self.check(op)?;
        Ok(outcome(self.store.with(|st, _| f(st))))
    }

    fn put_plain(&self, key: &str, value: &[u8]) -> Result<()> {
        self.check("put")?;
        // invariant: a put without lease cannot fail
        let _ = self.store.with(|st, _| st.put(key, value, 0));
        Ok(())
    }
}

impl Dcs for MemoryDcs {
    fn cached_cluster(&self) -> Option<Cluster> {
        self.check("range").ok()?;
        Some(self.store.with(|st, _| {
            let kvs = st.range(self.keys.prefix()).map(|(k, kv)| RawKv {
                key: k,
                value: &kv.value,
                mod_revision: kv.mod_revision,
                lease: kv.lease,
            });
            Cluster::from_kvs(&self.keys, kvs)
        }))
    }

    async fn cluster(&self) -> Result<Cluster> {
        self.stall().await;
        self.check("range")?;
        Ok(self.store.with(|st, _| {
            let kvs = st.range(self.keys.prefix()).map(|(k, kv)| RawKv {
                key: k,
                value: &kv.value,
                mod_revision: kv.mod_revision,
                lease: kv.lease,
            });
            Cluster::from_kvs(&self.keys, kvs)
        }))
    }

    async fn changed(&self) {
        let mut rx = self.store.subscribe();
        loop {
            let current = *rx.borrow_and_update();
            if !self.is_unreachable() {
                let mut seen = lock(&self.seen);
                if *seen != current {
                    *seen = current;
                    return;
                }
            }
            let expiry = self.store.next_expiry();
            let lease_expiry = async {
                match expiry {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = rx.changed() => {
                    if r.is_err() {
                        // invariant: the sender lives in the store we hold; never closed.
                        std::future::pending::<()>().await;
                    }
                }
                () = self.fault.notified() => return,
                // Reap the expired lease; that bumps the counter if it carried `leader`.
                () = lease_expiry => self.store.with(|_, _| ()),
            }
        }
    }

    fn set_ttl(&self, ttl_secs: u64) {
        self.desired_ttl.store(ttl_secs, Ordering::Relaxed);
    }

    async fn keepalive(&self) -> Result<CasOutcome> {
        self.stall().await;
        self.check("lease keepalive")?;
        if self.lost_unreported.swap(false, Ordering::AcqRel) {
            return Ok(CasOutcome::Lost);
        }
        let mut held = lock(&self.lease);
        let desired = self.desired_ttl.load(Ordering::Relaxed);
        let leader = self.keys.leader();
        let member = self.keys.member(&self.me);
        Ok(self.store.with(|st, now| {
            let Some(h) = *held else {
                let id = st.grant(&self.me, desired, now);
                *held = Some(Held { id, ttl: desired });
                return CasOutcome::Applied;
            };
            if !st.keepalive(h.id, now) {
                *held = None;
                return CasOutcome::Lost;
            }
            if h.ttl != desired {
                // Move our keys onto a lease with the new TTL, then drop the old one.
                let new = st.grant(&self.me, desired, now);
                for key in [&leader, &member] {
                    let ours = st
                        .get(key)
                        .filter(|kv| key != &leader || kv.value.as_slice() == self.me.as_bytes());
                    if let Some(value) = ours.map(|kv| kv.value.clone()) {
                        // invariant: `new` was granted just above
                        let _ = st.put(key, &value, new);
                    }
                }
                st.revoke(h.id);
                *held = Some(Held {
                    id: new,
                    ttl: desired,
                });
            }
            CasOutcome::Applied
        }))
    }

    async fn acquire_leader(&self) -> Result<CasOutcome> {
        self.stall().await;
        self.check("txn")?;
        let key = self.keys.leader();
        Ok(self.with_lease(|st, lease| {
            if st.get(&key).is_some() {
                return Ok(false);
            }
            st.put(&key, self.me.as_bytes(), lease).map(|()| true)
        }))
    }

    async fn take_over_leader(&self, revision: i64) -> Result<CasOutcome> {
        self.stall().await;
        self.check("txn")?;
        let key = self.keys.leader();
        Ok(self.with_lease(|st, lease| {
            if st.get(&key).is_none_or(|kv| kv.mod_revision != revision) {
                return Ok(false);
            }
            st.put(&key, self.me.as_bytes(), lease).map(|()| true)
        }))
    }

    fn lease_id(&self) -> i64 {
        MemoryDcs::lease_id(self)
    }

    async fn renew_leader(&self) -> Result<CasOutcome> {
        self.stall().await;
        if self.keepalive().await? == CasOutcome::Lost {
            return Ok(CasOutcome::Lost);
        }
        let key = self.keys.leader();
        Ok(self.with_lease(|st, lease| {
            // Ours, or gone altogether (re-created, as `EtcdDcs` does).
            let ours = st
                .get(&key)
                .is_none_or(|kv| kv.value.as_slice() == self.me.as_bytes());
            if !ours {
                return Ok(false);
            }
            st.put(&key, self.me.as_bytes(), lease).map(|()| true)
        }))
    }

    async fn release_leader(&self) -> Result<CasOutcome> {
        self.stall().await;
        let key = self.keys.leader();
        self.cas("txn", |st| {
            st.get(&key)
                .is_some_and(|kv| kv.value.as_slice() == self.me.as_bytes())
                && st.delete(&key)
        })
    }

    async fn publish_member(&self, record: &MemberRecord) -> Result<()> {
        self.stall().await;
        let value = encode("member record", record)?;
        let key = self.keys.member(&self.me);
        self.check("put")?;
        // A lease found gone is replaced, and the write retried once under the new one.
        for _ in 0..2 {
            if self.with_lease(|st, lease| st.put(&key, &value, lease).map(|()| true))
                == CasOutcome::Applied
            {
                return Ok(());
            }
        }
        Err(DcsError::Unavailable {
            op: "put",
            detail: "requested lease not found".into(),
        })
    }

    async fn claim_initialize(&self) -> Result<CasOutcome> {
        let key = self.keys.initialize();
        self.cas("txn", |st| {
            st.get(&key).is_none() && st.put(&key, b"", 0).is_ok()
        })
    }

    async fn write_initialize(&self, sysid: &str) -> Result<()> {
        self.put_plain(&self.keys.initialize(), sysid.as_bytes())
    }

    async fn repair_initialize(&self, found: &str, sysid: &str) -> Result<CasOutcome> {
        let key = self.keys.initialize();
        self.cas("txn", |st| {
            st.get(&key).is_some_and(|kv| kv.value == found.as_bytes())
                && st.put(&key, sysid.as_bytes(), 0).is_ok()
        })
    }

    async fn cancel_initialize(&self) -> Result<CasOutcome> {
        let key = self.keys.initialize();
        self.cas("txn", |st| {
            st.get(&key).is_some_and(|kv| kv.value.is_empty()) && st.delete(&key)
        })
    }

    async fn create_config(&self, config: &serde_json::Value) -> Result<CasOutcome> {
        let key = self.keys.config();
        let value = encode("config", config)?;
        self.cas("txn", |st| {
            st.get(&key).is_none() && st.put(&key, &value, 0).is_ok()
        })
    }

    async fn write_config(&self, config: &serde_json::Value, revision: i64) -> Result<CasOutcome> {
        let key = self.keys.config();
        let value = encode("config", config)?;
        self.cas("txn", |st| {
            st.get(&key).map_or(0, |kv| kv.mod_revision) == revision
                && st.put(&key, &value, 0).is_ok()
        })
    }

    async fn write_status(&self, status: &StatusRecord) -> Result<()> {
        self.stall().await;
        self.put_plain(&self.keys.status(), &encode("status", status)?)
    }

    async fn write_history(&self, history: &[HistoryRecord]) -> Result<()> {
        self.stall().await;
        self.put_plain(&self.keys.history(), &encode("history", history)?)
    }

    async fn write_failsafe(
        &self,
        members: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        self.put_plain(&self.keys.failsafe(), &encode("failsafe", members)?)
    }

    async fn write_failover(
        &self,
        request: &FailoverRecord,
        expect: FailoverExpect,
    ) -> Result<CasOutcome> {
        let key = self.keys.failover();
        let value = encode("failover", request)?;
        self.cas("txn", |st| {
            let allowed = match (expect, st.get(&key)) {
                (FailoverExpect::NoPending, None) => true,
                (FailoverExpect::NoPending, Some(kv)) => {
                    let text = String::from_utf8_lossy(&kv.value);
                    text.trim().is_empty()
                        || serde_json::from_str::<FailoverRecord>(&text)
                            .map_or(true, |f| f.is_empty())
                }
                (FailoverExpect::Revision(r), kv) => kv.map_or(0, |kv| kv.mod_revision) == r,
            };
            allowed && st.put(&key, &value, 0).is_ok()
        })
    }

    async fn clear_failover(&self, revision: i64) -> Result<CasOutcome> {
        let key = self.keys.failover();
        self.cas("txn", |st| {
            st.get(&key).is_some_and(|kv| kv.mod_revision == revision) && st.delete(&key)
        })
    }

    async fn write_sync(&self, sync: &SyncRecord, revision: Option<i64>) -> Result<CasOutcome> {
        let key = self.keys.sync();
        let value = encode("sync", sync)?;
        self.cas("txn", |st| {
            let at = st.get(&key).map(|kv| kv.mod_revision);
            at == revision && st.put(&key, &value, 0).is_ok()
        })
    }

    async fn delete_sync(&self, revision: i64) -> Result<CasOutcome> {
        let key = self.keys.sync();
        self.cas("txn", |st| {
            st.get(&key).is_some_and(|kv| kv.mod_revision == revision) && st.delete(&key)
        })
    }

    async fn revoke_lease(&self) -> Result<()> {
        self.check("lease revoke")?;
        let mut held = lock(&self.lease);
        if let Some(h) = held.take() {
            self.store.with(|st, _| st.revoke(h.id));
        }
        Ok(())
    }

    async fn delete_cluster(&self) -> Result<()> {
        self.check("delete")?;
        self.store
            .with(|st, _| st.delete_prefix(self.keys.prefix()));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
