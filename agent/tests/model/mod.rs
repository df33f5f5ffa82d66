//! A model checker for hapg's decision core: several members' real `ha::decide` against a
//! modelled etcd, PostgreSQL, fences and clock (`world.rs` and the modules it names), explored
//! exhaustively to a depth and along random walks (`explore.rs`).

mod canonical;
mod etcd;
mod execute;
pub mod explore;
mod observe;
mod postgres;
pub mod world;
