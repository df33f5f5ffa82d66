//! `impl Dcs for MemoryDcs`: each operation of the `Dcs` trait against the in-process store,
//! with etcd's semantics (the invariants are in the parent module).

use crate::dcs::{
    CasOutcome, Cluster, Dcs, DcsError, FailoverExpect, FailoverRecord, HistoryRecord,
    MemberRecord, RawKv, Result, StatusRecord, SyncRecord,
};
use std::sync::atomic::Ordering;

use super::{Held, MemoryDcs, encode, lock};

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
        self.let_rival_win();
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
