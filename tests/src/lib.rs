//! Integration-test harness for hapg: real etcd, PostgreSQL and HAProxy processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod pg;
