//! Helpers for tests against real PostgreSQL: run a test body as the `postgres` OS user,
//! build member settings on free ports in a scratch directory, talk SQL to a node, poll
//! with deadlines, freeze and thaw a server.
//!
//! PostgreSQL refuses to run as root, and CI runs tests as root. `run_as_postgres` then
//! re-executes the current test binary for the same single test as the `postgres` user
//! (with a marker variable so the child runs the body) and asserts that the child ran the
//! body and succeeded. As any other user the body runs in-process.
//!
//! Server logs are copied to `target/it-logs/<test>/<node>-data.log` after each test.
//! Binaries come from `PG_BINDIR`, else `/usr/lib/postgresql/15/bin`; missing binaries fail
//! the test with instructions. Every node's server is stopped (`-m immediate`) when its
//! `PgNode` is dropped, and the tail of its log is printed if the test is failing.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ha_agent::ha::{ConnTarget, MemberName, PgState, RunningPg, Upstream};
use ha_agent::pg::local::LocalPostgres;
use ha_agent::pg::{Credentials, GucValue, PgSettings, PgStatus, Postgres};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Set in the re-executed child: the scratch directory (owned by `postgres`) it works in.
const CHILD_DIR: &str = "HA_TESTS_PG_CHILD_DIR";
/// File the child creates after its body succeeded, so a filter that matched no test
/// cannot pass silently.
const DONE_FILE: &str = "body-finished";

/// Runs `body` as the `postgres` OS user (see the module docs). `test_name` must be the
/// exact name of the calling test function.
pub fn run_as_postgres<F, Fut>(test_name: &str, body: F)
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = ()>,
{
    init_tracing();
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        let dir = PathBuf::from(dir);
        run_body(&dir, body);
        std::fs::write(dir.join(DONE_FILE), b"ok").expect("write the completion marker");
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        let scratch = tempfile::Builder::new()
            .prefix("hapg-pg-")
            .tempdir_in("/tmp")
            .expect("create a scratch directory in /tmp");
        let _logs = KeepLogs::new(scratch.path(), test_name);
        run_body(scratch.path(), body);
        return;
    }
    let user = nix::unistd::User::from_name("postgres")
        .expect("look up the OS user `postgres`")
        .expect("PostgreSQL refuses root and there is no OS user `postgres` to run the test as: create it (apt-get install postgresql-15 does) or run the tests as a non-root user");
    let scratch = tempfile::Builder::new()
        .prefix("hapg-pg-")
        .tempdir_in("/tmp")
        .expect("create a scratch directory in /tmp");
    nix::unistd::chown(scratch.path(), Some(user.uid), Some(user.gid))
        .expect("hand the scratch directory to `postgres`");
    let exe = std::env::current_exe().expect("find the test binary");
    let _logs = KeepLogs::new(scratch.path(), test_name);
    tracing::info!(test = test_name, "--- re-running as OS user postgres");
    let status = std::process::Command::new(&exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, scratch.path())
        .env("HOME", &user.dir)
        .env("USER", "postgres")
        .current_dir(scratch.path())
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .status()
        .expect("re-run the test binary as `postgres`");
    assert!(status.success(), "test body (as postgres) failed: {status}");
    assert!(
        scratch.path().join(DONE_FILE).exists(),
        "the re-run as postgres did not run the body of {test_name:?} (wrong test name?)"
    );
}

/// Copies the server logs (`<scratch>/<node>/*.log`) to `target/it-logs/<test>/` when
/// dropped, i.e. also when the test fails, before the scratch directory is removed.
struct KeepLogs {
    scratch: PathBuf,
    dest: Option<PathBuf>,
}

impl KeepLogs {
    fn new(scratch: &Path, test_name: &str) -> KeepLogs {
        // The test binary lives in target/<profile>/deps/.
        let dest = std::env::current_exe().ok().and_then(|exe| {
            exe.ancestors()
                .nth(3)
                .map(|target| target.join("it-logs").join(test_name))
        });
        KeepLogs {
            scratch: scratch.to_path_buf(),
            dest,
        }
    }
}

impl Drop for KeepLogs {
    fn drop(&mut self) {
        let Some(dest) = &self.dest else { return };
        let nodes = std::fs::read_dir(&self.scratch)
            .into_iter()
            .flatten()
            .flatten();
        for node in nodes.filter(|n| n.path().is_dir()) {
            for file in std::fs::read_dir(node.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "log")
                    && std::fs::create_dir_all(dest).is_ok()
                {
                    let name = format!(
                        "{}-{}",
                        node.file_name().to_string_lossy(),
                        file.file_name().to_string_lossy()
                    );
                    let _ = std::fs::copy(&path, dest.join(name));
                }
            }
        }
    }
}

fn run_body<F, Fut>(dir: &Path, body: F)
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a tokio runtime");
    rt.block_on(body(dir.to_path_buf()));
}

pub use crate::procs::{free_port, init_tracing, pg_bindir as bin_dir, scaled, wait_for};

/// Superuser password of every test node.
pub const SUPERUSER_PASSWORD: &str = "su-pass'\\";

/// One member: its `LocalPostgres` and where it lives.
pub struct PgNode {
    /// The implementation under test.
    pub pg: LocalPostgres,
    /// Member name.
    pub name: String,
    /// Its port.
    pub port: u16,
    /// `<scratch>/<name>`: socket directory, pgpass, data directory, server log.
    pub home: PathBuf,
}

impl PgNode {
    /// A node named `name` under `scratch` on a free port (nothing is created yet except its
    /// home directory).
    pub fn new(scratch: &Path, name: &str) -> PgNode {
        let home = scratch.join(name);
        std::fs::create_dir_all(&home).expect("create the node's directory");
        let port = free_port();
        let pg = LocalPostgres::new(settings(&home, name, port));
        PgNode {
            pg,
            name: name.to_string(),
            port,
            home,
        }
    }

    /// Where others reach it.
    pub fn upstream(&self) -> Upstream {
        Upstream {
            name: MemberName::new(&self.name),
            conn: ConnTarget {
                host: "127.0.0.1".into(),
                port: self.port,
            },
        }
    }

    /// Its data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.home.join("data")
    }

    /// The data directory's system identifier (PostgreSQL running or stopped).
    pub async fn sysid(&self) -> String {
        match self.status().await.state {
            ha_agent::ha::PgState::Running(r) => r.sysid,
            ha_agent::ha::PgState::Stopped(s) => s.sysid,
            other => panic!("no system identifier in state {other:?}"),
        }
    }

    /// `status()`.
    pub async fn status(&self) -> PgStatus {
        self.pg.status().await
    }

    /// Waits until `status()` shows a running instance that satisfies `ok`.
    pub async fn wait_running(
        &self,
        what: &str,
        limit: Duration,
        ok: impl Fn(&RunningPg, &PgStatus) -> bool,
    ) -> (RunningPg, PgStatus) {
        wait_for(&format!("{}: {what}", self.name), limit, || async {
            let st = self.status().await;
            match &st.state {
                PgState::Running(r) if ok(r, &st) => Some((r.clone(), st.clone())),
                _ => None,
            }
        })
        .await
    }

    /// A fresh superuser connection over the Unix socket.
    pub async fn client(&self) -> tokio_postgres::Client {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(self.home.to_str().expect("utf-8 path"))
            .port(self.port)
            .user("postgres")
            .password(SUPERUSER_PASSWORD)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(5));
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.name));
        tokio::spawn(conn);
        client
    }

    /// The postmaster's pid, if one runs.
    pub fn postmaster_pid(&self) -> Option<i32> {
        ha_agent::pg::postmaster::running(&self.data_dir()).map(|p| p.pid)
    }

    /// The postmaster and all its children.
    pub fn server_pids(&self) -> Vec<i32> {
        let Some(pm) = self.postmaster_pid() else {
            return Vec::new();
        };
        let mut pids = vec![pm];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(pm) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for PgNode {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.pg.server_log();
            eprintln!(
                "--- last lines of {} ({}):\n{}",
                self.name,
                log.display(),
                ha_agent::pg::ctl::log_tail(&log, 40)
            );
        }
        // Thaw first: a stopped server would ignore the stop request.
        for pid in self.server_pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
        if self.postmaster_pid().is_some() {
            let _ = std::process::Command::new(self.pg.settings().bin_dir.join("pg_ctl"))
                .args(["stop", "-m", "immediate", "-w", "-D"])
                .arg(self.data_dir())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// SIGSTOPs a set of processes and SIGCONTs them when dropped.
pub struct Frozen(Vec<i32>);

impl Frozen {
    /// Stops every process in `pids`.
    pub fn freeze(pids: Vec<i32>) -> Frozen {
        for &pid in &pids {
            kill(Pid::from_raw(pid), Signal::SIGSTOP).expect("SIGSTOP");
        }
        Frozen(pids)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }
}

/// The settings of a test member: scram everywhere (so passwords and the pgpass file are
/// really used), a dedicated rewind user, small memory, no fsync.
pub fn settings(home: &Path, name: &str, port: u16) -> PgSettings {
    let param = |v: &str| GucValue::Str(v.to_string());
    PgSettings {
        scope: "pgtest".into(),
        member: name.into(),
        data_dir: home.join("data"),
        bin_dir: bin_dir(),
        listen_addresses: "127.0.0.1".into(),
        port,
        connect_address: ConnTarget {
            host: "127.0.0.1".into(),
            port,
        },
        local_host: home.to_string_lossy().into_owned(),
        superuser: Credentials {
            username: "postgres".into(),
            password: Some(SUPERUSER_PASSWORD.into()),
            ..Default::default()
        },
        replication: Credentials {
            username: "replicator".into(),
            password: Some("rep:pass".into()),
            ..Default::default()
        },
        rewind: Some(Credentials {
            username: "rewinder".into(),
            password: Some("rewind-pass".into()),
            ..Default::default()
        }),
        parameters: BTreeMap::from([
            (
                "unix_socket_directories".into(),
                param(&home.to_string_lossy()),
            ),
            ("wal_level".into(), param("replica")),
            ("hot_standby".into(), GucValue::Bool(true)),
            ("wal_log_hints".into(), GucValue::Bool(true)),
            ("max_wal_senders".into(), GucValue::Int(10)),
            ("max_replication_slots".into(), GucValue::Int(10)),
            ("shared_buffers".into(), param("16MB")),
            ("fsync".into(), GucValue::Bool(false)),
            ("max_connections".into(), GucValue::Int(30)),
        ]),
        pg_hba: Some(vec![
            "local all all scram-sha-256".into(),
            "host all all 127.0.0.1/32 scram-sha-256".into(),
            "host replication all 127.0.0.1/32 scram-sha-256".into(),
        ]),
        bootstrap_pg_hba: None,
        initdb_args: vec!["--no-sync".into(), "--encoding=UTF8".into()],
        basebackup_args: vec!["--no-sync".into()],
        pgpass: home.join("pgpass"),
        use_slots: true,
        callbacks: BTreeMap::new(),
        repo_clone: None,
        repo_bootstrap: None,
    }
}

/// A bootstrapped primary and a replica cloned from it, streaming through its slot.
pub async fn primary_and_replica(scratch: &Path) -> (PgNode, PgNode) {
    let a = PgNode::new(scratch, "pg-a");
    let b = PgNode::new(scratch, "pg-b");
    a.pg.bootstrap().await.expect("bootstrap pg-a");
    a.pg.sync_slots(&[MemberName::new("pg-a"), MemberName::new("pg-b")], &[])
        .await
        .expect("slots on pg-a");
    b.pg.create_replica(&a.upstream(), &a.sysid().await)
        .await
        .expect("clone pg-b");
    b.pg.start(&ha_agent::ha::StartAs::Replica {
        upstream: Some(a.upstream()),
    })
    .await
    .expect("start pg-b");
    b.wait_running("streaming replica", Duration::from_secs(30), |r, _| {
        r.streaming
    })
    .await;
    (a, b)
}
