//! The fake's semantics, which shell tests rely on as if they were etcd's.

use std::time::Duration;

use tokio::time::timeout;

use super::*;
use crate::dcs::{Dcs, FailoverExpect, FailoverRecord, MemberRecord, StatusRecord};

fn keys() -> Keys {
    Keys::new("/service/", "demo")
}

fn pair(ttl: u64) -> (MemoryStore, MemoryDcs, MemoryDcs) {
    let store = MemoryStore::new();
    let a = MemoryDcs::new(store.clone(), keys(), "pg1", ttl);
    let b = MemoryDcs::new(store.clone(), keys(), "pg2", ttl);
    (store, a, b)
}

fn member(state: &str) -> MemberRecord {
    MemberRecord {
        conn_url: "postgres://127.0.0.1:5432/postgres".into(),
        api_url: "http://127.0.0.1:8008/patroni".into(),
        state: state.into(),
        role: "replica".into(),
        ..Default::default()
    }
}

async fn woke(d: &MemoryDcs) -> bool {
    timeout(Duration::from_millis(50), d.changed())
        .await
        .is_ok()
}

#[tokio::test]
async fn only_one_member_acquires_and_only_the_holder_renews_or_releases() {
    let (store, a, b) = pair(10);
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);
    assert_eq!(b.acquire_leader().await.unwrap(), CasOutcome::Lost);
    let c = b.cluster().await.unwrap();
    assert_eq!(c.leader_name(), Some("pg1"));
    assert_eq!(c.leader.unwrap().lease, a.lease_id());
    assert_eq!(store.get("/service/demo/leader").as_deref(), Some("pg1"));
    assert_eq!(b.renew_leader().await.unwrap(), CasOutcome::Lost);
    assert_eq!(b.release_leader().await.unwrap(), CasOutcome::Lost);
    assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Applied);
    assert_eq!(a.release_leader().await.unwrap(), CasOutcome::Applied);
    assert_eq!(store.get("/service/demo/leader"), None);
    // A key gone while the lease lives (deleted by hand, keys wiped) is re-created by the
    // holder's renewal, as Patroni does; one someone else took meanwhile is not.
    assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Applied);
    assert_eq!(store.get("/service/demo/leader").as_deref(), Some("pg1"));
    assert_eq!(a.release_leader().await.unwrap(), CasOutcome::Applied);
    assert_eq!(b.acquire_leader().await.unwrap(), CasOutcome::Applied);
    assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Lost);
}

#[tokio::test]
async fn expired_lease_takes_its_keys_and_is_reported_once_by_keepalive() {
    let (store, a, b) = pair(10);
    a.publish_member(&member("running")).await.unwrap();
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);
    assert!(woke(&b).await, "the new leader wakes the others");
    let old = a.lease_id();

    store.expire_lease_of("pg1");
    assert!(woke(&b).await, "the vanished leader wakes the others");
    let c = b.cluster().await.unwrap();
    assert!(c.leader.is_none() && c.members.is_empty(), "{c:?}");
    assert_eq!(a.keepalive().await.unwrap(), CasOutcome::Lost);
    assert_eq!(a.keepalive().await.unwrap(), CasOutcome::Applied);
    assert_ne!(a.lease_id(), old);
    // The key went with the expired lease; b took it meanwhile, so a cannot have it back.
    assert_eq!(b.acquire_leader().await.unwrap(), CasOutcome::Applied);
    assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Lost);
}

#[tokio::test]
async fn write_under_a_vanished_lease_replaces_it_and_keepalive_tells() {
    let (store, a, _b) = pair(10);
    a.publish_member(&member("running")).await.unwrap();
    store.expire_lease_of("pg1");
    a.publish_member(&member("running")).await.unwrap();
    let lease = store.lease_of("/service/demo/members/pg1").unwrap();
    assert_eq!(lease, a.lease_id());
    assert_ne!(lease, 0);
    assert_eq!(
        a.keepalive().await.unwrap(),
        CasOutcome::Lost,
        "reported once"
    );
    assert_eq!(a.keepalive().await.unwrap(), CasOutcome::Applied);
    assert!(store.get("/service/demo/members/pg1").is_some());
}

#[tokio::test]
async fn lease_expires_after_its_ttl_without_keepalives() {
    let (store, a, b) = pair(1);
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);
    let _ = woke(&b).await;
    // changed() itself notices the expiry: nobody touches the store meanwhile.
    timeout(Duration::from_secs(3), b.changed())
        .await
        .expect("lease expiry must wake changed()");
    assert_eq!(store.get("/service/demo/leader"), None);
    assert_eq!(a.keepalive().await.unwrap(), CasOutcome::Lost);
}

#[tokio::test]
async fn unreachable_member_fails_every_call_and_recovers() {
    let (store, a, b) = pair(10);
    a.set_unreachable(true);
    assert!(
        woke(&a).await,
        "a cut-off wakes changed() like a broken watch"
    );
    assert!(matches!(
        a.cluster().await,
        Err(DcsError::Unavailable { op: "range", .. })
    ));
    assert!(a.keepalive().await.is_err());
    assert!(a.acquire_leader().await.is_err());
    assert!(a.publish_member(&member("running")).await.is_err());
    assert!(b.cluster().await.is_ok(), "only pg1 is cut off");
    a.set_unreachable(false);
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);

    store.set_unreachable(true);
    assert!(b.cluster().await.is_err());
    assert!(a.renew_leader().await.is_err());
    store.set_unreachable(false);
    assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Applied);
}

#[tokio::test]
async fn changed_keeps_a_wake_up_that_arrives_between_calls_and_ignores_member_updates() {
    let (_store, a, b) = pair(10);
    assert!(!woke(&a).await, "nothing happened yet");
    b.publish_member(&member("running")).await.unwrap();
    assert!(woke(&a).await, "a member that appears is relevant");
    b.publish_member(&member("stopped")).await.unwrap();
    assert!(!woke(&a).await, "updates of a member record are not");
    assert_eq!(b.acquire_leader().await.unwrap(), CasOutcome::Applied);
    // Nobody was waiting when the leader changed; the next call still sees it, once.
    assert!(woke(&a).await);
    assert!(!woke(&a).await);
    let waiter = tokio::spawn(async move {
        a.changed().await;
        a
    });
    tokio::task::yield_now().await;
    assert_eq!(b.release_leader().await.unwrap(), CasOutcome::Applied);
    timeout(Duration::from_secs(1), waiter)
        .await
        .expect("a waiting changed() wakes")
        .unwrap();
}

#[tokio::test]
async fn failover_cas_follows_pending_requests_and_revisions() {
    let (store, a, _b) = pair(10);
    let req = FailoverRecord {
        leader: Some("pg1".into()),
        member: Some("pg2".into()),
        scheduled_at: None,
    };
    let np = FailoverExpect::NoPending;
    assert_eq!(
        a.write_failover(&req, np).await.unwrap(),
        CasOutcome::Applied
    );
    assert_eq!(a.write_failover(&req, np).await.unwrap(), CasOutcome::Lost);
    let rev = a.cluster().await.unwrap().failover.unwrap().revision;
    assert_eq!(a.clear_failover(rev - 1).await.unwrap(), CasOutcome::Lost);
    assert_eq!(a.clear_failover(rev).await.unwrap(), CasOutcome::Applied);
    store.put("/service/demo/failover", "{}");
    assert_eq!(
        a.write_failover(&req, np).await.unwrap(),
        CasOutcome::Applied
    );
    let rev = a.cluster().await.unwrap().failover.unwrap().revision;
    let stale = FailoverExpect::Revision(rev - 1);
    assert_eq!(
        a.write_failover(&req, stale).await.unwrap(),
        CasOutcome::Lost
    );
    let fresh = FailoverExpect::Revision(rev);
    assert_eq!(
        a.write_failover(&req, fresh).await.unwrap(),
        CasOutcome::Applied
    );
}

#[tokio::test]
async fn initialize_and_config_are_create_only_and_compare_and_set() {
    let (_store, a, b) = pair(10);
    assert_eq!(a.claim_initialize().await.unwrap(), CasOutcome::Applied);
    assert_eq!(b.claim_initialize().await.unwrap(), CasOutcome::Lost);
    assert_eq!(a.cancel_initialize().await.unwrap(), CasOutcome::Applied);
    assert_eq!(b.claim_initialize().await.unwrap(), CasOutcome::Applied);
    b.write_initialize("42").await.unwrap();
    assert_eq!(a.cancel_initialize().await.unwrap(), CasOutcome::Lost);
    assert_eq!(a.cluster().await.unwrap().initialize.as_deref(), Some("42"));

    let cfg = serde_json::json!({"ttl": 30});
    assert_eq!(a.create_config(&cfg).await.unwrap(), CasOutcome::Applied);
    assert_eq!(b.create_config(&cfg).await.unwrap(), CasOutcome::Lost);
    let rev = a.cluster().await.unwrap().config.unwrap().revision;
    let cfg2 = serde_json::json!({"ttl": 20});
    assert_eq!(
        b.write_config(&cfg2, rev).await.unwrap(),
        CasOutcome::Applied
    );
    assert_eq!(a.write_config(&cfg, rev).await.unwrap(), CasOutcome::Lost);
    assert_eq!(a.cluster().await.unwrap().config.unwrap().value, cfg2);
}

#[tokio::test]
async fn ttl_change_moves_our_keys_to_a_new_lease() {
    let (store, a, b) = pair(10);
    a.publish_member(&member("running")).await.unwrap();
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);
    store.put("/service/demo/members/pg9", "{\"garbage");
    let old = a.lease_id();
    a.set_ttl(5);
    assert_eq!(a.keepalive().await.unwrap(), CasOutcome::Applied);
    let new = a.lease_id();
    assert_ne!(new, old);
    assert_eq!(store.lease_of("/service/demo/leader"), Some(new));
    assert_eq!(store.lease_of("/service/demo/members/pg1"), Some(new));
    let c = b.cluster().await.unwrap();
    assert_eq!(c.leader_name(), Some("pg1"));
    assert_eq!(c.members.len(), 1, "garbage member skipped: {c:?}");
    assert_eq!(a.renew_leader().await.unwrap(), CasOutcome::Applied);
}

#[tokio::test]
async fn revoke_and_delete_cluster_remove_keys_at_once() {
    let (store, a, b) = pair(10);
    a.publish_member(&member("running")).await.unwrap();
    assert_eq!(a.acquire_leader().await.unwrap(), CasOutcome::Applied);
    a.write_status(&StatusRecord::default()).await.unwrap();
    a.revoke_lease().await.unwrap();
    let c = b.cluster().await.unwrap();
    assert!(c.leader.is_none() && c.members.is_empty());
    assert!(c.status.is_some());
    b.delete_cluster().await.unwrap();
    assert!(store.dump().is_empty());
}
