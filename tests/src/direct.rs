//! Direct writers: on every member, every 100 ms, a *new* connection inserts one row
//! `(member, seq)` into `probe`, and each acknowledgement is recorded with the times it was
//! sent and acknowledged. This is how a test sees, from both sides, which members accepted
//! writes when (a client connected straight to an old primary, bypassing HAProxy), and
//! afterwards whether every acknowledged row survived.
//!
//! The analysis is pure and unit-tested: each member's acknowledgements, in time order, form
//! *epochs* (no gap above [`EPOCH_GAP`]: its writer acknowledges every ~100 ms while it is
//! writable), each spanning from its first write's *send* to its last write's
//! *acknowledgement*. Two epochs of different members that intersect mean both accepted writes
//! at a common instant: two writable primaries (reported with the length of the
//! intersection). Conservative: the send of a first write is counted although the member may
//! have become writable only later.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::cluster::TestCluster;

/// One acknowledged direct write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectAck {
    /// The member that accepted it.
    pub member: String,
    /// Its sequence number on that member's writer.
    pub seq: i64,
    /// When it was sent.
    pub sent: Instant,
    /// When it was acknowledged.
    pub acked: Instant,
}

/// A stretch of time during which two members accepted writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// The member that was already accepting writes.
    pub earlier: String,
    /// The member that started accepting writes meanwhile.
    pub later: String,
    /// The later member's first send.
    pub from: Instant,
    /// How long both were writable (from that send to the earlier one's last acknowledgement).
    pub length: Duration,
}

/// Within one epoch, a member's consecutive acknowledgements are at most this far apart.
pub const EPOCH_GAP: Duration = Duration::from_secs(1);

/// `(member, first send, last acknowledgement)` of every epoch in `acks`.
pub fn epochs(acks: &[DirectAck]) -> Vec<(String, Instant, Instant)> {
    let mut sorted: Vec<&DirectAck> = acks.iter().collect();
    sorted.sort_by(|a, b| a.member.cmp(&b.member).then(a.acked.cmp(&b.acked)));
    let mut out: Vec<(String, Instant, Instant)> = Vec::new();
    for a in sorted {
        match out.last_mut() {
            Some((m, first, last)) if *m == a.member && a.acked <= *last + EPOCH_GAP => {
                *first = (*first).min(a.sent);
                *last = a.acked;
            }
            _ => out.push((a.member.clone(), a.sent, a.acked)),
        }
    }
    out
}

/// Overlaps of writable members in `acks` (any order).
pub fn overlaps(acks: &[DirectAck]) -> Vec<Overlap> {
    let ep = epochs(acks);
    let mut out = Vec::new();
    for (i, a) in ep.iter().enumerate() {
        for b in &ep[i + 1..] {
            if a.0 == b.0 {
                continue;
            }
            let (earlier, later) = if a.1 <= b.1 { (a, b) } else { (b, a) };
            if later.1 < earlier.2 {
                out.push(Overlap {
                    earlier: earlier.0.clone(),
                    later: later.0.clone(),
                    from: later.1,
                    length: earlier.2.min(later.2).duration_since(later.1),
                });
            }
        }
    }
    out.sort_by_key(|o| o.from);
    out
}

/// The writers of one test cluster.
pub struct DirectWriters {
    acks: Arc<Mutex<Vec<DirectAck>>>,
    stop: CancellationToken,
}

impl DirectWriters {
    /// Creates `probe` on `leader` and starts a writer on every member of `c`.
    pub async fn start(c: &TestCluster, leader: &str) -> DirectWriters {
        c.node(leader)
            .client()
            .await
            .expect("connect to the leader")
            .batch_execute(
                "create table if not exists probe (member text, seq bigint, \
                 at timestamptz default now(), primary key (member, seq))",
            )
            .await
            .expect("create table probe");
        let acks = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        for n in &c.nodes {
            let (port, member) = (n.pg_port, n.name.clone());
            let (acks, stop) = (acks.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seq: i64 = 0;
                while !stop.is_cancelled() {
                    seq += 1;
                    let sent = Instant::now();
                    let write = async {
                        let cl = crate::agent::connect(port).await.ok()?;
                        cl.execute(
                            "insert into probe (member, seq) values ($1, $2)",
                            &[&member, &seq],
                        )
                        .await
                        .ok()
                    };
                    if let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), write).await {
                        let acked = Instant::now();
                        acks.lock().expect("acks").push(DirectAck {
                            member: member.clone(),
                            seq,
                            sent,
                            acked,
                        });
                    }
                    let spent = sent.elapsed();
                    tokio::time::sleep(Duration::from_millis(100).saturating_sub(spent)).await;
                }
            });
        }
        DirectWriters { acks, stop }
    }

    /// Every acknowledgement so far.
    pub fn acks(&self) -> Vec<DirectAck> {
        self.acks.lock().expect("acks").clone()
    }

    /// The last acknowledgement of `member`.
    pub fn last_ack(&self, member: &str) -> Option<Instant> {
        self.acks()
            .iter()
            .filter(|a| a.member == member)
            .map(|a| a.acked)
            .max()
    }

    /// Stops writing.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Acknowledged rows missing on `leader` (read from its `probe` table).
    pub async fn missing_on(&self, c: &TestCluster, leader: &str) -> Vec<(String, i64)> {
        let rows = c
            .node(leader)
            .client()
            .await
            .expect("connect to the leader")
            .query("select member, seq from probe", &[])
            .await
            .expect("read probe");
        let present: BTreeSet<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        self.acks()
            .into_iter()
            .map(|a| (a.member, a.seq))
            .filter(|k| !present.contains(k))
            .collect()
    }
}

impl Drop for DirectWriters {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(t0: Instant, member: &str, sent_ms: u64, acked_ms: u64) -> DirectAck {
        DirectAck {
            member: member.into(),
            seq: i64::try_from(sent_ms).unwrap(),
            sent: t0 + Duration::from_millis(sent_ms),
            acked: t0 + Duration::from_millis(acked_ms),
        }
    }

    #[test]
    fn a_clean_handover_and_a_later_return_are_no_overlap() {
        let t0 = Instant::now();
        let acks = vec![
            ack(t0, "n1", 0, 5),
            ack(t0, "n1", 100, 105),
            ack(t0, "n2", 300, 310),
            ack(t0, "n2", 400, 405),
            ack(t0, "n1", 1_900, 1_905),
        ];
        assert_eq!(overlaps(&acks), vec![]);
    }

    #[test]
    fn two_members_writing_at_the_same_time_overlap_for_as_long_as_both_did() {
        let t0 = Instant::now();
        let mut acks = Vec::new();
        // n1 writable 0..1000 ms, n2 from 600 ms on: each acknowledges every 100 ms.
        for i in 0..10 {
            acks.push(ack(t0, "n1", i * 100, i * 100 + 5));
        }
        for i in 6..15 {
            acks.push(ack(t0, "n2", i * 100 + 50, i * 100 + 55));
        }
        let o = overlaps(&acks);
        assert_eq!(o.len(), 1, "{o:?}");
        assert_eq!((o[0].earlier.as_str(), o[0].later.as_str()), ("n1", "n2"));
        assert_eq!(o[0].length, Duration::from_millis(905 - 650));
    }

    #[test]
    fn a_write_sent_before_the_other_was_acknowledged_counts() {
        let t0 = Instant::now();
        // n2's write was sent at 50, n1 acknowledged at 60: both accepted writes around 55.
        let acks = vec![ack(t0, "n1", 0, 60), ack(t0, "n2", 50, 70)];
        let o = overlaps(&acks);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].length, Duration::from_millis(10));
    }
}
