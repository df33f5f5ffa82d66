//! Harness for hapg's integration tests: real etcd, real PostgreSQL 15 (run by real `ha-agent`
//! processes, as the unprivileged `postgres` user when the tests run as root), real HAProxy, on
//! free loopback ports in temp dirs. Logs go to `target/it-logs/<test>/`.
//!
//! Binaries come from `ETCD_BIN`, `PG_BINDIR`, `HAPROXY_BIN` (else PATH and Debian's paths); a
//! missing one fails the test with instructions. Deadlines scale with
//! `HA_TEST_TIMEOUT_MULTIPLIER`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod agent;
pub mod backup;
pub mod cluster;
pub mod ctl;
pub mod direct;
pub mod etcd;
pub mod haproxy;
pub mod pg;
pub mod pki;
pub mod procs;
pub mod proxy;
pub mod restream;
pub mod sync;
pub mod writer;
