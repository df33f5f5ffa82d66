//! Synchronous replication as the REST API shows it: the readings live in `crate::status::sync`
//! (shared with `/patroni`'s rendering in the runtime's snapshot); re-exported here.

pub use crate::status::sync::*;
