//! The `backup` and `backup-members/<name>` keys (hapg's own): compare-and-set writes for
//! the backup runner (`crate::backup`) and `hactl backup`.
//!
//! `backup` is written only with a compare on its mod_revision (or on its absence), so two
//! leaders in a row cannot both claim one schedule slot, and a request written by `hactl`
//! is never overwritten unseen.

use etcd_client::{DeleteOptions, Txn, TxnOp};

use super::EtcdDcs;
use super::txn::{absent, at_revision, encode, outcome, put_if};
use crate::backup::record::{BackupMember, BackupRecord};
use crate::dcs::{CasOutcome, Result, Versioned};

impl EtcdDcs {
    /// Replaces `backup` with `record` if its mod_revision is still `revision` (`None`:
    /// only if absent).
    pub async fn write_backup(
        &self,
        record: &BackupRecord,
        revision: Option<i64>,
    ) -> Result<CasOutcome> {
        let key = self.keys.backup();
        let value = encode("backup", record)?;
        let when = match revision {
            Some(r) => at_revision(&key, r),
            None => absent(&key),
        };
        let txn = put_if(when, key, value);
        self.run(|c| async move { Ok(c.kv_client().txn(txn).await?.succeeded()) })
            .await
            .map(outcome)
            .map_err(|f| f.into_dcs("txn"))
    }

    /// `backup` read from etcd itself (not from the cache): for compare-and-set retries.
    pub async fn read_backup(&self) -> Result<Option<Versioned<BackupRecord>>> {
        let key = self.keys.backup();
        let resp = self
            .run(|c| async move { Ok(c.kv_client().get(key, None).await?) })
            .await
            .map_err(|f| f.into_dcs("get"))?;
        Ok(resp.kvs().first().map(|kv| Versioned {
            value: BackupRecord::parse(&String::from_utf8_lossy(kv.value())),
            revision: kv.mod_revision(),
        }))
    }

    /// Deletes what describes the running cluster and its timeline (`initialize`, `leader`,
    /// `members/`, `status`, `history`, `failover`, `sync`, `failsafe`) for a cluster
    /// restored from a backup, keeping `config` and the `backup` keys. The restored member
    /// then leads as a member whose data survived a wipe of etcd.
    pub async fn reset_for_restore(&self) -> Result<()> {
        let k = &self.keys;
        let mut ops: Vec<TxnOp> = [
            k.initialize(),
            k.leader(),
            k.status(),
            k.history(),
            k.failover(),
            k.sync(),
            k.failsafe(),
        ]
        .into_iter()
        .map(|key| TxnOp::delete(key, None))
        .collect();
        ops.push(TxnOp::delete(
            k.members(),
            Some(DeleteOptions::new().with_prefix()),
        ));
        let txn = Txn::new().and_then(ops);
        self.run(|c| async move {
            c.kv_client().txn(txn).await?;
            Ok(())
        })
        .await
        .map_err(|f| f.into_dcs("txn"))
    }

    /// Writes `backup-members/<me>` (no lease: it describes a place, not a liveness).
    pub async fn publish_backup_member(&self, member: &BackupMember) -> Result<()> {
        let value = encode("backup member", member)?;
        self.put(self.keys.backup_member(&self.me), value, 0).await
    }
}
