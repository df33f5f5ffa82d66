//! Safe at the fastest timing the agent accepts (ttl 10, loop_wait 2, retry_timeout 3): the
//! leader's etcd connection is blackholed (new connections accepted and never served; open
//! ones left hanging, or closed) at several points of its renewal cycle, and each time its
//! last acknowledged write comes before its successor's first, with timestamps from both sides
//! (direct writers on every member, a new connection every 100 ms).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ha_tests::cluster::{Opts, TestCluster};
use ha_tests::direct::{DirectWriters, overlaps};
use ha_tests::procs::{init_tracing, wait_for};
use tracing::info;

/// Waits for the next burst of traffic from `member` to etcd (its renewal each loop), then
/// `phase` more.
async fn after_renewal(c: &TestCluster, member: &str, phase: Duration) {
    let p = c.proxy_of(member);
    let before = p.last_upload();
    wait_for(
        "the leader's next request to etcd",
        Duration::from_secs(10),
        || async { (p.last_upload() != before).then_some(()) },
    )
    .await;
    tokio::time::sleep(phase).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_leader_stops_writing_before_its_successor_starts_at_every_phase() {
    init_tracing();
    let opts = Opts {
        etcd_proxies: true,
        ..Opts::default()
    };
    let c = TestCluster::start("timing_blackhole", opts).await;
    let ttl = Duration::from_secs(c.settings.ttl);
    let mut leader = c.wait_healthy(Duration::from_secs(90)).await;
    let direct = DirectWriters::start(&c, &leader).await;
    // Points of the 2 s renewal cycle; half the cuts leave the open connections hanging,
    // half close them (as the evidence of the late demotion did).
    let phases = [(0u64, false), (700, true), (1_300, false), (1_900, true)];
    for (phase_ms, close) in phases {
        wait_for(
            "direct writes on the leader",
            Duration::from_secs(15),
            || async {
                direct
                    .last_ack(&leader)
                    .filter(|t| t.elapsed() < Duration::from_millis(500))
                    .map(|_| ())
            },
        )
        .await;
        after_renewal(&c, &leader, Duration::from_millis(phase_ms)).await;
        info!(%leader, phase_ms, close, "--- blackholing the leader's etcd connection");
        let cut_at = Instant::now();
        if close {
            c.proxy_of(&leader).cut_and_close();
        } else {
            c.proxy_of(&leader).cut();
        }
        let new = c
            .wait_for_leader_other_than(&leader, ttl + Duration::from_secs(30))
            .await;
        wait_for(
            "direct writes on the new leader",
            Duration::from_secs(15),
            || async { direct.last_ack(&new).filter(|t| *t > cut_at).map(|_| ()) },
        )
        .await;
        let last_old = direct.last_ack(&leader).unwrap();
        let first_new = direct
            .acks()
            .iter()
            .filter(|a| a.member == new && a.sent > cut_at)
            .map(|a| a.sent)
            .min()
            .unwrap();
        info!(
            phase_ms,
            old_last_ack_ms = last_old.saturating_duration_since(cut_at).as_millis() as u64,
            new_first_send_ms = first_new.duration_since(cut_at).as_millis() as u64,
            "write windows"
        );
        assert!(
            last_old < first_new,
            "phase {phase_ms} ms: the old leader acknowledged a write after its successor was sent one"
        );
        assert!(last_old < cut_at + ttl, "phase {phase_ms} ms");
        let o = overlaps(&direct.acks());
        assert!(
            o.is_empty(),
            "phase {phase_ms} ms: two writable primaries: {o:?}"
        );

        info!("--- heal: the old leader rejoins as a replica");
        c.proxy_of(&leader).heal();
        let others = c.others(&[&new]);
        let os: Vec<&str> = others.iter().map(String::as_str).collect();
        c.wait_streaming(&new, &os, Duration::from_secs(90)).await;
        leader = new;
    }
    direct.stop();
    let missing = direct.missing_on(&c, &leader).await;
    assert!(
        missing.is_empty(),
        "acknowledged direct writes lost (the cut leader kept streaming until it stopped): {missing:?}"
    );
}
