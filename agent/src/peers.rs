//! Asking other members how they are: `GET <api_url>` (their `/patroni`), used in the leader
//! race to check that no member still runs as primary and none is further ahead.
//!
//! Invariants: bounded by a short timeout per request, all members asked concurrently; a member
//! that does not answer is simply absent from the result (as in Patroni). Never follows proxies
//! from the environment (a proxy must not be able to redirect failover traffic).

use std::time::Duration;

use serde::Deserialize;

use crate::dcs::Cluster;
use crate::ha::{LeaderSeen, Lsn, MemberName, PeerStatus};

/// HTTP client for the members' REST APIs.
#[derive(Debug, Clone)]
pub struct PeerClient {
    http: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct PatroniStatus {
    #[serde(default)]
    state: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    timeline: Option<u32>,
    #[serde(default)]
    xlog: Xlog,
    #[serde(default)]
    tags: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    database_system_identifier: Option<String>,
    /// hapg's own: the leader key as the member read it before its WAL position (null:
    /// vacant); absent (another agent) reads as `false`, unknown.
    #[serde(default = "unknown_leader")]
    leader_seen: serde_json::Value,
}

fn unknown_leader() -> serde_json::Value {
    serde_json::Value::Bool(false)
}

#[derive(Debug, Default, Deserialize)]
struct Xlog {
    location: Option<u64>,
    received_location: Option<u64>,
    replayed_location: Option<u64>,
}

/// How the agent's requests to other members' HTTPS APIs authenticate, from the agent's own
/// configuration as Patroni reads it: a client certificate from `ctl.certfile`/`keyfile`
/// (needed when the others run `verify_client: required`), and the servers' CA from
/// `ctl.cacert` or `restapi.cafile`. With a CA, the chain is checked but not the host name;
/// without one, no check (Patroni's agent calls its peers with `insecure` set).
#[derive(Debug, Clone, Default)]
pub struct PeerTls {
    /// Client certificate and key (PEM files).
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Passphrase of an encrypted key.
    pub key_password: Option<crate::keyfile::Secret>,
    /// CA bundle the peers' certificates must chain to.
    pub ca: Option<std::path::PathBuf>,
}

impl PeerTls {
    /// From the agent's configuration.
    pub fn from_config(cfg: &crate::config::Config) -> PeerTls {
        PeerTls {
            identity: cfg.ctl.certfile.clone().map(|c| {
                let k = cfg.ctl.keyfile.clone().unwrap_or_else(|| c.clone());
                (c, k)
            }),
            key_password: cfg.ctl.keyfile_password.clone(),
            ca: cfg
                .ctl
                .cacert
                .clone()
                .or_else(|| cfg.restapi.cafile.clone()),
        }
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PeerClientError {
    /// A certificate or key file cannot be read or parsed.
    #[error("{what} {path}: {detail}")]
    File {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        detail: String,
    },
    /// reqwest refused the configuration.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

impl PeerClient {
    /// A client whose requests give up after `timeout` (no client certificate).
    pub fn new(timeout: Duration) -> Result<PeerClient, PeerClientError> {
        PeerClient::with_tls(timeout, &PeerTls::default())
    }

    /// A client whose requests give up after `timeout`, with `tls` for HTTPS peers.
    pub fn with_tls(timeout: Duration, tls: &PeerTls) -> Result<PeerClient, PeerClientError> {
        // reqwest is built without a default TLS provider; ring serves every TLS user here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let read = |what: &'static str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| PeerClientError::File {
                what,
                path: path.to_owned(),
                detail: e.to_string(),
            })
        };
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some((cert, key)) = &tls.identity {
            let mut pem = read("ctl.certfile", cert)?;
            pem.push(b'\n');
            pem.extend(
                crate::keyfile::load_pem("ctl.keyfile", key, tls.key_password.as_ref()).map_err(
                    |detail| PeerClientError::File {
                        what: "ctl.keyfile",
                        path: key.clone(),
                        detail,
                    },
                )?,
            );
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| PeerClientError::File {
                what: "ctl.certfile/keyfile",
                path: cert.clone(),
                detail: e.to_string(),
            })?;
            b = b.identity(id);
        }
        match &tls.ca {
            Some(ca) => {
                let pem = read("ctl.cacert", ca)?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    PeerClientError::File {
                        what: "ctl.cacert",
                        path: ca.clone(),
                        detail: e.to_string(),
                    }
                })?;
                b = b
                    .tls_certs_only(certs)
                    .danger_accept_invalid_hostnames(true);
            }
            None => b = b.danger_accept_invalid_certs(true),
        }
        Ok(PeerClient { http: b.build()? })
    }

    /// The HTTP client (no proxies, bounded timeouts), for other member-to-member calls.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Asks every member of `cluster` except `me`, concurrently, and also the members in
    /// `remembered` (name -> API URL) that `cluster` no longer lists: after etcd lost its
    /// keys, the members' own word is all there is (Patroni probes its last healthy view too).
    pub async fn probe(
        &self,
        cluster: &Cluster,
        remembered: &std::collections::BTreeMap<String, String>,
        me: &str,
    ) -> Vec<PeerStatus> {
        let mut targets: std::collections::BTreeMap<&str, &str> = remembered
            .iter()
            .map(|(n, u)| (n.as_str(), u.as_str()))
            .collect();
        for m in &cluster.members {
            targets.insert(&m.name, &m.record.api_url);
        }
        let mut set = tokio::task::JoinSet::new();
        for (name, url) in targets.into_iter().filter(|(n, _)| *n != me) {
            let http = self.http.clone();
            let (url, name) = (url.to_string(), name.to_string());
            set.spawn(async move { ask(&http, &url, &name).await });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(Some(p)) = r {
                out.push(p);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

async fn ask(http: &reqwest::Client, url: &str, name: &str) -> Option<PeerStatus> {
    let resp = match http.get(url).send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(peer = name, url, "peer did not answer: {e}");
            return None;
        }
    };
    // Whatever the code (Patroni 4 and hapg answer 200; older Patroni 503 when PostgreSQL is
    // not running), the body says the state.
    let st: PatroniStatus = match resp.json().await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(peer = name, url, "peer sent unreadable status: {e}");
            return None;
        }
    };
    Some(peer_status(name, &st))
}

fn peer_status(name: &str, st: &PatroniStatus) -> PeerStatus {
    let primary = matches!(st.role.as_str(), "primary" | "master" | "standby_leader");
    let lsn = if primary {
        st.xlog.location
    } else {
        match (st.xlog.received_location, st.xlog.replayed_location) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    };
    let tags = &st.tags;
    let priority = tags
        .get("failover_priority")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(1);
    PeerStatus {
        name: MemberName::new(name),
        running_primary: primary && st.state == "running",
        timeline: st.timeline,
        lsn: lsn.map(Lsn),
        nofailover: crate::dcs::records::tag_true(tags.get("nofailover")) || priority == 0,
        failover_priority: priority,
        sysid: st.database_system_identifier.clone(),
        leader_seen: match &st.leader_seen {
            serde_json::Value::Null => LeaderSeen::Vacant,
            serde_json::Value::String(l) => LeaderSeen::Held(MemberName::new(l)),
            _ => LeaderSeen::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_patroni_replica_and_primary_status() {
        let r: PatroniStatus = serde_json::from_str(
            r#"{"state":"running","role":"replica","xlog":{"received_location":10,"replayed_location":7},"timeline":3,"tags":{"nofailover":"on"}}"#,
        )
        .unwrap();
        let p = peer_status("n2", &r);
        assert_eq!(p.lsn, Some(Lsn(10)));
        assert!(!p.running_primary);
        assert!(p.nofailover);
        let r: PatroniStatus =
            serde_json::from_str(r#"{"state":"running","role":"master","xlog":{"location":99}}"#)
                .unwrap();
        let p = peer_status("n1", &r);
        assert!(p.running_primary);
        assert_eq!(p.lsn, Some(Lsn(99)));
        let r: PatroniStatus =
            serde_json::from_str(r#"{"state":"stopped","role":"primary"}"#).unwrap();
        assert!(!peer_status("n1", &r).running_primary);
    }

    #[test]
    fn reads_which_leader_the_answer_was_taken_under() {
        let seen = |body: &str| {
            let r: PatroniStatus = serde_json::from_str(body).unwrap();
            peer_status("n2", &r).leader_seen
        };
        assert_eq!(
            seen(r#"{"role":"replica"}"#),
            LeaderSeen::Unknown,
            "Patroni"
        );
        assert_eq!(
            seen(r#"{"role":"replica","leader_seen":null}"#),
            LeaderSeen::Vacant
        );
        assert_eq!(
            seen(r#"{"role":"replica","leader_seen":"n1"}"#),
            LeaderSeen::Held(MemberName::new("n1"))
        );
    }
}
