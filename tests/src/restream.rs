//! How long after a promotion every other member streams from the new leader (issue 7: "every
//! replica streams from the new leader within 1 s of its promotion").
//!
//! A probe holds one connection to the member about to be promoted (the switchover candidate,
//! or every replica before a kill -9, since the winner is not known in advance) and polls every
//! 10 ms: the promotion instant is the first poll where `pg_is_in_recovery()` is false, the
//! redundancy instant the first poll where `pg_stat_replication` lists `expect` streaming
//! members.

use std::time::{Duration, Instant};

use crate::cluster::TestCluster;
use tokio::task::JoinHandle;

/// What one probe saw: when its member left recovery, and when `expect` members streamed from
/// it afterwards.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub promoted: Instant,
    pub all_streaming: Option<Instant>,
}

impl Seen {
    /// Promotion -> every other member streaming.
    pub fn restream(&self) -> Option<Duration> {
        self.all_streaming.map(|t| t - self.promoted)
    }
}

const QUERY: &str = "select pg_is_in_recovery(), \
     (select count(*) from pg_stat_replication where state = 'streaming')";

/// Starts a probe on `member`; it ends `timeout` after its start, or once it has seen both
/// instants. `None` when the member was never promoted.
pub async fn probe(
    c: &TestCluster,
    member: &str,
    expect: i64,
    timeout: Duration,
) -> JoinHandle<Option<Seen>> {
    let client = c.node(member).client().await.expect("probe connection");
    tokio::spawn(async move {
        let end = Instant::now() + timeout;
        let mut promoted = None;
        while Instant::now() < end {
            if let Ok(row) = client.query_one(QUERY, &[]).await {
                let (in_recovery, streaming): (bool, i64) = (row.get(0), row.get(1));
                let now = Instant::now();
                if !in_recovery && promoted.is_none() {
                    promoted = Some(now);
                }
                if let Some(p) = promoted
                    && streaming >= expect
                {
                    return Some(Seen {
                        promoted: p,
                        all_streaming: Some(now),
                    });
                }
            } else if promoted.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        promoted.map(|p| Seen {
            promoted: p,
            all_streaming: None,
        })
    })
}

/// Waits for the probe of `winner` (the new leader) and stops the others.
pub async fn of(probes: Vec<(String, JoinHandle<Option<Seen>>)>, winner: &str) -> Option<Seen> {
    let mut seen = None;
    for (name, p) in probes {
        if name == winner {
            seen = p.await.ok().flatten();
        } else {
            p.abort();
        }
    }
    seen
}
