//! What this member publishes about itself, shared by the shell and the REST API: the snapshot
//! the runtime publishes after every cycle (`snapshot`), `/patroni`'s JSON rendered from it
//! (`patroni`), and how the `sync` key names members (`sync`).
//!
//! Layering: this module depends on `ha`, `dcs`, `pg` and `config` only. `runtime` (which
//! publishes snapshots) and `api` (which serves them) both depend on it, never the other way
//! round, so neither needs the other. No I/O here.

pub mod patroni;
pub mod snapshot;
pub mod sync;

pub use snapshot::NodeSnapshot;

use crate::dcs::Cluster;

/// The leader's last known WAL position: `status.optime` or its member record, whichever is newer.
pub fn leader_position(c: &Cluster) -> Option<u64> {
    let from_status = c.status.as_ref().map(|s| s.optime);
    let from_leader = c
        .leader_name()
        .and_then(|l| c.member(l))
        .and_then(|m| m.record.xlog_location);
    from_status.into_iter().chain(from_leader).max()
}
