//! `TestCluster`: real etcd, N real `ha-agent` processes (each with its PostgreSQL), optionally
//! a cuttable TCP proxy between each agent and etcd (to isolate one member from etcd), and
//! optionally the shipped HAProxy config in front. On a failing test, the tails of every log
//! are printed.

use std::path::PathBuf;
use std::time::Duration;

use crate::agent::{AgentProc, ClusterSettings};
use crate::etcd::EtcdProc;
use crate::haproxy::HaproxyProc;
use crate::procs::{RunAs, log_dir, tail, user_tempdir, wait_for};
use crate::proxy::CutProxy;

/// How to build a cluster.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Number of members (`node1`..).
    pub nodes: usize,
    /// Settings written to every member's YAML.
    pub settings: ClusterSettings,
    /// Put a cuttable proxy between each member and etcd.
    pub etcd_proxies: bool,
    /// Start HAProxy (needs exactly 3 members).
    pub haproxy: bool,
    /// HAProxy with the check timing of Patroni's sample configuration (`inter 1s fall 2
    /// rise 1`, `timeout check 5s`) instead of the shipped file's 100 ms checks.
    pub haproxy_patroni_checks: bool,
    /// Extra tags: (member index from 0, key, YAML value).
    pub tags: Vec<(usize, String, String)>,
    /// etcd over HTTPS with client certificates (the agents' `etcd3` TLS lines go into
    /// `settings.extra.etcd3`).
    pub etcd_tls: Option<crate::etcd::EtcdTls>,
    /// etcd's own authentication: (root password, user, password) for the cluster prefix.
    pub etcd_auth: Option<(String, String, String)>,
    /// Called for each member (index from 0, its directory) before the agents start, e.g. to
    /// put a file there.
    pub before_start: Option<fn(usize, &std::path::Path)>,
    /// Start only the first N members (the others are prepared, to be started by the test).
    pub start_only: Option<usize>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            nodes: 3,
            settings: ClusterSettings::default(),
            etcd_proxies: false,
            haproxy: false,
            haproxy_patroni_checks: false,
            tags: Vec::new(),
            etcd_tls: None,
            etcd_auth: None,
            before_start: None,
            start_only: None,
        }
    }
}

/// A running test cluster.
pub struct TestCluster {
    /// Settings every member runs with.
    pub settings: ClusterSettings,
    /// etcd.
    pub etcd: EtcdProc,
    /// Per-member proxies to etcd (empty unless `etcd_proxies`).
    pub proxies: Vec<CutProxy>,
    /// The members.
    pub nodes: Vec<AgentProc>,
    /// HAProxy, if started.
    pub haproxy: Option<HaproxyProc>,
    /// Where the logs go.
    pub log_dir: PathBuf,
    etcd_client: etcd_client::Client,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts etcd and every member at once (they race to bootstrap), and HAProxy if asked.
    pub async fn start(test: &str, opts: Opts) -> TestCluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let log_dir = log_dir(test);
        for entry in std::fs::read_dir(&log_dir).into_iter().flatten().flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        let run_as = RunAs::unprivileged();
        let dir = user_tempdir(&run_as, "hapg-it-");
        let mut etcd = EtcdProc::start_with(&log_dir, opts.etcd_tls.clone()).await;
        if let Some((root, user, pw)) = &opts.etcd_auth {
            etcd.enable_auth(
                root,
                user,
                pw,
                &format!("/service/{}/", opts.settings.scope),
            )
            .await;
        }
        let etcd_addr = etcd.host_port();
        let mut proxies = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..opts.nodes {
            let hosts = if opts.etcd_proxies {
                let p = CutProxy::start(etcd_addr.clone()).await;
                let a = p.addr();
                proxies.push(p);
                a
            } else {
                etcd_addr.clone()
            };
            let mut n = AgentProc::new(
                &format!("node{}", i + 1),
                dir.path(),
                hosts,
                &log_dir,
                run_as,
            );
            n.tags = opts
                .tags
                .iter()
                .filter(|(idx, _, _)| *idx == i)
                .map(|(_, k, v)| (k.clone(), v.clone()))
                .collect();
            if let Some(f) = opts.before_start {
                f(i, &n.dir);
            }
            nodes.push(n);
        }
        for n in nodes.iter_mut().take(opts.start_only.unwrap_or(usize::MAX)) {
            n.start(&opts.settings);
        }
        let haproxy = opts.haproxy.then(|| {
            assert!(
                nodes.len() >= 3,
                "the shipped haproxy.cfg describes 3 members (the first three are used)"
            );
            let m = [
                (nodes[0].pg_port, nodes[0].api_port),
                (nodes[1].pg_port, nodes[1].api_port),
                (nodes[2].pg_port, nodes[2].api_port),
            ];
            HaproxyProc::start_with(&m, &log_dir, opts.haproxy_patroni_checks)
        });
        let etcd_client = etcd.client().await;
        TestCluster {
            settings: opts.settings,
            etcd,
            proxies,
            nodes,
            haproxy,
            log_dir,
            etcd_client,
            _dir: dir,
        }
    }

    /// The member called `name`.
    pub fn node(&self, name: &str) -> &AgentProc {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// The member called `name`, mutably.
    pub fn node_mut(&mut self, name: &str) -> &mut AgentProc {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// The etcd proxy of member `name` (with `etcd_proxies`).
    pub fn proxy_of(&self, name: &str) -> &CutProxy {
        let i = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no member {name}"));
        &self.proxies[i]
    }

    /// `/service/<scope>/`.
    pub fn prefix(&self) -> String {
        format!("/service/{}/", self.settings.scope)
    }

    /// The value of a cluster key (`leader`, `members/node1`, ...).
    pub async fn etcd_get(&self, key: &str) -> Option<String> {
        let mut kv = self.etcd_client.kv_client();
        let r = kv.get(format!("{}{key}", self.prefix()), None).await.ok()?;
        r.kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
    }

    /// Writes a cluster key as an operator would with etcdctl (no lease).
    pub async fn etcd_put(&self, key: &str, value: &str) {
        let mut kv = self.etcd_client.kv_client();
        kv.put(format!("{}{key}", self.prefix()), value, None)
            .await
            .expect("etcd put");
    }

    /// Deletes a cluster key, or with `prefix` every key under it (`""`: the whole cluster).
    pub async fn etcd_delete(&self, key: &str, prefix: bool) {
        let mut kv = self.etcd_client.kv_client();
        let opts = prefix.then(|| etcd_client::DeleteOptions::new().with_prefix());
        kv.delete(format!("{}{key}", self.prefix()), opts)
            .await
            .expect("etcd delete");
    }

    /// Every key under the cluster prefix with its value.
    pub async fn etcd_all(&self) -> Vec<(String, String)> {
        let mut kv = self.etcd_client.kv_client();
        let r = kv
            .get(
                self.prefix(),
                Some(etcd_client::GetOptions::new().with_prefix()),
            )
            .await
            .expect("etcd get prefix");
        r.kvs()
            .iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    String::from_utf8_lossy(kv.value()).into_owned(),
                )
            })
            .collect()
    }

    /// Whether member `name`'s PostgreSQL accepts writes now.
    pub async fn is_writable(&self, name: &str) -> bool {
        let Ok(c) = self.node(name).client().await else {
            return false;
        };
        matches!(
            c.query_one("select pg_is_in_recovery()", &[]).await,
            Ok(row) if !row.get::<_, bool>(0)
        )
    }

    /// Waits until a member holds the leader key and its PostgreSQL accepts writes.
    pub async fn wait_for_leader(&self, timeout: Duration) -> String {
        wait_for("a writable leader", timeout, || async {
            let l = self.etcd_get("leader").await?;
            self.is_writable(&l).await.then_some(l)
        })
        .await
    }

    /// Waits for a writable leader other than `old`.
    pub async fn wait_for_leader_other_than(&self, old: &str, timeout: Duration) -> String {
        wait_for(
            &format!("a writable leader other than {old}"),
            timeout,
            || async {
                let l = self.etcd_get("leader").await?;
                (l != old && self.is_writable(&l).await).then_some(l)
            },
        )
        .await
    }

    /// Waits for a writable leader and every other member streaming from it; returns the
    /// leader. `timeout` applies to each of the two waits.
    pub async fn wait_healthy(&self, timeout: Duration) -> String {
        let leader = self.wait_for_leader(timeout).await;
        let replicas = self.others(&[&leader]);
        let rs: Vec<&str> = replicas.iter().map(String::as_str).collect();
        self.wait_streaming(&leader, &rs, timeout).await;
        leader
    }

    /// Waits until each of `replicas` streams from `leader`: the leader's `pg_stat_replication`
    /// lists it as streaming and the replica's own WAL receiver streams from the leader's port.
    /// (Checking the leader alone is not enough: pg_basebackup's WAL stream shows up there under
    /// the member's name while the clone is still running.)
    pub async fn wait_streaming(&self, leader: &str, replicas: &[&str], timeout: Duration) {
        let what = format!("{replicas:?} streaming from {leader}");
        let leader_port = i32::from(self.node(leader).pg_port);
        wait_for(&what, timeout, || async {
            let c = self.node(leader).client().await.ok()?;
            let rows = c
                .query(
                    "select application_name from pg_stat_replication where state = 'streaming'",
                    &[],
                )
                .await
                .ok()?;
            let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            for r in replicas {
                if !names.iter().any(|n| n == r) {
                    return None;
                }
                let rc = self.node(r).client().await.ok()?;
                let row = rc
                    .query_opt(
                        "select sender_port from pg_stat_wal_receiver where status = 'streaming'",
                        &[],
                    )
                    .await
                    .ok()??;
                if row.get::<_, Option<i32>>(0) != Some(leader_port) {
                    return None;
                }
            }
            Some(())
        })
        .await
    }

    /// `PATCH /config` on `member` with each value: each must be refused (400) with a reason
    /// naming its key, and the `config` key must be left as it was.
    pub async fn assert_config_patches_refused(
        &self,
        member: &str,
        cases: &[(serde_json::Value, &str)],
    ) {
        let before = self.etcd_get("config").await;
        for (patch, key) in cases {
            let r = crate::agent::http()
                .patch(format!("{}/config", self.node(member).api_base()))
                .json(patch)
                .send()
                .await
                .expect("PATCH /config");
            let code = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            assert_eq!(code, 400, "{patch}: {text}");
            assert!(text.contains(key), "{patch}: {text}");
        }
        assert_eq!(
            self.etcd_get("config").await,
            before,
            "config left as it was"
        );
    }

    /// Names of all members except those given.
    pub fn others(&self, except: &[&str]) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| n.name.clone())
            .filter(|n| !except.contains(&n.as_str()))
            .collect()
    }

    /// Prints the tail of every log.
    pub fn dump_logs(&self) {
        eprintln!("===== logs in {} =====", self.log_dir.display());
        for n in &self.nodes {
            eprintln!("{}", n.log_tails(80));
        }
        eprintln!("----- etcd -----\n{}", tail(self.etcd.log_path(), 20));
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        // Keep PostgreSQL's server logs beside the agents' (the temp dir goes away).
        for n in &self.nodes {
            let _ = std::fs::copy(
                n.pg_log_path(),
                self.log_dir.join(format!("{}.postgresql.log", n.name)),
            );
        }
    }
}
