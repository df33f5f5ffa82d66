//! What `FakePostgres` records: one `Call` per operation with its arguments, and `Op`, the
//! operation alone (what `fail_next` takes).

use std::collections::BTreeMap;
use std::fmt;

use crate::ha::{MemberName, StartAs, StopMode, Upstream};
use crate::pg::GucValue;

/// The operations of `trait Postgres` (for `fail_next`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `bootstrap`.
    Bootstrap,
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `restart`.
    Restart,
    /// `promote`.
    Promote,
    /// `follow`.
    Follow,
    /// `retry_streaming`.
    RetryStreaming,
    /// `create_replica`.
    Clone,
    /// `rewind_from`.
    Rewind,
    /// `sync_slots`.
    SyncSlots,
    /// `reload`.
    Reload,
    /// `set_sync_standby_names`.
    SetSyncStandbyNames,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One recorded call with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `bootstrap()`.
    Bootstrap,
    /// `start(role)`.
    Start(StartAs),
    /// `stop(mode)`.
    Stop(StopMode),
    /// `restart()`.
    Restart,
    /// `promote()`.
    Promote,
    /// `follow(upstream)`.
    Follow(Option<Upstream>),
    /// `retry_streaming()`.
    RetryStreaming,
    /// `create_replica(upstream)`.
    Clone(Upstream),
    /// `rewind_from(upstream)`.
    Rewind(Upstream),
    /// `sync_slots(members)`.
    SyncSlots(Vec<MemberName>),
    /// `reload(parameters)`.
    Reload(BTreeMap<String, GucValue>),
    /// `set_sync_standby_names(value)`.
    SetSyncStandbyNames(String),
}

impl Call {
    /// The operation this call is of.
    pub fn op(&self) -> Op {
        match self {
            Call::Bootstrap => Op::Bootstrap,
            Call::Start(_) => Op::Start,
            Call::Stop(_) => Op::Stop,
            Call::Restart => Op::Restart,
            Call::Promote => Op::Promote,
            Call::Follow(_) => Op::Follow,
            Call::RetryStreaming => Op::RetryStreaming,
            Call::Clone(_) => Op::Clone,
            Call::Rewind(_) => Op::Rewind,
            Call::SyncSlots(_) => Op::SyncSlots,
            Call::Reload(_) => Op::Reload,
            Call::SetSyncStandbyNames(_) => Op::SetSyncStandbyNames,
        }
    }
}
