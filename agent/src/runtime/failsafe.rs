//! Failsafe mode's protocol between members (Patroni's): the leader, cut off from etcd,
//! `POST`s `/failsafe` to every member listed in the `failsafe` key; each one that is not
//! itself a running primary accepts (200 `Accepted`) and, for ttl from then, does not race
//! for the lease. When every member accepts, the leader may keep writing until the round's
//! send time plus ttl.
//!
//! Shell only: the rules (when to run a round, what an accepted round allows, that a member
//! holding a fresh failsafe promise does not race) are in the core.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::pg::Credentials;

/// How long one member may take to answer `POST /failsafe` (Patroni: 2 s).
const ROUND_TIMEOUT: Duration = Duration::from_secs(2);

/// What a leader told us in its last `POST /failsafe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailsafePromise {
    /// The leader's member name.
    pub leader: String,
    /// Its REST API URL.
    pub api_url: String,
    /// Its PostgreSQL URL.
    pub conn_url: String,
    /// When we accepted.
    pub at: Instant,
}

/// The last promise we gave, shared by the REST API (which records it) and the loop (which
/// keeps it in mind for ttl).
#[derive(Debug, Clone, Default)]
pub struct FailsafeInbox(Arc<Mutex<Option<FailsafePromise>>>);

impl FailsafeInbox {
    /// Records a promise given now.
    pub fn record(&self, p: FailsafePromise) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(p);
    }

    /// The leader we promised within `ttl`, if any.
    pub fn leader_within(&self, ttl: Duration) -> Option<String> {
        let g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.as_ref()
            .filter(|p| p.at.elapsed() < ttl)
            .map(|p| p.leader.clone())
    }

    /// Forgets the promise (we became leader ourselves).
    pub fn clear(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// Our side of a round: every member of `targets` (name -> API URL, us excluded) asked at
/// once; true only when every one accepted.
pub(super) async fn round(
    http: &reqwest::Client,
    targets: &BTreeMap<String, String>,
    body: &serde_json::Value,
    auth: Option<&Credentials>,
) -> Result<(), String> {
    let mut set = tokio::task::JoinSet::new();
    for (name, api_url) in targets {
        let url = endpoint(api_url, "failsafe");
        let mut req = http.post(&url).timeout(ROUND_TIMEOUT).json(body);
        if let Some(c) = auth {
            req = req.basic_auth(&c.username, c.password.as_deref());
        }
        let name = name.clone();
        set.spawn(async move {
            let answer = match req.send().await {
                Ok(resp) => {
                    let code = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    (code.as_u16() == 200 && text.trim() == "Accepted")
                        .then_some(())
                        .ok_or(format!("{code}: {}", text.trim()))
                }
                Err(e) => Err(e.to_string()),
            };
            (name, answer)
        });
    }
    let mut refused = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(why))) => refused.push(format!("{name} ({why})")),
            Err(e) => refused.push(format!("a request task failed ({e})")),
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        refused.sort();
        Err(format!("not accepted by {}", refused.join(", ")))
    }
}

/// `http://host:port/patroni` -> `http://host:port/<path>` (Patroni's `get_endpoint_url`).
pub fn endpoint(api_url: &str, path: &str) -> String {
    let (scheme, rest) = api_url.split_once("://").unwrap_or(("http", api_url));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_replaces_the_path() {
        assert_eq!(
            endpoint("http://10.0.0.2:8008/patroni", "failsafe"),
            "http://10.0.0.2:8008/failsafe"
        );
        assert_eq!(endpoint("https://h:1/", "failsafe"), "https://h:1/failsafe");
    }

    #[tokio::test]
    async fn a_promise_lasts_ttl() {
        tokio::time::pause();
        let inbox = FailsafeInbox::default();
        inbox.record(FailsafePromise {
            leader: "n1".into(),
            api_url: String::new(),
            conn_url: String::new(),
            at: Instant::now(),
        });
        assert_eq!(
            inbox.leader_within(Duration::from_secs(10)),
            Some("n1".into())
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(inbox.leader_within(Duration::from_secs(10)), None);
    }
}
