//! `MemoryStore`: an in-process stand-in for etcd's key-value store with revisions and leases.
//!
//! Invariants (etcd's, as far as `MemoryDcs` relies on them):
//! - every write bumps the store revision; a key keeps its create revision until deleted;
//! - a key written under a lease vanishes when the lease expires or is revoked; writing under
//!   an unknown lease fails;
//! - lease expiry is measured with `tokio::time::Instant`, so tests under
//!   `tokio::time::pause()` step it with `advance`; expired leases are reaped lazily, by the
//!   next access;
//! - a change of a key ending in `leader`, `failover`, `initialize` or `config`, and a member
//!   key that appears or disappears, bump the change counter that `MemoryDcs::changed` waits on.
//!
//! It must stay a fake: no persistence, no I/O.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Key suffixes whose changes wake `changed()`.
const RELEVANT: [&str; 4] = ["/leader", "/failover", "/initialize", "/config"];

/// One stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Kv {
    pub(super) value: Vec<u8>,
    pub(super) create_revision: i64,
    pub(super) mod_revision: i64,
    pub(super) lease: i64,
}

#[derive(Debug)]
struct LeaseRec {
    owner: String,
    ttl: u64,
    expires_at: Instant,
}

/// A write under a lease the store does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LeaseNotFound;

#[derive(Debug, Default)]
pub(super) struct Store {
    revision: i64,
    kvs: BTreeMap<String, Kv>,
    leases: BTreeMap<i64, LeaseRec>,
    next_lease: i64,
    /// A relevant key changed during the current access.
    dirty: bool,
}

impl Store {
    fn touch(&mut self, key: &str) {
        if RELEVANT.iter().any(|s| key.ends_with(s)) {
            self.dirty = true;
        }
    }

    /// Deletes the keys of leases that expired by `now`.
    fn reap(&mut self, now: Instant) {
        let expired: Vec<i64> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.revoke(id);
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&Kv> {
        self.kvs.get(key)
    }

    pub(super) fn range(&self, prefix: &str) -> impl Iterator<Item = (&String, &Kv)> {
        self.kvs
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    pub(super) fn put(&mut self, key: &str, value: &[u8], lease: i64) -> Result<(), LeaseNotFound> {
        if lease != 0 && !self.leases.contains_key(&lease) {
            return Err(LeaseNotFound);
        }
        self.revision += 1;
        let existed = self.kvs.contains_key(key);
        let create_revision = self
            .kvs
            .get(key)
            .map_or(self.revision, |kv| kv.create_revision);
        self.kvs.insert(
            key.to_string(),
            Kv {
                value: value.to_vec(),
                create_revision,
                mod_revision: self.revision,
                lease,
            },
        );
        self.touch(key);
        if !existed && key.contains("/members/") {
            self.dirty = true;
        }
        Ok(())
    }

    pub(super) fn delete(&mut self, key: &str) -> bool {
        if self.kvs.remove(key).is_none() {
            return false;
        }
        self.revision += 1;
        self.touch(key);
        if key.contains("/members/") {
            self.dirty = true;
        }
        true
    }

    pub(super) fn delete_prefix(&mut self, prefix: &str) {
        let keys: Vec<String> = self.range(prefix).map(|(k, _)| k.clone()).collect();
        for k in keys {
            self.delete(&k);
        }
    }

    pub(super) fn grant(&mut self, owner: &str, ttl: u64, now: Instant) -> i64 {
        self.next_lease += 1;
        let id = self.next_lease;
        self.leases.insert(
            id,
            LeaseRec {
                owner: owner.to_string(),
                ttl,
                expires_at: now + Duration::from_secs(ttl),
            },
        );
        id
    }

    /// Renews lease `id` for its TTL; false if it does not exist.
    pub(super) fn keepalive(&mut self, id: i64, now: Instant) -> bool {
        match self.leases.get_mut(&id) {
            Some(l) => {
                l.expires_at = now + Duration::from_secs(l.ttl);
                true
            }
            None => false,
        }
    }

    /// Revokes lease `id` and deletes its keys; false if it did not exist.
    pub(super) fn revoke(&mut self, id: i64) -> bool {
        if self.leases.remove(&id).is_none() {
            return false;
        }
        let keys: Vec<String> = self
            .kvs
            .iter()
            .filter(|(_, kv)| kv.lease == id)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.delete(&k);
        }
        true
    }

    fn next_expiry(&self) -> Option<Instant> {
        self.leases.values().map(|l| l.expires_at).min()
    }
}

struct Shared {
    store: Mutex<Store>,
    /// Counts relevant changes; `MemoryDcs::changed` waits on it.
    changes: watch::Sender<u64>,
    /// The whole store is unreachable (an etcd outage for every member).
    unreachable: AtomicBool,
}

/// A shared in-memory etcd; clone the handle for every `MemoryDcs` of one test.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("revision", &self.revision())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore {
            shared: Arc::new(Shared {
                store: Mutex::new(Store::default()),
                changes: watch::Sender::new(0),
                unreachable: AtomicBool::new(false),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.shared
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the store after reaping expired leases, then announces relevant changes.
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut Store, Instant) -> R) -> R {
        let now = Instant::now();
        let (r, dirty) = {
            let mut st = self.lock();
            st.reap(now);
            let r = f(&mut st, now);
            (r, std::mem::take(&mut st.dirty))
        };
        if dirty {
            self.shared.changes.send_modify(|n| *n += 1);
        }
        r
    }

    /// A receiver of the relevant-change counter.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// When the next lease expires, if any lease exists.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.lock().next_expiry()
    }

    /// Whether the whole store is unreachable.
    pub(super) fn is_unreachable(&self) -> bool {
        self.shared.unreachable.load(Ordering::Acquire)
    }

    /// Makes every `MemoryDcs` on this store fail (an etcd outage) until cleared. Leases
    /// keep expiring meanwhile, as they would on a real etcd that is cut off from its clients.
    pub fn set_unreachable(&self, down: bool) {
        self.shared.unreachable.store(down, Ordering::Release);
        // Wake `changed()` waiters the way a broken watch does.
        self.shared.changes.send_modify(|n| *n += 1);
    }

    /// Expires every lease granted to `member` now: its member key and (if held) the leader
    /// key vanish, as when its agent stopped renewing for a TTL.
    pub fn expire_lease_of(&self, member: &str) {
        self.with(|st, _| {
            let ids: Vec<i64> = st
                .leases
                .iter()
                .filter(|(_, l)| l.owner == member)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                st.revoke(id);
            }
        });
    }

    /// The value of `key` (lossy UTF-8), if present.
    pub fn get(&self, key: &str) -> Option<String> {
        self.with(|st, _| {
            st.get(key)
                .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
        })
    }

    /// The lease `key` is attached to (0: none), if present.
    pub fn lease_of(&self, key: &str) -> Option<i64> {
        self.with(|st, _| st.get(key).map(|kv| kv.lease))
    }

    /// Writes `key` without lease, as another program (patronictl, an operator) would.
    pub fn put(&self, key: &str, value: &str) {
        // invariant: a put without lease cannot fail
        let _ = self.with(|st, _| st.put(key, value.as_bytes(), 0));
    }

    /// Deletes `key`.
    pub fn delete(&self, key: &str) {
        self.with(|st, _| st.delete(key));
    }

    /// Every key with its value, in key order.
    pub fn dump(&self) -> Vec<(String, String)> {
        self.with(|st, _| {
            st.range("")
                .map(|(k, kv)| (k.clone(), String::from_utf8_lossy(&kv.value).into_owned()))
                .collect()
        })
    }

    /// The store revision (the number of writes so far).
    pub fn revision(&self) -> i64 {
        self.lock().revision
    }
}
