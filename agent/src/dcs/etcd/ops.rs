//! `impl Dcs for EtcdDcs`: each operation of the `Dcs` trait as etcd requests (Patroni's
//! etcd3 semantics; the invariants are in the parent module).

use etcd_client::{DeleteOptions, GetOptions, Txn, TxnOp};
use tracing::instrument;

use super::conn::Failure;
use super::lease::Kept;
use super::txn::{
    absent, at_revision, delete_if, encode, failover_pending, holds, outcome, put_if,
};
use super::{EtcdDcs, nested_succeeded};
use crate::dcs::{
    CasOutcome, Cluster, Dcs, FailoverExpect, FailoverRecord, HistoryRecord, MemberRecord, RawKv,
    Result, StatusRecord, SyncRecord,
};

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
