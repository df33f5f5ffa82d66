//! The faults ("nemeses") and the seeded schedule that orders them. Pure: no I/O, no clock.
//!
//! A schedule is a list of faults applied one after another; each is aimed at the leader of
//! the moment it starts (unless its kind says otherwise), held, healed, and followed by a wait
//! for a healthy cluster. The order comes from the seed alone, so a run is reproducible from
//! the seed and the command line printed in its report.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nemesis {
    /// kill -9 of the leader's agent, PostgreSQL and fence (every process of its host), held,
    /// then the agent is started again.
    KillMember,
    /// kill -9 of the leader's PostgreSQL (postmaster and backends); the agent lives on.
    KillPostgres,
    /// kill -9 of the leader's agent only (its PostgreSQL and fence live on); the agent is
    /// started again after 1.5 x ttl.
    KillAgent,
    /// SIGSTOP of the leader's agent for 1.5 x ttl, then SIGCONT.
    StopAgent,
    /// The leader cannot reach any etcd member (and they cannot reach it); the other members
    /// and the clients still can.
    PartitionFromEtcd,
    /// The leader cannot reach the other members (replication, REST API); etcd and the
    /// clients still can.
    PartitionFromMembers,
    /// The leader cannot reach etcd, the other members or HAProxy (only the campaign's
    /// observer still sees it, to detect writes it accepts).
    Isolate,
    /// The leader's packets still go out, but nothing from etcd, the members or HAProxy comes
    /// in.
    AsymmetricCut,
    /// Two of the three etcd members are killed (quorum lost), then restarted. Not aimed at
    /// the leader.
    EtcdQuorumLoss,
    /// A switchover from the leader to a random replica (`POST /switchover`).
    Switchover,
    /// Five switchovers in a row, each started as soon as the previous one finished.
    SwitchoverStorm,
    /// 200 ms (with jitter) added to every packet the leader sends.
    Latency,
}

/// Every nemesis, in a fixed order.
pub const ALL: [Nemesis; 12] = [
    Nemesis::KillMember,
    Nemesis::KillPostgres,
    Nemesis::KillAgent,
    Nemesis::StopAgent,
    Nemesis::PartitionFromEtcd,
    Nemesis::PartitionFromMembers,
    Nemesis::Isolate,
    Nemesis::AsymmetricCut,
    Nemesis::EtcdQuorumLoss,
    Nemesis::Switchover,
    Nemesis::SwitchoverStorm,
    Nemesis::Latency,
];

/// Nemeses the campaign has shown failing, left out of the CI schedule until the agent is
/// fixed (see the README's campaign table). `kill-agent` and `stop-agent` pass since the
/// fence (a separate process stops PostgreSQL at the lease deadline, whatever happens to the
/// agent), `switchover-storm` since the switchover fixes (one candidate check, the old
/// leader's WAL end published before it releases). Out, from the 100-fault asynchronous run
/// with seed 8 (1 failing fault of 8 each; the seed-7 run passed all 16):
/// - `partition-from-members`: after the heal, the replicas' streams stayed stalled (TCP
///   retransmission backoff; the walsenders timed out 15 s after the heal), the next fault cut
///   the leader 3 s after the heal, and a replica 588 kB behind (within
///   `maximum_lag_on_failover`) took over: 1032 writes acknowledged through HAProxy lost;
/// - `partition-from-etcd`: the last write the cut-off leader acknowledged, 2 ms before its
///   immediate stop at the demotion point, never reached a replica: 1 write lost.
pub const KNOWN_FAILING: &[Nemesis] = &[Nemesis::PartitionFromMembers, Nemesis::PartitionFromEtcd];

impl Nemesis {
    /// The name used on the command line, in events and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Nemesis::KillMember => "kill-member",
            Nemesis::KillPostgres => "kill-postgres",
            Nemesis::KillAgent => "kill-agent",
            Nemesis::StopAgent => "stop-agent",
            Nemesis::PartitionFromEtcd => "partition-from-etcd",
            Nemesis::PartitionFromMembers => "partition-from-members",
            Nemesis::Isolate => "isolate",
            Nemesis::AsymmetricCut => "asymmetric-cut",
            Nemesis::EtcdQuorumLoss => "etcd-quorum-loss",
            Nemesis::Switchover => "switchover",
            Nemesis::SwitchoverStorm => "switchover-storm",
            Nemesis::Latency => "latency",
        }
    }

    /// Whether the fault is aimed at the current leader.
    pub fn targets_leader(self) -> bool {
        self != Nemesis::EtcdQuorumLoss
    }
}

impl fmt::Display for Nemesis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a nemesis.
#[derive(Debug, thiserror::Error)]
#[error("unknown nemesis {0:?} (known: {known})", known = ALL.map(Nemesis::name).join(", "))]
pub struct UnknownNemesis(pub String);

impl FromStr for Nemesis {
    type Err = UnknownNemesis;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| UnknownNemesis(s.to_string()))
    }
}

/// One planned fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// 1-based position in the schedule.
    pub id: u32,
    /// What to do.
    pub nemesis: Nemesis,
    /// The fault's own random stream (victims, candidates, jitter), derived from the seed and
    /// the id so that it does not depend on how earlier faults went.
    pub seed: u64,
}

/// The fault's own seed: the campaign seed mixed with the fault's id.
fn fault_seed(seed: u64, id: u32) -> u64 {
    let mut r = Rng::new(seed ^ u64::from(id).wrapping_mul(0xA076_1D64_78BD_642F));
    r.next_u64()
}

/// `faults` faults drawn from `allowed` in shuffled rounds: every consecutive round of
/// `allowed.len()` faults holds each nemesis once, so even a short run covers them all evenly.
pub fn random(seed: u64, faults: u32, allowed: &[Nemesis]) -> Vec<Planned> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut bag: Vec<Nemesis> = Vec::new();
    for id in 1..=faults {
        if bag.is_empty() {
            bag = allowed.to_vec();
            rng.shuffle(&mut bag);
        }
        let Some(nemesis) = bag.pop() else { break };
        out.push(Planned {
            id,
            nemesis,
            seed: fault_seed(seed, id),
        });
    }
    out
}

/// The CI schedule: every nemesis not in [`KNOWN_FAILING`], once each, in an order drawn
/// from `seed`.
pub fn ci(seed: u64) -> Vec<Planned> {
    let allowed = ci_nemeses();
    random(seed, allowed.len() as u32, &allowed)
}

/// The nemeses the CI schedule runs.
pub fn ci_nemeses() -> Vec<Nemesis> {
    ALL.into_iter()
        .filter(|n| !KNOWN_FAILING.contains(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in ALL {
            assert_eq!(n.name().parse::<Nemesis>().unwrap(), n);
            assert_eq!(
                serde_json::to_string(&n).unwrap(),
                format!("\"{}\"", n.name())
            );
        }
        assert!("kill-everything".parse::<Nemesis>().is_err());
    }

    #[test]
    fn ci_schedule_runs_each_allowed_nemesis_once_and_none_expected_to_fail() {
        let s = ci(42);
        let mut kinds: Vec<Nemesis> = s.iter().map(|p| p.nemesis).collect();
        kinds.sort();
        let mut want = ci_nemeses();
        want.sort();
        assert_eq!(kinds, want);
        assert_eq!(s.len(), ALL.len() - KNOWN_FAILING.len());
        for p in &s {
            assert!(!KNOWN_FAILING.contains(&p.nemesis));
        }
        assert_eq!(
            s.iter().map(|p| p.id).collect::<Vec<_>>(),
            (1..=s.len() as u32).collect::<Vec<_>>()
        );
    }

    #[test]
    fn schedule_depends_on_the_seed_only() {
        assert_eq!(random(5, 30, &ALL), random(5, 30, &ALL));
        assert_ne!(random(5, 30, &ALL), random(6, 30, &ALL));
    }

    #[test]
    fn rounds_cover_every_nemesis_evenly() {
        let s = random(9, 36, &ALL);
        for n in ALL {
            assert_eq!(s.iter().filter(|p| p.nemesis == n).count(), 3, "{n}");
        }
        let partial = random(9, 5, &[Nemesis::Switchover]);
        assert!(partial.iter().all(|p| p.nemesis == Nemesis::Switchover));
        assert_eq!(partial.len(), 5);
    }
}
