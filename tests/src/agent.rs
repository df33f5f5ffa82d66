//! `AgentProc`: one real `ha-agent` process with its own PostgreSQL data directory, API port
//! and PostgreSQL port, run as the unprivileged user, logging to `target/it-logs/<test>/<name>.log`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::process::{Child, Command};

use crate::procs::{RunAs, alive, free_port, pg_bindir, signal, tail, workspace_bin};

/// Cluster-wide settings written into every agent's YAML.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// `scope`.
    pub scope: String,
    /// `bootstrap.dcs.ttl`.
    pub ttl: u64,
    /// `bootstrap.dcs.loop_wait`.
    pub loop_wait: u64,
    /// `bootstrap.dcs.retry_timeout`.
    pub retry_timeout: u64,
    /// `bootstrap.dcs.postgresql.use_pg_rewind`.
    pub use_pg_rewind: bool,
    /// `bootstrap.dcs.primary_start_timeout`.
    pub primary_start_timeout: u64,
    /// `restapi.authentication` (user, password).
    pub api_auth: Option<(String, String)>,
    /// PostgreSQL's `fsync` (off in tests for speed; benchmarks turn it on).
    pub fsync: bool,
    /// The agent binary (default: the workspace's newest `ha-agent` build).
    pub agent_bin: Option<PathBuf>,
    /// `RUST_LOG` for the agents (default `HA_AGENT_LOG`, else `info,ha_agent=debug`).
    pub agent_log: Option<String>,
    /// Extra YAML (TLS, allowlists, ...) for the security tests.
    pub extra: ExtraYaml,
    /// More `bootstrap.dcs` settings, as YAML lines indented by four spaces
    /// (e.g. `"    failsafe_mode: true\n"`).
    pub extra_dcs: String,
    /// More top-level sections, as YAML (e.g. `"watchdog:\n  mode: required\n"`); a
    /// `{dir}` in it is replaced by the member's directory.
    pub extra_yaml: String,
}

/// Lines added to sections of every member's YAML, each `key: value` (nested values indented
/// relative to the section).
#[derive(Debug, Clone, Default)]
pub struct ExtraYaml {
    /// Under `restapi:`.
    pub restapi: Vec<String>,
    /// A `ctl:` section.
    pub ctl: Vec<String>,
    /// Under `etcd3:` (besides `hosts`).
    pub etcd3: Vec<String>,
    /// Under `postgresql.authentication.replication:`.
    pub replication: Vec<String>,
    /// Under `postgresql.authentication.superuser:`.
    pub superuser: Vec<String>,
    /// Under `postgresql.authentication.rewind:`.
    pub rewind: Vec<String>,
    /// Under `postgresql.parameters:` (local parameters).
    pub parameters: Vec<String>,
    /// Under `postgresql:` (e.g. `create_replica_methods: [pgbackrest, basebackup]`).
    pub postgresql: Vec<String>,
    /// Under `bootstrap:` (e.g. `method: pgbackrest`).
    pub bootstrap: Vec<String>,
    /// `bootstrap.pg_hba` instead of the default (trust locally, md5 on 127.0.0.1).
    pub pg_hba: Option<Vec<String>>,
}

fn indent(lines: &[String], n: usize) -> String {
    lines
        .iter()
        .map(|l| format!("{}{l}\n", " ".repeat(n)))
        .collect()
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            scope: format!("it{}", std::process::id()),
            ttl: 10,
            loop_wait: 2,
            retry_timeout: 3,
            use_pg_rewind: true,
            primary_start_timeout: 300,
            api_auth: None,
            fsync: false,
            agent_bin: None,
            agent_log: None,
            extra: ExtraYaml::default(),
            extra_dcs: String::new(),
            extra_yaml: String::new(),
        }
    }
}

/// One member: its ports, files and (when started) process.
pub struct AgentProc {
    /// Member name.
    pub name: String,
    /// REST API port.
    pub api_port: u16,
    /// PostgreSQL port.
    pub pg_port: u16,
    /// The member's directory (config, data dir, pgpass, PostgreSQL log).
    pub dir: PathBuf,
    /// etcd endpoints as the agent sees them (`host:port,...`).
    pub etcd_hosts: String,
    /// Extra YAML under `tags:`.
    pub tags: Vec<(String, String)>,
    log: PathBuf,
    run_as: RunAs,
    child: Option<Child>,
}

impl AgentProc {
    /// A member `name` under `parent` (not started; config written by `start`).
    pub fn new(
        name: &str,
        parent: &Path,
        etcd_hosts: String,
        log_dir: &Path,
        run_as: RunAs,
    ) -> AgentProc {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).expect("member dir");
        run_as.chown(&dir);
        AgentProc {
            name: name.to_string(),
            api_port: free_port(),
            pg_port: free_port(),
            dir,
            etcd_hosts,
            tags: Vec::new(),
            log: log_dir.join(format!("{name}.log")),
            run_as,
            child: None,
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The agent's config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("agent.yml")
    }

    /// The agent's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The PostgreSQL server log written by the agent (beside the data directory).
    pub fn pg_log_path(&self) -> PathBuf {
        self.dir.join("data.log")
    }

    /// `http://127.0.0.1:<api>`.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// The YAML this member runs with.
    pub fn config_yaml(&self, c: &ClusterSettings) -> String {
        let auth = match &c.api_auth {
            Some((u, p)) => format!("  authentication:\n    username: {u}\n    password: {p}\n"),
            None => String::new(),
        };
        let tags: String = self
            .tags
            .iter()
            .map(|(k, v)| format!("  {k}: {v}\n"))
            .collect();
        let x = &c.extra;
        let ctl = if x.ctl.is_empty() {
            String::new()
        } else {
            format!("ctl:\n{}", indent(&x.ctl, 2))
        };
        let pg_hba = x.pg_hba.clone().unwrap_or_else(|| {
            vec![
                "local all all trust".into(),
                "host all all 127.0.0.1/32 md5".into(),
                "host replication replicator 127.0.0.1/32 md5".into(),
            ]
        });
        let pg_hba = indent(
            &pg_hba.iter().map(|l| format!("- {l}")).collect::<Vec<_>>(),
            4,
        );
        format!(
            r#"scope: {scope}
namespace: /service/
name: {name}
restapi:
  listen: 127.0.0.1:{api}
  connect_address: 127.0.0.1:{api}
{auth}{restapi_extra}{ctl}etcd3:
  hosts: {etcd}
{etcd3_extra}bootstrap:
{bootstrap_extra}  dcs:
    ttl: {ttl}
    loop_wait: {loop_wait}
    retry_timeout: {retry}
    maximum_lag_on_failover: 1048576
    primary_start_timeout: {pst}
{extra_dcs}    postgresql:
      use_pg_rewind: {rewind}
      use_slots: true
      parameters:
        max_connections: 40
        wal_keep_size: 64MB
        max_wal_senders: 10
        max_replication_slots: 10
  initdb:
    - encoding: UTF8
    - data-checksums
  pg_hba:
{pg_hba}postgresql:
  listen: 127.0.0.1:{pg}
  connect_address: 127.0.0.1:{pg}
  data_dir: {data}
  bin_dir: {bin}
  pgpass: {dir}/pgpass
  authentication:
    superuser:
      username: postgres
      password: su-pass
{superuser_extra}    replication:
      username: replicator
      password: rep-pass
{replication_extra}    rewind:
      username: rewind_user
      password: rewind-pass
{rewind_extra}{postgresql_extra}  parameters:
    unix_socket_directories: {dir}
    shared_buffers: 16MB
    fsync: {fsync}
{parameters_extra}tags:
  clonefrom: false
{tags}{extra_yaml}"#,
            extra_dcs = c.extra_dcs,
            extra_yaml = c
                .extra_yaml
                .replace("{dir}", &self.dir.display().to_string()),
            scope = c.scope,
            name = self.name,
            api = self.api_port,
            etcd = self.etcd_hosts,
            ttl = c.ttl,
            loop_wait = c.loop_wait,
            retry = c.retry_timeout,
            pst = c.primary_start_timeout,
            rewind = c.use_pg_rewind,
            pg = self.pg_port,
            data = self.data_dir().display(),
            bin = pg_bindir().display(),
            dir = self.dir.display(),
            fsync = if c.fsync { "on" } else { "off" },
            restapi_extra = indent(&x.restapi, 2),
            etcd3_extra = indent(&x.etcd3, 2),
            replication_extra = indent(&x.replication, 6),
            superuser_extra = indent(&x.superuser, 6),
            rewind_extra = indent(&x.rewind, 6),
            parameters_extra = indent(&x.parameters, 4),
            postgresql_extra = indent(&x.postgresql, 2),
            bootstrap_extra = indent(&x.bootstrap, 2),
        )
    }

    /// Writes the config and starts the agent.
    pub fn start(&mut self, c: &ClusterSettings) {
        assert!(self.child.is_none(), "{} already started", self.name);
        let path = self.config_path();
        std::fs::write(&path, self.config_yaml(c)).expect("write agent config");
        self.run_as.chown(&path);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open agent log");
        let log2 = log.try_clone().expect("clone log fd");
        let bin = c
            .agent_bin
            .clone()
            .unwrap_or_else(|| workspace_bin("ha-agent"));
        let mut cmd = Command::new(bin);
        // The unprivileged user's own home: libpq looks for ~/.postgresql/postgresql.crt when
        // it negotiates TLS, and fails on root's unreadable home inherited from the test.
        cmd.arg(&path)
            .env("HOME", &self.dir)
            .env(
                "RUST_LOG",
                c.agent_log.clone().unwrap_or_else(|| {
                    std::env::var("HA_AGENT_LOG").unwrap_or_else(|_| "info,ha_agent=debug".into())
                }),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true);
        self.run_as.apply(&mut cmd);
        self.child = Some(cmd.spawn().expect("spawn ha-agent"));
    }

    /// The agent's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Whether the agent was started and has not been reaped.
    pub fn is_started(&self) -> bool {
        self.child.is_some()
    }

    /// The postmaster's pid from `postmaster.pid`, if it runs.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let s = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        let pid: u32 = s.lines().next()?.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }

    /// The fence process's pid (from its lock file), if one runs.
    pub fn fence_pid(&self) -> Option<u32> {
        let mut lock = self.data_dir().into_os_string();
        lock.push(".fence.sock.lock");
        let s = std::fs::read_to_string(lock).ok()?;
        let pid: u32 = s.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }

    /// kill -9 of the fence process only.
    pub fn kill_fence(&self) -> Option<u32> {
        let pid = self.fence_pid()?;
        signal(pid, Signal::SIGKILL);
        Some(pid)
    }

    /// kill -9 of the agent alone: PostgreSQL (and the fence) keep running.
    pub async fn kill_agent_only(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, Signal::SIGKILL);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait().await;
        }
    }

    /// kill -9 of the agent, its fence and its postmaster (the whole node dies).
    pub async fn kill_node(&mut self) {
        let pm = self.postmaster_pid();
        self.kill_fence();
        if let Some(pid) = self.pid() {
            signal(pid, Signal::SIGKILL);
        }
        if let Some(pm) = pm {
            signal(pm, Signal::SIGKILL);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait().await;
        }
        // The postmaster's children die with it (they notice the postmaster is gone).
        if let Some(pm) = pm {
            for _ in 0..100 {
                if !alive(pm) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// SIGSTOPs the postmaster and every process it started (a hung PostgreSQL); returns the
    /// pids for `thaw_postgres`.
    pub fn freeze_postgres(&self) -> Vec<u32> {
        let Some(pm) = self.postmaster_pid() else {
            return Vec::new();
        };
        let mut pids = vec![pm];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(pm) {
                pids.push(pid);
            }
        }
        for p in &pids {
            signal(*p, Signal::SIGSTOP);
        }
        pids
    }

    /// SIGCONTs what `freeze_postgres` stopped.
    pub fn thaw_postgres(pids: &[u32]) {
        for p in pids {
            signal(*p, Signal::SIGCONT);
        }
    }

    /// kill -9 of the postmaster only (the agent lives on).
    pub fn kill_postmaster(&self) -> Option<u32> {
        let pm = self.postmaster_pid()?;
        signal(pm, Signal::SIGKILL);
        Some(pm)
    }

    /// Sends a signal to the agent.
    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = self.pid() {
            signal(pid, sig);
        }
    }

    /// SIGTERM, then waits for the agent to exit (at most `timeout`); returns its exit code.
    pub async fn stop(&mut self, timeout: Duration) -> Option<i32> {
        self.signal(Signal::SIGTERM);
        self.wait_exit(timeout).await
    }

    /// Waits for the agent to exit; kills it after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut c = self.child.take()?;
        match tokio::time::timeout(timeout, c.wait()).await {
            Ok(Ok(st)) => st.code(),
            _ => {
                let _ = c.kill().await;
                None
            }
        }
    }

    /// A connection to this member's PostgreSQL as the superuser.
    pub async fn client(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        connect(self.pg_port).await
    }

    /// GET `path` on the REST API: status code and JSON body (Null when not JSON).
    pub async fn api_get(&self, path: &str) -> Option<(u16, serde_json::Value)> {
        let r = http()
            .get(format!("{}{path}", self.api_base()))
            .send()
            .await
            .ok()?;
        let code = r.status().as_u16();
        let body = r.json().await.unwrap_or(serde_json::Value::Null);
        Some((code, body))
    }

    /// The tail of the agent's and PostgreSQL's logs.
    pub fn log_tails(&self, n: usize) -> String {
        format!(
            "----- {} agent log ({}) -----\n{}\n----- {} postgres log -----\n{}",
            self.name,
            self.log.display(),
            tail(&self.log, n),
            self.name,
            tail(&self.pg_log_path(), n / 2)
        )
    }
}

impl Drop for AgentProc {
    /// Kills the fence, the agent and then its PostgreSQL: a postmaster (and a fence) outlives
    /// its agent otherwise and would keep running (and holding ports and memory) after the
    /// test.
    fn drop(&mut self) {
        let pm = self.postmaster_pid();
        self.kill_fence();
        if let Some(pid) = self.pid() {
            signal(pid, Signal::SIGKILL);
        }
        if let Some(pm) = pm {
            signal(pm, Signal::SIGKILL);
        }
    }
}

/// A connection to PostgreSQL on `port` as the test superuser (password auth over TCP).
pub async fn connect(port: u16) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .password("su-pass")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(2))
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// A shared HTTP client for the API (no proxies, short timeouts).
pub fn http() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(3))
                .build()
                .expect("http client")
        })
        .clone()
}
