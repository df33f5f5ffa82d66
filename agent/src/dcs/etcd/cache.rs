//! The watch-maintained copy of the cluster prefix, and the task that maintains it.
//!
//! The task lists the prefix once, then watches it from the listed revision + 1 (with
//! `prev_kv`), applying every event to an in-memory map. While that watch is live, reads are
//! answered from the map at no cost to etcd: this is what keeps an idle cluster near one
//! request per agent per loop.
//!
//! Invariants:
//! - `live` is true only between a successful list + watch creation and the first sign of
//!   trouble: a watch error, end or cancel (compaction included), an HTTP/2 ping timeout on a
//!   frozen etcd, or [`Cache::invalidate`] after any request on the shared connection failed;
//! - while not live, nothing is answered from the map (callers read etcd directly);
//! - a change of `leader`, `failover`, `initialize` or `config`, a member key that appears or
//!   disappears, and every watch break, wake
//!   [`Cache::changed`], which keeps one pending wake-up so none is lost between two waits.
//!
//! This module must not write to etcd, and logs a break or a recovery once, not per call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions, WatchStream};
use tokio::sync::Notify;

use super::conn::{Conn, Failure};
use crate::dcs::{Cluster, Keys, RawKv};

/// First pause after a failed (re-)establishment; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// Longest pause between two attempts to re-establish the watch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A watch that lived this long is re-established at once when it breaks.
const STABLE: Duration = Duration::from_secs(1);

/// One cached key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) value: Vec<u8>,
    pub(super) mod_revision: i64,
    pub(super) lease: i64,
}

#[derive(Default)]
struct State {
    live: bool,
    kvs: BTreeMap<String, Entry>,
    /// `Cluster::from_kvs` of `kvs`, kept until the next change (parsing also logs every
    /// invalid value, which should happen once per change, not once per loop).
    parsed: Option<Cluster>,
}

/// The cache shared by `EtcdDcs` and its watch task.
#[derive(Default)]
pub(super) struct Cache {
    state: Mutex<State>,
    changed: Notify,
    restart: Notify,
}

impl Cache {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map half-updated in a way that
        // matters more than losing the cache, so a poisoned lock is simply taken over.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cluster from the cache, if the watch is live.
    pub(super) fn cluster(&self, keys: &Keys) -> Option<Cluster> {
        let mut st = self.lock();
        if !st.live {
            return None;
        }
        if st.parsed.is_none() {
            let parsed = Cluster::from_kvs(keys, raw_kvs(&st.kvs));
            st.parsed = Some(parsed);
        }
        st.parsed.clone()
    }

    /// `Some(entry or None)` when the watch is live, `None` when the cache cannot tell.
    pub(super) fn entry(&self, key: &str) -> Option<Option<Entry>> {
        let st = self.lock();
        st.live.then(|| st.kvs.get(key).cloned())
    }

    /// Whether the cache is live.
    pub(super) fn is_live(&self) -> bool {
        self.lock().live
    }

    /// Something on the connection failed: stop answering from the cache and make the watch
    /// task re-list and re-watch (a frozen etcd may not break the watch for several seconds).
    pub(super) fn invalidate(&self) {
        let was_live = std::mem::replace(&mut self.lock().live, false);
        if was_live {
            tracing::debug!("etcd request failed; not trusting the watch cache until re-listed");
            self.changed.notify_one();
        }
        self.restart.notify_waiters();
    }

    /// Waits for a relevant change or a watch break.
    pub(super) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Installs a fresh listing and marks the cache live; true if a relevant key differs.
    fn replace(&self, kvs: BTreeMap<String, Entry>, relevant: &[String]) -> bool {
        let mut st = self.lock();
        let differs = relevant.iter().any(|k| st.kvs.get(k) != kvs.get(k));
        st.kvs = kvs;
        st.parsed = None;
        st.live = true;
        differs
    }

    /// Applies watch events; true if a relevant key changed.
    fn apply(&self, events: &[etcd_client::Event], relevant: &[String], members: &str) -> bool {
        let mut st = self.lock();
        let mut hit = false;
        for ev in events {
            let Some(kv) = ev.kv() else { continue };
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            hit |= relevant.contains(&key);
            // A member that appears or goes away matters too (the leader keeps a slot per
            // member; a replica restarted after a failover streams as soon as it has one);
            // updates of existing member records do not wake anybody.
            let member = key.starts_with(members);
            match ev.event_type() {
                EventType::Put => {
                    hit |= member && !st.kvs.contains_key(&key);
                    st.kvs.insert(key, entry(kv));
                }
                EventType::Delete => {
                    hit |= member && st.kvs.contains_key(&key);
                    st.kvs.remove(&key);
                }
            }
        }
        st.parsed = None;
        hit
    }

    fn mark_down(&self) {
        self.lock().live = false;
    }
}

fn entry(kv: &etcd_client::KeyValue) -> Entry {
    Entry {
        value: kv.value().to_vec(),
        mod_revision: kv.mod_revision(),
        lease: kv.lease(),
    }
}

/// The map as `RawKv`s for `Cluster::from_kvs`.
fn raw_kvs(kvs: &BTreeMap<String, Entry>) -> impl Iterator<Item = RawKv<'_>> {
    kvs.iter().map(|(k, e)| RawKv {
        key: k,
        value: &e.value,
        mod_revision: e.mod_revision,
        lease: e.lease,
    })
}

/// Lists the prefix and opens the watch; the cache is live when this returns `Ok`.
async fn establish(
    conn: &Conn,
    cache: &Cache,
    keys: &Keys,
    relevant: &[String],
    op_timeout: Duration,
) -> Result<WatchStream, Failure> {
    let work = async {
        let client = conn.client().await?;
        let prefix = keys.prefix();
        let resp = client
            .kv_client()
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let kvs: BTreeMap<String, Entry> = resp
            .kvs()
            .iter()
            .map(|kv| (String::from_utf8_lossy(kv.key()).into_owned(), entry(kv)))
            .collect();
        let opts = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(revision + 1);
        let mut stream = client.watch_client().watch(prefix, Some(opts)).await?;
        // The first message confirms the watch (or reports it cancelled, e.g. compacted).
        match stream.message().await? {
            Some(m) if m.created() && !m.canceled() => {}
            other => {
                return Err(Failure::Etcd(etcd_client::Error::WatchError(format!(
                    "watch not created: {:?}",
                    other.map(|m| m.cancel_reason().to_string())
                ))));
            }
        }
        if cache.replace(kvs, relevant) {
            cache.changed.notify_one();
        }
        Ok(stream)
    };
    tokio::time::timeout(op_timeout, work)
        .await
        .unwrap_or(Err(Failure::Timeout(op_timeout)))
}

/// Follows the watch until it breaks or the cache is invalidated; returns why it stopped.
async fn follow(
    stream: &mut WatchStream,
    cache: &Cache,
    relevant: &[String],
    members: &str,
) -> String {
    // Registered now, so an `invalidate` from here on is not missed.
    let restart = cache.restart.notified();
    tokio::pin!(restart);
    // An `invalidate` between the listing and the registration above would be lost
    // otherwise, leaving a healthy watch behind a cache marked not live.
    if !cache.is_live() {
        return "a request on the connection failed".into();
    }
    loop {
        let msg = tokio::select! {
            () = &mut restart => return "a request on the connection failed".into(),
            m = stream.message() => m,
        };
        match msg {
            Ok(Some(resp)) if resp.canceled() => {
                return format!(
                    "watch cancelled by etcd (compact revision {}): {}",
                    resp.compact_revision(),
                    resp.cancel_reason()
                );
            }
            Ok(Some(resp)) => {
                if cache.apply(resp.events(), relevant, members) {
                    cache.changed.notify_one();
                }
            }
            Ok(None) => return "watch stream ended".into(),
            Err(e) => return e.to_string(),
        }
    }
}

/// Keeps the cache live for as long as the task runs (it is aborted when `EtcdDcs` drops).
pub(super) async fn run(conn: Arc<Conn>, cache: Arc<Cache>, keys: Keys, op_timeout: Duration) {
    let relevant = [
        keys.leader(),
        keys.failover(),
        keys.initialize(),
        keys.config(),
    ];
    let mut backoff = MIN_BACKOFF;
    // Whether the last attempt failed, so a run of failures is logged once.
    let mut failing = false;
    // Whether the watch has been up before, so the first success is not called a recovery.
    let mut was_up = false;
    loop {
        match establish(&conn, &cache, &keys, &relevant, op_timeout).await {
            Ok(mut stream) => {
                if was_up {
                    tracing::warn!("etcd watch re-established; answering from the cache again");
                } else {
                    tracing::debug!(prefix = keys.prefix(), "etcd watch established");
                }
                was_up = true;
                failing = false;
                let since = tokio::time::Instant::now();
                let why = follow(&mut stream, &cache, &relevant, &keys.members()).await;
                cache.mark_down();
                cache.changed.notify_one();
                tracing::warn!(reason = %why, "etcd watch broke; reading etcd directly until it is back");
                if since.elapsed() >= STABLE {
                    // Reconnect at once: a compaction or a one-off error needs no pause, and
                    // a dead etcd makes the next attempt fail within op_timeout anyway.
                    backoff = MIN_BACKOFF;
                    continue;
                }
                // A watch that keeps breaking right away must not turn into a busy loop of
                // list + watch requests: fall through to the growing pause.
            }
            Err(f) => {
                if !failing {
                    tracing::warn!(error = %f.into_dcs("watch"), "cannot establish the etcd watch; retrying");
                }
                failing = true;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn relevant_change_in_a_new_listing_wakes_changed_once() {
        let cache = Cache::default();
        let relevant = vec!["/s/c/leader".to_string()];
        let kv = |v: &str, r| Entry {
            value: v.as_bytes().to_vec(),
            mod_revision: r,
            lease: 0,
        };
        let mut m = BTreeMap::new();
        m.insert("/s/c/leader".to_string(), kv("a", 1));
        assert!(cache.replace(m.clone(), &relevant));
        assert!(
            !cache.replace(m.clone(), &relevant),
            "same listing is no change"
        );
        m.insert("/s/c/members/a".to_string(), kv("{}", 2));
        assert!(
            !cache.replace(m.clone(), &relevant),
            "members are not relevant"
        );
        assert!(cache.is_live());
        cache.invalidate();
        assert!(!cache.is_live());
        assert_eq!(cache.entry("/s/c/leader"), None);
        // The invalidation left a wake-up behind for the next waiter.
        tokio::time::timeout(Duration::from_millis(100), cache.changed())
            .await
            .unwrap();
    }
}
