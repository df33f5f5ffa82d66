//! `LocalPostgres`: the real PostgreSQL, driven with pg_ctl and friends and queried with
//! tokio-postgres. (Being written.)
