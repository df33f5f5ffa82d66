//! A model checker for hapg's decision core: several members' real `ha::decide` against a
//! modelled etcd, PostgreSQL, fences and clock (`world.rs`), explored exhaustively to a depth
//! and along random walks (`explore.rs`).

pub mod explore;
pub mod world;
