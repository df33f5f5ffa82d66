//! The fence: a separate process that stops this member's PostgreSQL when the leader's
//! authority runs out and the agent did not stop it (because it stalled or died).
//!
//! - `protocol`: the agent <-> fence line protocol;
//! - `server`: the fence process itself (`ha-fence`), std and nix only, no async runtime;
//! - `kill`: stopping an instance through `/proc` and SIGKILL;
//! - `watchdog`: the watchdog device the fence holds;
//! - `client`: the agent's side (adopt a running fence or start one);
//! - `clock`: `CLOCK_BOOTTIME`, which both sides use for deadlines.
//!
//! The *rules* (when the deadline may move, when to disarm, what a missing fence means) are
//! in `ha::fencing` and `ha::timing`; this module only carries them out.

pub mod client;
pub mod clock;
pub mod kill;
pub mod protocol;
pub mod server;
pub mod watchdog;

pub use client::{FenceClient, FenceError, FenceSettings};
