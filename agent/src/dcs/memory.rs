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

mod ops;
mod store;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

pub use self::store::MemoryStore;
use self::store::{LeaseNotFound, Store};
use crate::dcs::{CasOutcome, DcsError, Keys, Result};

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
    /// [`MemoryDcs::lose_next_acquire_to`]: who wins the next race for the leader key.
    rival: Mutex<Option<String>>,
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
            rival: Mutex::new(None),
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

    /// The next `acquire_leader` loses the race to `rival`: just before our compare-and-create
    /// lands, `rival` creates the leader key under a lease of its own (what etcd does when
    /// another member's request arrives first, between our read and our write).
    pub fn lose_next_acquire_to(&self, rival: &str) {
        *lock(&self.rival) = Some(rival.to_string());
    }

    /// Whether a race planted by [`MemoryDcs::lose_next_acquire_to`] is still to happen.
    pub fn rival_pending(&self) -> bool {
        lock(&self.rival).is_some()
    }

    /// Plants the rival's key, if one is due.
    fn let_rival_win(&self) {
        let Some(rival) = lock(&self.rival).take() else {
            return;
        };
        let key = self.keys.leader();
        let ttl = self.desired_ttl.load(Ordering::Relaxed);
        self.store.with(|st, now| {
            let id = st.grant(&rival, ttl, now);
            let _ = st.put(&key, rival.as_bytes(), id);
        });
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

#[cfg(test)]
mod tests;
