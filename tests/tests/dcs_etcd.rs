//! `EtcdDcs` against a real etcd: the leader race, lease expiry, the watch cache and its
//! request budget, garbage values, a frozen etcd, the failover CAS and a TTL change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use ha_agent::dcs::etcd::EtcdDcs;
use ha_agent::dcs::{
    CasOutcome, Dcs, EtcdSettings, FailoverExpect, FailoverRecord, Keys, MemberRecord, StatusRecord,
};
use ha_tests::etcd::{EtcdProc, scaled, test_log_dir};
use tokio::time::{Instant, sleep, timeout};

const SCOPE: &str = "demo";

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

async fn start_etcd(test: &str) -> EtcdProc {
    init_tracing();
    EtcdProc::start(&test_log_dir(test)).await
}

fn keys() -> Keys {
    Keys::new("/service/", SCOPE)
}

async fn dcs(etcd: &EtcdProc, member: &str, ttl: u64, op_timeout: Duration) -> EtcdDcs {
    let settings = EtcdSettings {
        endpoints: vec![etcd.endpoint()],
        ..Default::default()
    };
    EtcdDcs::connect(&settings, keys(), member, ttl, op_timeout)
        .await
        .unwrap()
}

async fn raw(etcd: &EtcdProc) -> Client {
    Client::connect([etcd.endpoint()], None).await.unwrap()
}

/// `(value, lease)` of `key`, read directly.
async fn raw_get(c: &Client, key: &str) -> Option<(String, i64)> {
    let r = c.kv_client().get(key, None).await.unwrap();
    r.kvs()
        .first()
        .map(|kv| (String::from_utf8_lossy(kv.value()).into_owned(), kv.lease()))
}

fn member(name: &str) -> MemberRecord {
    MemberRecord {
        conn_url: format!("postgres://127.0.0.1:5432/{name}"),
        api_url: "http://127.0.0.1:8008/patroni".into(),
        state: "running".into(),
        role: "replica".into(),
        version: "test".into(),
        xlog_location: Some(1),
        ..Default::default()
    }
}

/// Polls `f` until it holds; panics with `what` after `within` (scaled).
async fn eventually<F, Fut>(what: &str, within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + scaled(within);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        sleep(Duration::from_millis(50)).await;
    }
}

/// Consumes wake-ups that are already pending.
async fn drain_changed(d: &EtcdDcs) {
    while timeout(Duration::from_millis(200), d.changed())
        .await
        .is_ok()
    {}
}

#[tokio::test(flavor = "multi_thread")]
async fn two_members_racing_for_the_leader_key_yield_exactly_one_winner() {
    let etcd = start_etcd("two_members_racing_for_the_leader_key").await;
    let (a, b) = (
        dcs(&etcd, "pg1", 10, Duration::from_secs(3)).await,
        dcs(&etcd, "pg2", 10, Duration::from_secs(3)).await,
    );
    a.publish_member(&member("pg1")).await.unwrap();
    b.publish_member(&member("pg2")).await.unwrap();

    tracing::info!("--- both race for the leader key");
    let (ra, rb) = tokio::join!(a.acquire_leader(), b.acquire_leader());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_ne!(ra, rb, "exactly one must win: {ra:?} {rb:?}");
    let (winner, winner_name, loser) = if ra == CasOutcome::Applied {
        (&a, "pg1", &b)
    } else {
        (&b, "pg2", &a)
    };
    assert_eq!(loser.acquire_leader().await.unwrap(), CasOutcome::Lost);

    tracing::info!("--- the cluster and the raw keys show Patroni's layout");
    let c = loser.cluster().await.unwrap();
    assert_eq!(c.leader_name(), Some(winner_name));
    assert_eq!(c.leader.as_ref().unwrap().lease, winner.lease_id());
    assert_eq!(
        c.members
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["pg1", "pg2"]
    );
    let rc = raw(&etcd).await;
    let (leader, lease) = raw_get(&rc, "/service/demo/leader").await.unwrap();
    assert_eq!(leader, winner_name, "leader is plain text");
    assert_eq!(lease, winner.lease_id());
    let (json, lease) = raw_get(&rc, "/service/demo/members/pg1").await.unwrap();
    assert_eq!(lease, a.lease_id(), "member key is under its owner's lease");
    let parsed: MemberRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, member("pg1"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["conn_url"], "postgres://127.0.0.1:5432/pg1");
    assert_eq!(v["role"], "replica");

    tracing::info!("--- the winner renews and releases; the loser cannot release it");
    assert_eq!(loser.release_leader().await.unwrap(), CasOutcome::Lost);
    assert_eq!(loser.renew_leader().await.unwrap(), CasOutcome::Lost);
    assert_eq!(winner.renew_leader().await.unwrap(), CasOutcome::Applied);
    assert_eq!(winner.release_leader().await.unwrap(), CasOutcome::Applied);
    assert!(raw_get(&rc, "/service/demo/leader").await.is_none());

    tracing::info!("--- a key that vanished under a live lease is created again by its holder");
    assert_eq!(winner.renew_leader().await.unwrap(), CasOutcome::Applied);
    let (leader, lease) = raw_get(&rc, "/service/demo/leader").await.unwrap();
    assert_eq!(leader, winner_name);
    assert_eq!(lease, winner.lease_id());
    assert_eq!(
        loser.renew_leader().await.unwrap(),
        CasOutcome::Lost,
        "a held key is never taken by renew"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn renewed_lease_outlives_ttl_and_its_keys_vanish_once_renewals_stop() {
    let etcd = start_etcd("renewed_lease_outlives_ttl").await;
    let ttl = 3;
    let a = dcs(&etcd, "pg1", ttl, Duration::from_secs(2)).await;
    let rc = raw(&etcd).await;
    a.publish_member(&member("pg1")).await.unwrap();
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);
    let first = a.lease_id();

    tracing::info!("--- renewing every 500 ms keeps the keys for 2 x ttl");
    let until = Instant::now() + Duration::from_secs(2 * ttl);
    while Instant::now() < until {
        assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Applied);
        sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Applied);
    let last_ack = Instant::now();
    assert!(raw_get(&rc, "/service/demo/leader").await.is_some());

    tracing::info!("--- without renewals both keys vanish after about ttl");
    eventually(
        "leader and member keys gone",
        Duration::from_secs(ttl + 5),
        || {
            let rc = rc.clone();
            async move {
                raw_get(&rc, "/service/demo/leader").await.is_none()
                    && raw_get(&rc, "/service/demo/members/pg1").await.is_none()
            }
        },
    )
    .await;
    let gone_after = last_ack.elapsed();
    assert!(
        gone_after >= Duration::from_millis(ttl * 1000 - 300),
        "keys vanished too early: {gone_after:?}"
    );

    tracing::info!(
        ?gone_after,
        "--- keepalive reports the loss, then a new lease works"
    );
    assert_eq!(a.keepalive().await.unwrap(), CasOutcome::Lost);
    assert_eq!(a.lease_id(), 0);
    assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Lost);
    assert_ne!(a.lease_id(), first);
    a.publish_member(&member("pg1")).await.unwrap();
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);
    let (_, lease) = raw_get(&rc, "/service/demo/members/pg1").await.unwrap();
    assert_eq!(lease, a.lease_id());
    assert_eq!(a.keepalive().await.unwrap(), CasOutcome::Applied);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_wakes_changed_on_leader_deletion_and_cluster_reads_cost_no_range() {
    let etcd = start_etcd("watch_wakes_changed_on_leader_deletion").await;
    let a = dcs(&etcd, "pg1", 10, Duration::from_secs(2)).await;
    let b = dcs(&etcd, "pg2", 10, Duration::from_secs(2)).await;
    a.start_watch();
    eventually("watch live", Duration::from_secs(10), || async {
        a.watch_is_live()
    })
    .await;
    assert_eq!(b.acquire_leader().await.unwrap(), CasOutcome::Applied);
    eventually(
        "cache shows pg2 leading",
        Duration::from_secs(5),
        || async { a.cluster().await.unwrap().leader_name() == Some("pg2") },
    )
    .await;
    drain_changed(&a).await;

    tracing::info!("--- an idle cluster() loop makes no Range call");
    let ranges = etcd.grpc_msgs_received(Some("Range")).await;
    for _ in 0..50 {
        assert_eq!(a.cluster().await.unwrap().leader_name(), Some("pg2"));
    }
    assert_eq!(etcd.grpc_msgs_received(Some("Range")).await, ranges);

    tracing::info!("--- deleting the leader wakes changed() at once");
    let waiter = async {
        a.changed().await;
        Instant::now()
    };
    let release = async {
        sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        assert_eq!(b.release_leader().await.unwrap(), CasOutcome::Applied);
        t
    };
    let (woke, released) = tokio::join!(timeout(Duration::from_secs(5), waiter), release);
    let latency = woke
        .expect("changed() did not resolve")
        .duration_since(released);
    tracing::info!(?latency, "changed() latency");
    assert!(latency < scaled(Duration::from_millis(300)), "{latency:?}");
    assert_eq!(a.cluster().await.unwrap().leader, None);
    assert_eq!(etcd.grpc_msgs_received(Some("Range")).await, ranges);

    tracing::info!("--- a member that appears is a relevant change, its updates are not");
    b.publish_member(&member("pg2")).await.unwrap();
    eventually(
        "cache shows pg2's record",
        Duration::from_secs(5),
        || async { a.cluster().await.unwrap().member("pg2").is_some() },
    )
    .await;
    assert!(
        timeout(Duration::from_secs(2), a.changed()).await.is_ok(),
        "a new member wakes the loop (the leader creates its slot)"
    );
    let mut updated = member("pg2");
    updated.state = "stopped".into();
    b.publish_member(&updated).await.unwrap();
    eventually(
        "cache shows pg2's updated record",
        Duration::from_secs(5),
        || async {
            a.cluster()
                .await
                .unwrap()
                .member("pg2")
                .is_some_and(|m| m.record.state == "stopped")
        },
    )
    .await;
    assert!(
        timeout(Duration::from_millis(300), a.changed())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn member_key_with_garbage_json_is_skipped_and_the_rest_still_reads() {
    let etcd = start_etcd("member_key_with_garbage_json").await;
    let a = dcs(&etcd, "pg1", 10, Duration::from_secs(2)).await;
    let rc = raw(&etcd).await;
    rc.kv_client()
        .put("/service/demo/members/bad", "{not json", None)
        .await
        .unwrap();
    rc.kv_client()
        .put("/service/demo/history", "[[1,", None)
        .await
        .unwrap();
    a.publish_member(&member("pg1")).await.unwrap();
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);

    let check = |c: ha_agent::dcs::Cluster| {
        assert_eq!(c.leader_name(), Some("pg1"));
        assert_eq!(
            c.members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            ["pg1"]
        );
        assert_eq!(c.history, None);
    };
    tracing::info!("--- direct read");
    check(a.cluster().await.unwrap());
    tracing::info!("--- from the watch cache");
    let w = dcs(&etcd, "pg2", 10, Duration::from_secs(2)).await;
    w.start_watch();
    eventually("watch live", Duration::from_secs(10), || async {
        w.watch_is_live()
    })
    .await;
    check(w.cluster().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn frozen_etcd_makes_calls_fail_in_bounded_time_and_they_recover_after_resume() {
    let etcd = start_etcd("frozen_etcd_makes_calls_fail").await;
    let op_timeout = Duration::from_secs(2);
    // A long TTL: the lease must outlive the freeze (etcd expires it once thawed otherwise).
    let a = dcs(&etcd, "pg1", 60, op_timeout).await;
    a.start_watch();
    a.publish_member(&member("pg1")).await.unwrap();
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);
    eventually("watch live", Duration::from_secs(10), || async {
        a.watch_is_live()
    })
    .await;
    let lease = a.lease_id();

    tracing::info!("--- SIGSTOP etcd; only cluster() is called: HTTP/2 pings must notice");
    etcd.pause();
    let bound = op_timeout + Duration::from_secs(5);
    let frozen = Instant::now();
    loop {
        let t = Instant::now();
        let r = a.cluster().await;
        assert!(t.elapsed() < bound, "one cluster() took {:?}", t.elapsed());
        if r.is_err() {
            break;
        }
        sleep(Duration::from_millis(200)).await;
    }
    // Pings every 5 s, 2 s to answer, then one direct read bounded by op_timeout.
    let noticed = frozen.elapsed();
    tracing::info!(?noticed, "cluster() failed after");
    assert!(
        noticed < op_timeout + Duration::from_secs(10),
        "{noticed:?}"
    );
    assert!(!a.watch_is_live());

    tracing::info!("--- keepalive and renew fail within the bound too");
    let t = Instant::now();
    let r = a.keepalive().await;
    assert!(r.is_err(), "keepalive on a frozen etcd: {r:?}");
    assert!(t.elapsed() < bound, "keepalive took {:?}", t.elapsed());
    let t = Instant::now();
    assert!(a.renew_leader().await.is_err());
    assert!(t.elapsed() < bound, "renew_leader took {:?}", t.elapsed());
    let t = Instant::now();
    assert!(a.cluster().await.is_err());
    assert!(t.elapsed() < bound, "cluster() took {:?}", t.elapsed());

    tracing::info!("--- SIGCONT: the same EtcdDcs works again");
    etcd.resume();
    eventually("keepalive works", Duration::from_secs(15), || async {
        a.keepalive().await.is_ok()
    })
    .await;
    assert_eq!(a.lease_id(), lease, "the lease survived the short freeze");
    assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Applied);
    assert_eq!(a.cluster().await.unwrap().leader_name(), Some("pg1"));
    eventually("watch live again", Duration::from_secs(15), || async {
        a.watch_is_live()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_request_stops_answers_from_the_watch_cache_at_once() {
    let etcd = start_etcd("failed_request_stops_cache_answers").await;
    let op_timeout = Duration::from_secs(2);
    let a = dcs(&etcd, "pg1", 60, op_timeout).await;
    a.start_watch();
    a.publish_member(&member("pg1")).await.unwrap();
    eventually("watch live", Duration::from_secs(10), || async {
        a.watch_is_live()
    })
    .await;

    tracing::info!("--- SIGSTOP etcd: the keepalive times out before any ping would");
    etcd.pause();
    let t = Instant::now();
    assert!(a.keepalive().await.is_err());
    assert!(
        !a.watch_is_live(),
        "a failed request must invalidate the cache"
    );
    let r = a.cluster().await;
    assert!(r.is_err(), "cluster() answered from a stale cache: {r:?}");
    assert!(
        t.elapsed() < op_timeout * 2 + Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );

    tracing::info!("--- SIGCONT: the watch is re-established");
    etcd.resume();
    eventually("watch live again", Duration::from_secs(15), || async {
        a.watch_is_live()
    })
    .await;
    assert!(a.cluster().await.unwrap().member("pg1").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_and_restarted_etcd_is_picked_up_by_the_same_client() {
    let mut etcd = start_etcd("killed_and_restarted_etcd").await;
    let a = dcs(&etcd, "pg1", 20, Duration::from_secs(2)).await;
    a.start_watch();
    a.publish_member(&member("pg1")).await.unwrap();
    eventually("watch live", Duration::from_secs(10), || async {
        a.watch_is_live()
    })
    .await;
    drain_changed(&a).await;

    tracing::info!("--- kill etcd: the watch breaks and wakes changed()");
    etcd.kill().await;
    timeout(scaled(Duration::from_secs(10)), a.changed())
        .await
        .expect("watch break must wake changed()");
    assert!(a.cluster().await.is_err());
    assert!(a.keepalive().await.is_err());

    tracing::info!("--- restart etcd on the same ports and data");
    etcd.restart().await;
    eventually("keepalive works", Duration::from_secs(15), || async {
        a.keepalive().await.is_ok()
    })
    .await;
    eventually("watch live again", Duration::from_secs(15), || async {
        a.watch_is_live()
    })
    .await;
    assert!(a.cluster().await.unwrap().member("pg1").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_cas_respects_pending_requests_and_revisions() {
    let etcd = start_etcd("failover_cas").await;
    let a = dcs(&etcd, "pg1", 10, Duration::from_secs(2)).await;
    let rc = raw(&etcd).await;
    let req = FailoverRecord {
        leader: Some("pg1".into()),
        member: Some("pg2".into()),
        scheduled_at: None,
    };

    tracing::info!("--- NoPending on an absent key");
    let np = FailoverExpect::NoPending;
    assert_eq!(
        a.write_failover(&req, np).await.unwrap(),
        CasOutcome::Applied
    );
    let f = a.cluster().await.unwrap().failover.unwrap();
    assert_eq!(f.value, req);
    let (json, _) = raw_get(&rc, "/service/demo/failover").await.unwrap();
    assert_eq!(json, r#"{"leader":"pg1","member":"pg2"}"#);

    tracing::info!("--- NoPending while a request is pending");
    assert_eq!(a.write_failover(&req, np).await.unwrap(), CasOutcome::Lost);

    tracing::info!("--- clear with a stale revision, then the right one");
    assert_eq!(
        a.clear_failover(f.revision - 1).await.unwrap(),
        CasOutcome::Lost
    );
    assert_eq!(
        a.clear_failover(f.revision).await.unwrap(),
        CasOutcome::Applied
    );
    assert!(raw_get(&rc, "/service/demo/failover").await.is_none());

    tracing::info!("--- NoPending on an empty request left by Patroni");
    for empty in ["{}", ""] {
        rc.kv_client()
            .put("/service/demo/failover", empty, None)
            .await
            .unwrap();
        assert_eq!(a.cluster().await.unwrap().failover, None);
        assert_eq!(
            a.write_failover(&req, np).await.unwrap(),
            CasOutcome::Applied
        );
        let f = a.cluster().await.unwrap().failover.unwrap();
        assert_eq!(
            a.clear_failover(f.revision).await.unwrap(),
            CasOutcome::Applied
        );
    }

    tracing::info!("--- Revision(r) replaces only what was read");
    assert_eq!(
        a.write_failover(&req, np).await.unwrap(),
        CasOutcome::Applied
    );
    let rev = a.cluster().await.unwrap().failover.unwrap().revision;
    let other = FailoverRecord {
        member: Some("pg3".into()),
        ..req.clone()
    };
    let stale = FailoverExpect::Revision(rev - 1);
    assert_eq!(
        a.write_failover(&other, stale).await.unwrap(),
        CasOutcome::Lost
    );
    let fresh = FailoverExpect::Revision(rev);
    assert_eq!(
        a.write_failover(&other, fresh).await.unwrap(),
        CasOutcome::Applied
    );
    assert_eq!(a.cluster().await.unwrap().failover.unwrap().value, other);
}

#[tokio::test(flavor = "multi_thread")]
async fn initialize_and_config_are_create_only_and_compare_and_set() {
    let etcd = start_etcd("initialize_and_config_cas").await;
    let a = dcs(&etcd, "pg1", 10, Duration::from_secs(2)).await;
    let b = dcs(&etcd, "pg2", 10, Duration::from_secs(2)).await;

    tracing::info!("--- initialize race, cancel, write");
    assert_eq!(a.claim_initialize().await.unwrap(), CasOutcome::Applied);
    assert_eq!(b.claim_initialize().await.unwrap(), CasOutcome::Lost);
    assert_eq!(a.cancel_initialize().await.unwrap(), CasOutcome::Applied);
    assert_eq!(b.claim_initialize().await.unwrap(), CasOutcome::Applied);
    b.write_initialize("7300000000000000001").await.unwrap();
    assert_eq!(a.cancel_initialize().await.unwrap(), CasOutcome::Lost);
    let c = a.cluster().await.unwrap();
    assert_eq!(c.initialize.as_deref(), Some("7300000000000000001"));

    tracing::info!("--- config create-only, then CAS on its revision");
    let cfg = serde_json::json!({"ttl": 30, "loop_wait": 10});
    assert_eq!(a.create_config(&cfg).await.unwrap(), CasOutcome::Applied);
    assert_eq!(b.create_config(&cfg).await.unwrap(), CasOutcome::Lost);
    let rev = a.cluster().await.unwrap().config.unwrap().revision;
    let cfg2 = serde_json::json!({"ttl": 20, "loop_wait": 5});
    assert_eq!(
        b.write_config(&cfg2, rev).await.unwrap(),
        CasOutcome::Applied
    );
    assert_eq!(a.write_config(&cfg, rev).await.unwrap(), CasOutcome::Lost);
    assert_eq!(a.cluster().await.unwrap().config.unwrap().value, cfg2);

    tracing::info!("--- status and history, revoke, delete");
    let status = StatusRecord {
        optime: 42,
        ..Default::default()
    };
    a.write_status(&status).await.unwrap();
    assert_eq!(a.cluster().await.unwrap().status, Some(status));
    a.publish_member(&member("pg1")).await.unwrap();
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);
    a.revoke_lease().await.unwrap();
    let c = b.cluster().await.unwrap();
    assert!(
        c.leader.is_none() && c.member("pg1").is_none(),
        "revoke removes at once"
    );
    a.delete_cluster().await.unwrap();
    assert_eq!(
        b.cluster().await.unwrap(),
        ha_agent::dcs::Cluster::default()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_change_moves_the_leader_key_to_a_new_lease_without_it_disappearing() {
    let etcd = start_etcd("ttl_change_moves_the_leader_key").await;
    let a = dcs(&etcd, "pg1", 10, Duration::from_secs(2)).await;
    let rc = raw(&etcd).await;
    a.publish_member(&member("pg1")).await.unwrap();
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);
    let old = a.lease_id();
    let rev = rc
        .kv_client()
        .get("/service/demo/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let mut ws = rc
        .watch_client()
        .watch(
            "/service/demo/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(rev + 1),
            ),
        )
        .await
        .unwrap();

    tracing::info!("--- set_ttl(4): the next keepalive moves the keys");
    a.set_ttl(4);
    assert_eq!(a.keepalive().await.unwrap(), CasOutcome::Applied);
    let new = a.lease_id();
    assert_ne!(new, old);
    assert_eq!(
        raw_get(&rc, "/service/demo/leader").await,
        Some(("pg1".into(), new))
    );
    let (json, lease) = raw_get(&rc, "/service/demo/members/pg1").await.unwrap();
    assert_eq!(lease, new);
    assert_eq!(
        serde_json::from_str::<MemberRecord>(&json).unwrap(),
        member("pg1")
    );
    let ttl = rc.lease_client().time_to_live(new, None).await.unwrap();
    assert!(
        (1..=4).contains(&ttl.granted_ttl()),
        "{}",
        ttl.granted_ttl()
    );
    let old_ttl = rc.lease_client().time_to_live(old, None).await.unwrap();
    assert_eq!(old_ttl.ttl(), -1, "old lease revoked");

    tracing::info!("--- no delete event was seen for the moved keys");
    assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Applied);
    let mut puts = 0;
    while let Ok(Some(resp)) = timeout(Duration::from_millis(500), ws.message())
        .await
        .map(Result::unwrap)
    {
        for ev in resp.events() {
            let key = ev.kv().unwrap().key_str().unwrap().to_string();
            assert_ne!(ev.event_type(), EventType::Delete, "{key} was deleted");
            puts += 1;
        }
    }
    assert!(puts >= 2, "expected the two moves, saw {puts} events");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_watching_leader_costs_one_keepalive_per_loop_and_no_range() {
    let etcd = start_etcd("idle_watching_leader_budget").await;
    let a = dcs(&etcd, "pg1", 10, Duration::from_secs(2)).await;
    a.start_watch();
    let record = member("pg1");
    let status = StatusRecord {
        optime: 7,
        ..Default::default()
    };
    a.publish_member(&record).await.unwrap();
    a.write_status(&status).await.unwrap();
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);
    assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Applied);
    eventually(
        "cache shows our leader key",
        Duration::from_secs(10),
        || async { a.watch_is_live() && a.cluster().await.unwrap().leader_name() == Some("pg1") },
    )
    .await;

    tracing::info!("--- 10 idle leader loops, one per second");
    let total = etcd.grpc_msgs_received(None).await;
    let ranges = etcd.grpc_msgs_received(Some("Range")).await;
    let keepalives = etcd.grpc_msgs_received(Some("LeaseKeepAlive")).await;
    for _ in 0..10 {
        let c = a.cluster().await.unwrap();
        assert_eq!(c.leader_name(), Some("pg1"));
        assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Applied);
        a.publish_member(&record).await.unwrap();
        a.write_status(&status).await.unwrap();
        // Pacing of the simulated loop, not a wait for a condition.
        sleep(Duration::from_secs(1)).await;
    }
    let total = etcd.grpc_msgs_received(None).await - total;
    let ranges = etcd.grpc_msgs_received(Some("Range")).await - ranges;
    let keepalives = etcd.grpc_msgs_received(Some("LeaseKeepAlive")).await - keepalives;
    tracing::info!(total, ranges, keepalives, "messages etcd received");
    assert_eq!(ranges, 0);
    assert_eq!(keepalives, 10);
    assert!(total <= 11, "{total} messages for 10 idle loops");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connection_survives_http2_pings_at_the_default_ten_second_loop() {
    let etcd = start_etcd("idle_connection_survives_http2_pings").await;
    let a = dcs(&etcd, "pg1", 30, Duration::from_secs(2)).await;
    a.start_watch();
    a.publish_member(&member("pg1")).await.unwrap();
    assert_eq!(a.keepalive().await.unwrap(), CasOutcome::Applied);
    eventually("watch live", Duration::from_secs(10), || async {
        a.watch_is_live()
    })
    .await;

    tracing::info!("--- 4 loops 10 s apart: pings every 5 s in between, no traffic");
    let watches = etcd.grpc_msgs_received(Some("Watch")).await;
    let ranges = etcd.grpc_msgs_received(Some("Range")).await;
    for _ in 0..4 {
        // Pacing of the simulated loop (loop_wait 10 s), not a wait for a condition.
        sleep(Duration::from_secs(10)).await;
        assert!(a.watch_is_live(), "the watch broke on an idle connection");
        a.cluster().await.unwrap();
        assert_eq!(a.keepalive().await.unwrap(), CasOutcome::Applied);
    }
    // etcd (default --grpc-keepalive-min-time 5 s) answers faster pings with GOAWAY
    // too_many_pings, which would have broken and re-created the watch.
    assert_eq!(etcd.grpc_msgs_received(Some("Watch")).await, watches);
    assert_eq!(etcd.grpc_msgs_received(Some("Range")).await, ranges);
}

#[tokio::test(flavor = "multi_thread")]
async fn password_auth_connects_lazily_and_survives_an_etcd_restart() {
    let mut etcd = start_etcd("password_auth_connects_lazily").await;
    let rc = raw(&etcd).await;
    let mut auth = rc.auth_client();
    let _ = auth.role_add("root").await;
    auth.user_add("root", "rootpw", None).await.unwrap();
    auth.user_grant_role("root", "root").await.unwrap();
    auth.auth_enable().await.unwrap();
    let endpoint = etcd.endpoint();
    let with_password = |password: &str| EtcdSettings {
        endpoints: vec![endpoint.clone()],
        username: Some("root".into()),
        password: Some(password.into()),
        ..Default::default()
    };
    let op_timeout = Duration::from_secs(2);

    tracing::info!("--- connect while etcd is down: no error until a call is made");
    etcd.kill().await;
    let a = EtcdDcs::connect(&with_password("rootpw"), keys(), "pg1", 20, op_timeout)
        .await
        .unwrap();
    assert!(a.cluster().await.is_err());
    etcd.restart().await;
    eventually(
        "authenticated read works",
        Duration::from_secs(15),
        || async { a.cluster().await.is_ok() },
    )
    .await;
    a.publish_member(&member("pg1")).await.unwrap();
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);

    tracing::info!("--- wrong or missing credentials are errors, not panics");
    let wrong = EtcdDcs::connect(&with_password("nope"), keys(), "pg2", 20, op_timeout)
        .await
        .unwrap();
    let err = wrong.cluster().await.unwrap_err();
    tracing::info!(%err, "wrong password");
    assert!(
        dcs(&etcd, "pg3", 20, op_timeout)
            .await
            .cluster()
            .await
            .is_err()
    );

    tracing::info!("--- a restart forgets the token; the client authenticates again");
    a.start_watch();
    etcd.restart().await;
    eventually(
        "renew works after the restart",
        Duration::from_secs(15),
        || async { matches!(a.renew_leader().await, Ok(CasOutcome::Applied)) },
    )
    .await;
    eventually("watch live", Duration::from_secs(15), || async {
        a.watch_is_live()
    })
    .await;
    assert_eq!(a.cluster().await.unwrap().leader_name(), Some("pg1"));
}
