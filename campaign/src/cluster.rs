//! The cluster under test: three etcd members, three members (agent + PostgreSQL) and
//! HAProxy, each on its own host of the [`Topology`]. Starting, killing and restarting them;
//! nothing here waits for the cluster to be healthy (that is [`crate::observe`]).

use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::sys::signal::Signal;
use tokio::process::Child;

use crate::net::{Host, Topology};
use crate::procs::{signal, signal_in_ns, spawn_in};

/// How the members run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lease ttl, seconds.
    pub ttl: u64,
    /// loop_wait, seconds.
    pub loop_wait: u64,
    /// retry_timeout, seconds.
    pub retry_timeout: u64,
    /// `synchronous_mode: true` in bootstrap.dcs.
    pub sync: bool,
    /// The agent binary.
    pub agent_bin: PathBuf,
    /// Where data directories go (removed at the end).
    pub data_dir: PathBuf,
    /// Where logs go (kept).
    pub log_dir: PathBuf,
}

/// The etcd cluster's scope key prefix and scope name.
pub const SCOPE: &str = "campaign";

/// A running (or stopped) cluster.
pub struct Cluster {
    /// Hosts and addresses.
    pub topo: Topology,
    /// Settings.
    pub settings: Settings,
    etcd: Vec<Option<Child>>,
    agents: Vec<Option<Child>>,
    haproxy: Option<Child>,
}

impl Cluster {
    /// A cluster on `topo`, nothing started.
    pub fn new(topo: Topology, settings: Settings) -> Cluster {
        Cluster {
            etcd: (0..topo.etcd.len()).map(|_| None).collect(),
            agents: (0..topo.members.len()).map(|_| None).collect(),
            haproxy: None,
            topo,
            settings,
        }
    }

    /// `10.213.0.21:2379,10.213.0.22:2379,...`.
    pub fn etcd_hosts(&self) -> String {
        self.topo
            .etcd
            .iter()
            .map(|h| format!("{}:2379", h.addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn initial_cluster(&self) -> String {
        self.topo
            .etcd
            .iter()
            .map(|h| format!("{}=http://{}:2380", h.name, h.addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts etcd member `i` (first start or restart on the same data directory).
    pub fn start_etcd(&mut self, i: usize) -> anyhow::Result<()> {
        let h = self.topo.etcd[i].clone();
        let data = self.settings.data_dir.join(&h.name);
        std::fs::create_dir_all(&data).with_context(|| format!("create {}", data.display()))?;
        let (c, p) = (
            format!("http://{}:2379", h.addr),
            format!("http://{}:2380", h.addr),
        );
        let args = vec![
            format!("--name={}", h.name),
            format!("--data-dir={}", data.join("data").display()),
            format!("--listen-client-urls={c}"),
            format!("--advertise-client-urls={c}"),
            format!("--listen-peer-urls={p}"),
            format!("--initial-advertise-peer-urls={p}"),
            format!("--initial-cluster={}", self.initial_cluster()),
            "--initial-cluster-state=new".into(),
            format!("--initial-cluster-token={}", self.topo.instance.bridge()),
            "--logger=zap".into(),
            "--log-outputs=stderr".into(),
        ];
        let bin = ha_tests::procs::system_bin("ETCD_BIN", &["etcd"], "apt-get install etcd-server");
        let log = self.settings.log_dir.join(format!("{}.log", h.name));
        self.etcd[i] = Some(spawn_in(&h.ns, false, &bin, &args, &[], &log, false)?);
        Ok(())
    }

    /// kill -9 of etcd member `i`.
    pub async fn kill_etcd(&mut self, i: usize) {
        if let Some(mut c) = self.etcd[i].take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// The member's directory (config, data directory, PostgreSQL log).
    pub fn member_dir(&self, i: usize) -> PathBuf {
        self.settings.data_dir.join(&self.topo.members[i].name)
    }

    /// Writes member `i`'s config and starts its agent as `postgres`.
    pub fn start_agent(&mut self, i: usize) -> anyhow::Result<()> {
        let h = self.topo.members[i].clone();
        let dir = self.member_dir(i);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        chown_postgres(&dir)?;
        let cfg = dir.join("agent.yml");
        std::fs::write(&cfg, self.agent_yaml(&h, &dir)).context("write agent config")?;
        chown_postgres(&cfg)?;
        let log = self.settings.log_dir.join(format!("{}.log", h.name));
        let env = vec![("RUST_LOG".to_string(), "info".to_string())];
        let args = vec![cfg.display().to_string()];
        self.agents[i] = Some(spawn_in(
            &h.ns,
            true,
            &self.settings.agent_bin,
            &args,
            &env,
            &log,
            false,
        )?);
        Ok(())
    }

    /// The agent's pid, while it was started and not killed by the campaign.
    pub fn agent_pid(&self, i: usize) -> Option<u32> {
        self.agents[i].as_ref().and_then(Child::id)
    }

    /// kill -9 of member `i`'s agent only (PostgreSQL and the fence live on).
    pub async fn kill_agent(&mut self, i: usize) {
        if let Some(mut c) = self.agents[i].take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// kill -9 of every process on member `i`'s host: agent, PostgreSQL, fence. Returns what
    /// was killed.
    pub async fn kill_member(&mut self, i: usize) -> Vec<(u32, String)> {
        let ns = self.topo.members[i].ns.clone();
        let mut killed = Vec::new();
        // Repeat until nothing is left: a process may be forking while we kill.
        for _ in 0..20 {
            let hit = signal_in_ns(&ns, Signal::SIGKILL, |_| true);
            if hit.is_empty() {
                break;
            }
            killed.extend(hit);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        if let Some(mut c) = self.agents[i].take() {
            let _ = c.wait().await;
        }
        killed
    }

    /// kill -9 of member `i`'s PostgreSQL: the postmaster and every backend.
    pub fn kill_postgres(&self, i: usize) -> Vec<(u32, String)> {
        signal_in_ns(&self.topo.members[i].ns, Signal::SIGKILL, |c| {
            c == "postgres"
        })
    }

    /// SIGSTOP or SIGCONT to member `i`'s agent.
    pub fn signal_agent(&self, i: usize, sig: Signal) -> Option<u32> {
        let pid = self.agent_pid(i)?;
        signal(pid, sig);
        Some(pid)
    }

    /// Starts HAProxy with the shipped `haproxy/haproxy.cfg` on the client host.
    pub fn start_haproxy(&mut self) -> anyhow::Result<()> {
        let bin =
            ha_tests::procs::system_bin("HAPROXY_BIN", &["haproxy"], "apt-get install haproxy");
        let cfg = ha_tests::procs::workspace_root()
            .join("haproxy")
            .join("haproxy.cfg");
        let a = self.topo.client.addr;
        let mut env = vec![
            ("HAPG_PRIMARY_BIND".to_string(), format!("{a}:5000")),
            ("HAPG_REPLICAS_BIND".to_string(), format!("{a}:5001")),
            ("HAPG_STATS_BIND".to_string(), format!("{a}:7000")),
        ];
        for (i, m) in self.topo.members.iter().enumerate() {
            env.push((format!("NODE{}_PG", i + 1), format!("{}:5432", m.addr)));
            env.push((format!("NODE{}_API", i + 1), "8008".to_string()));
        }
        let args = vec![
            "-f".to_string(),
            cfg.display().to_string(),
            "-db".to_string(),
        ];
        let log = self.settings.log_dir.join("haproxy.log");
        let ns = self.topo.client.ns.clone();
        self.haproxy = Some(spawn_in(&ns, false, &bin, &args, &env, &log, false)?);
        Ok(())
    }

    /// Index of the member called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.topo.members.iter().position(|h| h.name == name)
    }

    /// Copies each member's PostgreSQL log next to the agents' logs (the data directory is
    /// removed at the end).
    pub fn keep_postgres_logs(&self) {
        for (i, h) in self.topo.members.iter().enumerate() {
            let from = self.member_dir(i).join("data.log");
            let _ = std::fs::copy(
                &from,
                self.settings
                    .log_dir
                    .join(format!("{}.postgresql.log", h.name)),
            );
        }
    }

    fn agent_yaml(&self, h: &Host, dir: &Path) -> String {
        let a = h.addr;
        format!(
            r#"scope: {SCOPE}
namespace: /service/
name: {name}
restapi:
  listen: {a}:8008
  connect_address: {a}:8008
etcd3:
  hosts: {etcd}
bootstrap:
  dcs:
    ttl: {ttl}
    loop_wait: {loop_wait}
    retry_timeout: {retry}
    maximum_lag_on_failover: 1048576
    synchronous_mode: {sync}
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        max_connections: 60
        wal_keep_size: 128MB
        max_wal_senders: 10
        max_replication_slots: 10
  initdb:
    - encoding: UTF8
    - data-checksums
  pg_hba:
    - local all all trust
    # The observer opens a new connection every 100 ms per member (direct writers, health
    # probes): SCRAM's key derivation on each would cost more CPU than the writes themselves.
    - host all postgres {observer}/32 trust
    - host all all {subnet} md5
    - host replication replicator {subnet} md5
postgresql:
  listen: {a}:5432
  connect_address: {a}:5432
  data_dir: {data}
  bin_dir: {bin}
  pgpass: {dir}/pgpass
  authentication:
    superuser:
      username: postgres
      password: su-pass
    replication:
      username: replicator
      password: rep-pass
    rewind:
      username: rewind_user
      password: rewind-pass
  parameters:
    unix_socket_directories: {dir}
    shared_buffers: 16MB
tags:
  clonefrom: false
"#,
            name = h.name,
            observer = self.topo.observer.addr,
            subnet = self.topo.instance.subnet(),
            etcd = self.etcd_hosts(),
            ttl = self.settings.ttl,
            loop_wait = self.settings.loop_wait,
            retry = self.settings.retry_timeout,
            sync = self.settings.sync,
            data = dir.join("data").display(),
            bin = ha_tests::procs::pg_bindir().display(),
            dir = dir.display(),
        )
    }
}

/// Gives `path` to the `postgres` user.
fn chown_postgres(path: &Path) -> anyhow::Result<()> {
    let u = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .context("the OS user postgres is missing (apt-get install postgresql-15 creates it)")?;
    std::os::unix::fs::chown(path, Some(u.uid.as_raw()), Some(u.gid.as_raw()))
        .with_context(|| format!("chown postgres {}", path.display()))
}
