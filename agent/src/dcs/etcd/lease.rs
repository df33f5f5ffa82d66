//! Our one etcd lease: granted lazily, kept alive one message at a time, replaced when the TTL
//! changes.
//!
//! Invariants:
//! - there is never a background keepalive: the lease lives only as long as callers keep
//!   calling [`Lease::keepalive`], so a leader that stops deciding to renew loses the lease
//!   (the safety rule of the leader lease);
//! - one long-lived `LeaseKeepAlive` stream carries the keepalives (one gRPC message each);
//!   it is taken out of the state while in use, so a call cancelled by its timeout drops the
//!   stream instead of leaving an unread answer that the next call would take for its own;
//! - a lease etcd no longer knows is forgotten, and the next call grants a new one;
//! - on a TTL change the keys move to the new lease by compare-and-set (`leader` only while it
//!   holds our name) before the old lease is revoked, so they never disappear in between.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use etcd_client::{
    Client, Compare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp,
};
use tokio::sync::Mutex;

use super::conn::Failure;

/// Whether the lease survived a keepalive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kept {
    /// The lease is alive.
    Alive,
    /// There was no lease (none yet, or the last one was found gone and reported): a new one
    /// was granted, with nothing under it yet.
    Granted,
    /// The lease had expired or was revoked; everything under it is gone.
    Gone,
}

#[derive(Default)]
struct State {
    /// Lease id, 0 when there is none.
    id: i64,
    /// The TTL it was granted with (as asked, not as etcd rounded it).
    ttl: u64,
    stream: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
}

/// The lease of one `EtcdDcs`.
pub(super) struct Lease {
    leader_key: String,
    member_key: String,
    me: String,
    desired_ttl: AtomicU64,
    /// Mirror of `State::id` for lock-free reads; set to 0 by [`Lease::forget`], which the
    /// next holder of the state lock notices.
    current: AtomicI64,
    /// A lease was found gone by another call ([`Lease::forget`]) and no keepalive has
    /// reported it yet: the next keepalive returns `Gone` so callers learn that what was under
    /// it (`members/<me>`, maybe `leader`) vanished.
    lost_unreported: AtomicBool,
    state: Mutex<State>,
}

fn ttl_i64(ttl: u64) -> i64 {
    i64::try_from(ttl).unwrap_or(i64::MAX)
}

impl Lease {
    /// A lease holder for member `me`; nothing is granted yet.
    pub(super) fn new(leader_key: String, member_key: String, me: String, ttl: u64) -> Lease {
        Lease {
            leader_key,
            member_key,
            me,
            desired_ttl: AtomicU64::new(ttl),
            current: AtomicI64::new(0),
            lost_unreported: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    /// The TTL for the next grant; a lease with another TTL is replaced at the next keepalive.
    pub(super) fn set_ttl(&self, ttl: u64) {
        self.desired_ttl.store(ttl, Ordering::Relaxed);
    }

    /// The current lease id, 0 when there is none.
    pub(super) fn current(&self) -> i64 {
        self.current.load(Ordering::Acquire)
    }

    /// etcd said `id` does not exist: forget it (if it is still the current one).
    pub(super) fn forget(&self, id: i64) {
        if id != 0
            && self
                .current
                .compare_exchange(id, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.lost_unreported.store(true, Ordering::Release);
            tracing::warn!(lease = id, "etcd lease is gone; a new one will be granted");
        }
    }

    /// Drops a lease forgotten since the last call.
    fn sync(&self, st: &mut State) {
        if self.current() != st.id {
            st.id = 0;
            st.stream = None;
        }
    }

    async fn grant(&self, st: &mut State, client: &Client, ttl: u64) -> Result<i64, Failure> {
        let id = client.lease_client().grant(ttl_i64(ttl), None).await?.id();
        st.id = id;
        st.ttl = ttl;
        st.stream = None;
        self.current.store(id, Ordering::Release);
        tracing::debug!(lease = id, ttl, "etcd lease granted");
        Ok(id)
    }

    /// Our lease id, granting one if there is none.
    pub(super) async fn id(&self, client: &Client) -> Result<i64, Failure> {
        let mut st = self.state.lock().await;
        self.sync(&mut st);
        if st.id != 0 {
            return Ok(st.id);
        }
        let ttl = self.desired_ttl.load(Ordering::Relaxed);
        self.grant(&mut st, client, ttl).await
    }

    /// One keepalive of the lease (or a grant if there is none), then the TTL change if one
    /// is pending.
    pub(super) async fn keepalive(&self, client: &Client) -> Result<Kept, Failure> {
        let mut st = self.state.lock().await;
        self.sync(&mut st);
        if self.lost_unreported.swap(false, Ordering::AcqRel) {
            return Ok(Kept::Gone);
        }
        let desired = self.desired_ttl.load(Ordering::Relaxed);
        if st.id == 0 {
            self.grant(&mut st, client, desired).await?;
            return Ok(Kept::Granted);
        }
        if self.keep_once(&mut st, client).await? == Kept::Gone {
            tracing::warn!(lease = st.id, "etcd lease expired before it was renewed");
            st.id = 0;
            st.stream = None;
            self.current.store(0, Ordering::Release);
            return Ok(Kept::Gone);
        }
        if st.ttl != desired {
            self.replace(&mut st, client, desired).await?;
        }
        Ok(Kept::Alive)
    }

    /// Sends one keepalive on the stream (re-opening it once if it broke).
    async fn keep_once(&self, st: &mut State, client: &Client) -> Result<Kept, Failure> {
        let id = st.id;
        if let Some((mut keeper, mut stream)) = st.stream.take() {
            let answer = async {
                keeper.keep_alive().await?;
                stream.message().await
            }
            .await;
            match answer {
                Ok(Some(resp)) if resp.ttl() > 0 => {
                    st.stream = Some((keeper, stream));
                    return Ok(Kept::Alive);
                }
                Ok(Some(_)) => return Ok(Kept::Gone),
                Ok(None) | Err(_) => {
                    tracing::debug!(lease = id, "lease keepalive stream broke; re-opening it");
                }
            }
        }
        // Opening the stream sends the first keepalive and reads its answer.
        match client.lease_client().keep_alive(id).await {
            Ok(pair) => {
                st.stream = Some(pair);
                Ok(Kept::Alive)
            }
            Err(e) => {
                let f = Failure::from(e);
                if f.is_lease_not_found() {
                    Ok(Kept::Gone)
                } else {
                    Err(f)
                }
            }
        }
    }

    /// Grants a lease with the new TTL and moves `members/<me>` and (if ours) `leader` onto it,
    /// then revokes the old one.
    async fn replace(&self, st: &mut State, client: &Client, ttl: u64) -> Result<(), Failure> {
        let (old, old_ttl) = (st.id, st.ttl);
        // From here on the new lease is ours: if the moves below fail, the keys are re-attached
        // by the next renew_leader / publish_member, and the old lease simply expires.
        let new = self.grant(st, client, ttl).await?;
        let on_new = || PutOptions::new().with_lease(new);
        let mut kv = client.kv_client();
        kv.txn(
            Txn::new()
                .when([Compare::value(
                    self.leader_key.as_str(),
                    CompareOp::Equal,
                    self.me.as_str(),
                )])
                .and_then([TxnOp::put(
                    self.leader_key.as_str(),
                    self.me.as_str(),
                    Some(on_new()),
                )]),
        )
        .await?;
        kv.txn(
            Txn::new()
                .when([Compare::version(
                    self.member_key.as_str(),
                    CompareOp::Greater,
                    0,
                )])
                .and_then([TxnOp::put(
                    self.member_key.as_str(),
                    "",
                    Some(on_new().with_ignore_value()),
                )]),
        )
        .await?;
        if let Err(e) = client.lease_client().revoke(old).await {
            // It expires by itself within its TTL; nothing is attached to it any more.
            tracing::debug!(lease = old, error = %e, "could not revoke the replaced lease");
        }
        tracing::info!(
            old_lease = old,
            new_lease = new,
            old_ttl,
            ttl,
            "etcd lease replaced for a new ttl"
        );
        Ok(())
    }

    /// Revokes the lease (keys under it vanish at once); nothing to do without one.
    pub(super) async fn revoke(&self, client: &Client) -> Result<(), Failure> {
        let mut st = self.state.lock().await;
        self.sync(&mut st);
        if st.id == 0 {
            return Ok(());
        }
        match client.lease_client().revoke(st.id).await {
            Ok(_) => {}
            Err(e) => {
                let f = Failure::from(e);
                if !f.is_lease_not_found() {
                    return Err(f);
                }
            }
        }
        st.id = 0;
        st.stream = None;
        self.current.store(0, Ordering::Release);
        Ok(())
    }
}
