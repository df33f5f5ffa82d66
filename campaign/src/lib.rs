//! `ha-campaign`: a fault campaign for hapg. A 3-member cluster where every member, every
//! etcd member and the clients live on their own network host (a network namespace on a
//! bridge), faults ("nemeses") applied one after another from a seeded schedule, a workload
//! that records every write attempt, and a checker that reports lost acknowledged writes,
//! intervals with two writable primaries, write gaps and heal times.
//!
//! Pure parts (unit-tested, no I/O): [`rng`], [`schedule`], [`analysis`], and the event
//! format in [`events`]. The rest drives real processes as root: [`net`] (namespaces, bridge,
//! firewall rules), [`nsrt`] (tokio runtimes whose sockets live in a namespace), [`procs`],
//! [`cluster`] (etcd, agents, HAProxy), [`observe`] (health), [`workload`] (writers),
//! [`nemesis`] (inject and heal), [`delay`] (the packet delayer for the latency nemesis) and
//! [`campaign`] (the run itself).

pub mod analysis;
pub mod campaign;
pub mod cluster;
pub mod delay;
pub mod events;
pub mod guard;
pub mod nemesis;
pub mod net;
pub mod nsrt;
pub mod observe;
pub mod procs;
pub mod rng;
pub mod schedule;
pub mod workload;
