//! Small builders for the compare-and-set transactions and values `EtcdDcs` writes.
//!
//! Pure functions: no I/O, no state.

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use crate::dcs::{CasOutcome, DcsError, FailoverRecord, Result};

/// JSON of a value we write.
pub(super) fn encode<T: serde::Serialize + ?Sized>(what: &'static str, v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| DcsError::Invalid {
        what,
        detail: e.to_string(),
    })
}

/// `Applied` when the compare held.
pub(super) fn outcome(applied: bool) -> CasOutcome {
    if applied {
        CasOutcome::Applied
    } else {
        CasOutcome::Lost
    }
}

/// Whether a `failover` value asks for something (absent, blank, `{}` and garbage do not:
/// `Cluster::from_kvs` shows none of them as a request).
pub(super) fn failover_pending(value: &[u8]) -> bool {
    let text = String::from_utf8_lossy(value);
    !text.trim().is_empty()
        && serde_json::from_str::<FailoverRecord>(&text).is_ok_and(|f| !f.is_empty())
}

/// `key` does not exist.
pub(super) fn absent(key: &str) -> Compare {
    Compare::create_revision(key, CompareOp::Equal, 0)
}

/// `key` holds exactly `value`.
pub(super) fn holds(key: &str, value: &str) -> Compare {
    Compare::value(key, CompareOp::Equal, value)
}

/// `key` was last written at `revision`.
pub(super) fn at_revision(key: &str, revision: i64) -> Compare {
    Compare::mod_revision(key, CompareOp::Equal, revision)
}

/// Put `key` = `value` (no lease) if `when` holds.
pub(super) fn put_if(when: Compare, key: String, value: impl Into<Vec<u8>>) -> Txn {
    Txn::new()
        .when([when])
        .and_then([TxnOp::put(key, value, None)])
}

/// Delete `key` if `when` holds.
pub(super) fn delete_if(when: Compare, key: String) -> Txn {
    Txn::new().when([when]).and_then([TxnOp::delete(key, None)])
}
