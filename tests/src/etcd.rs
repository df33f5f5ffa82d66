//! `EtcdProc`: one real single-node etcd for a test.
//!
//! The binary comes from `ETCD_BIN`, else `PATH`; a missing binary makes the test fail with
//! instructions (never a silent skip). Each process gets a fresh temp data dir and free loopback
//! ports (found by binding port 0; a start that loses a port race is retried on new ports), and
//! writes its output to `target/it-logs/<test>/etcd.log`. The process is killed when the
//! `EtcdProc` is dropped (`kill_on_drop`), also when it is SIGSTOPped.
//!
//! Request accounting: etcd serves Prometheus metrics on its client port. [`grpc_msgs_received`]
//! sums `grpc_server_msg_received_total`, i.e. the gRPC *messages etcd received*: a unary call
//! (Range, Put, Txn, LeaseGrant, ...) is one message, and every message sent on a stream is one
//! more (each lease keepalive; one per watch create). HTTP/2 pings are not counted. This is the
//! "requests" figure the request-budget tests and benchmarks compare.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::pki::CertFiles;
use crate::procs::free_port;
pub use crate::procs::{log_dir as test_log_dir, scaled};

/// How many times a start is retried on fresh ports when etcd exits during start-up.
const START_ATTEMPTS: usize = 4;

/// A running (or paused, or killed) etcd of one test.
pub struct EtcdProc {
    bin: PathBuf,
    data: TempDir,
    log_path: PathBuf,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
    tls: Option<EtcdTls>,
    root_password: Option<String>,
}

/// TLS for the client port: etcd's certificate, the CA it checks client certificates with
/// (`--client-cert-auth`), and the certificate the harness itself connects with.
#[derive(Debug, Clone)]
pub struct EtcdTls {
    /// CA of server and client certificates.
    pub ca: PathBuf,
    /// etcd's certificate (for 127.0.0.1 and localhost).
    pub server: CertFiles,
    /// The harness's client certificate.
    pub client: CertFiles,
    /// `--auth-token-ttl` in seconds (etcd's default is 300): a short one makes every client
    /// renew its token during a test.
    pub auth_token_ttl: Option<u32>,
}

fn etcd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ETCD_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "ETCD_BIN={} does not exist: install etcd-server (apt-get install etcd-server) or set ETCD_BIN",
            p.display()
        );
        return p;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "etcd not found in PATH: install etcd-server (apt-get install etcd-server) or set ETCD_BIN"
            )
        })
}

fn http_client(tls: Option<&EtcdTls>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2));
    if let Some(t) = tls {
        let ca = std::fs::read(&t.ca).expect("read ca");
        b = b
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("ca pem"))
            .identity(reqwest::Identity::from_pem(&t.client.identity_pem()).expect("identity"));
    }
    b.build().unwrap_or_else(|e| panic!("reqwest client: {e}"))
}

impl EtcdProc {
    /// Starts etcd with its log at `<log_dir>/etcd.log` and waits until it answers `/health`.
    pub async fn start(log_dir: &Path) -> EtcdProc {
        EtcdProc::start_with(log_dir, None).await
    }

    /// Starts etcd serving HTTPS on its client port and requiring client certificates signed
    /// by `tls.ca` (`--client-cert-auth`).
    pub async fn start_with(log_dir: &Path, tls: Option<EtcdTls>) -> EtcdProc {
        let bin = etcd_bin();
        std::fs::create_dir_all(log_dir)
            .unwrap_or_else(|e| panic!("create {}: {e}", log_dir.display()));
        // In memory when the machine has /dev/shm: etcd fsyncs every write, and on a busy
        // shared disk that can stall it for seconds, which is not what the tests are about
        // (etcd outages are injected on purpose).
        let shm = std::path::Path::new("/dev/shm");
        let mut b = tempfile::Builder::new();
        b.prefix("hapg-etcd-");
        let data = if shm.is_dir() {
            b.tempdir_in(shm)
        } else {
            b.tempdir()
        }
        .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let log_path = log_dir.join("etcd.log");
        // A fresh log per run; restarts append to it.
        File::create(&log_path).unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
        let mut p = EtcdProc {
            bin,
            data,
            log_path,
            client_port: 0,
            peer_port: 0,
            child: None,
            tls,
            root_password: None,
        };
        for attempt in 1..=START_ATTEMPTS {
            p.client_port = free_port();
            p.peer_port = free_port();
            if p.spawn_and_wait().await {
                return p;
            }
            tracing::warn!(attempt, "etcd did not come up, retrying on other ports");
            // A half-initialised data dir from the failed attempt must not be reused.
            let _ = std::fs::remove_dir_all(p.data_dir());
        }
        panic!(
            "etcd did not start after {START_ATTEMPTS} attempts; see {}",
            p.log_path.display()
        );
    }

    fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }

    fn log_file(&self) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log_path.display()))
    }

    /// Spawns etcd on the current ports and waits for `/health`; false if it exited or did not
    /// answer in time (the child is then killed).
    async fn spawn_and_wait(&mut self) -> bool {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = self.log_file();
        let err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("clone log file handle: {e}"));
        let mut cmd = Command::new(&self.bin);
        if let Some(t) = &self.tls {
            cmd.arg(format!("--cert-file={}", t.server.cert.display()))
                .arg(format!("--key-file={}", t.server.key.display()))
                .arg(format!("--trusted-ca-file={}", t.ca.display()))
                .arg("--client-cert-auth");
            if let Some(ttl) = t.auth_token_ttl {
                cmd.arg(format!("--auth-token-ttl={ttl}"));
            }
        }
        let child = cmd
            .arg("--name=test")
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--initial-cluster-state=new")
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        self.child = Some(child);
        let http = http_client(self.tls.as_ref());
        let deadline = tokio::time::Instant::now() + scaled(Duration::from_secs(20));
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                tracing::warn!(%status, "etcd exited during start-up");
                self.child = None;
                return false;
            }
            if let Ok(r) = http.get(format!("{client}/health")).send().await
                && r.status().is_success()
            {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                self.kill().await;
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The client URL, `http(s)://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// `127.0.0.1:<port>`, as an agent's `etcd3.hosts` names it.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The TLS settings, when etcd serves HTTPS.
    pub fn tls(&self) -> Option<&EtcdTls> {
        self.tls.as_ref()
    }

    /// Options for an `etcd_client` of the harness: TLS with the harness's certificate, and
    /// the root user once auth is enabled.
    pub fn client_options(&self) -> Option<etcd_client::ConnectOptions> {
        let mut o = etcd_client::ConnectOptions::new();
        let mut any = false;
        if let Some(t) = &self.tls {
            let read =
                |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            o = o.with_tls(
                etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(read(&t.ca)))
                    .identity(etcd_client::Identity::from_pem(
                        read(&t.client.cert),
                        read(&t.client.key),
                    ))
                    .domain_name("localhost"),
            );
            any = true;
        }
        if let Some(pw) = &self.root_password {
            o = o
                .with_user("root", pw.clone())
                .with_auto_token_refresh(true);
            any = true;
        }
        any.then_some(o)
    }

    /// A client of the harness (see [`EtcdProc::client_options`]).
    pub async fn client(&self) -> etcd_client::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        etcd_client::Client::connect([self.endpoint()], self.client_options())
            .await
            .unwrap_or_else(|e| panic!("etcd client for {}: {e}", self.endpoint()))
    }

    /// Turns on etcd's own authentication: user `root` (role root) with `root_password`, and
    /// user `user`/`password` with a role that may read and write everything under `prefix`.
    /// From then on every request needs a user (a token, or with `--client-cert-auth` the
    /// certificate's common name).
    pub async fn enable_auth(
        &mut self,
        root_password: &str,
        user: &str,
        password: &str,
        prefix: &str,
    ) {
        use etcd_client::Permission;
        let mut c = self.client().await;
        c.user_add("root", root_password, None)
            .await
            .expect("add root");
        c.user_grant_role("root", "root").await.expect("grant root");
        c.role_add(user).await.expect("add role");
        c.role_grant_permission(user, Permission::read_write(prefix).with_prefix())
            .await
            .expect("grant permission");
        c.user_add(user, password, None).await.expect("add user");
        c.user_grant_role(user, user).await.expect("grant role");
        c.auth_enable().await.expect("auth enable");
        self.root_password = Some(root_password.to_string());
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn pid(&self) -> Pid {
        let id = self
            .child
            .as_ref()
            .and_then(Child::id)
            .unwrap_or_else(|| panic!("etcd is not running"));
        Pid::from_raw(i32::try_from(id).unwrap_or_else(|e| panic!("pid {id}: {e}")))
    }

    /// Freezes etcd (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) {
        kill(self.pid(), Signal::SIGSTOP).unwrap_or_else(|e| panic!("SIGSTOP etcd: {e}"));
    }

    /// Thaws etcd (SIGCONT).
    pub fn resume(&self) {
        kill(self.pid(), Signal::SIGCONT).unwrap_or_else(|e| panic!("SIGCONT etcd: {e}"));
    }

    /// Kills etcd (SIGKILL) and waits for it; the data dir is kept for `restart`.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// Kills etcd if it runs, then starts it again with the same data dir and ports.
    pub async fn restart(&mut self) {
        self.kill().await;
        // The ports were ours a moment ago; another process taking one of them in between
        // would make this fail, which is reported rather than retried on other ports
        // because clients hold the old endpoint.
        assert!(
            self.spawn_and_wait().await,
            "etcd did not restart on port {}; see {}",
            self.client_port,
            self.log_path.display()
        );
    }

    /// etcd's Prometheus metrics (served on the client URL at `/metrics`).
    pub async fn metrics_text(&self) -> String {
        let url = format!("{}/metrics", self.endpoint());
        let resp = http_client(self.tls.as_ref())
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        resp.text()
            .await
            .unwrap_or_else(|e| panic!("GET {url} body: {e}"))
    }

    /// gRPC messages etcd has received so far, all methods or one (`Range`, `Txn`,
    /// `LeaseKeepAlive`, `Watch`, ...). See the module docs for what counts.
    pub async fn grpc_msgs_received(&self, method: Option<&str>) -> u64 {
        grpc_msgs_received(&self.metrics_text().await, method)
    }
}

/// Sums `grpc_server_msg_received_total` in a Prometheus text dump, over all methods or only
/// the lines labelled `grpc_method="<method>"`. This counts gRPC messages etcd received: one
/// per unary request and one per message on a stream (each lease keepalive, each watch
/// create); HTTP/2 pings are not included.
pub fn grpc_msgs_received(metrics: &str, method: Option<&str>) -> u64 {
    let label = method.map(|m| format!("grpc_method=\"{m}\""));
    metrics
        .lines()
        .filter(|l| l.starts_with("grpc_server_msg_received_total"))
        .filter(|l| label.as_ref().is_none_or(|lab| l.contains(lab.as_str())))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::grpc_msgs_received;

    #[test]
    fn sums_received_messages_per_method() {
        let text = "# HELP x\n\
            grpc_server_msg_received_total{grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 3\n\
            grpc_server_msg_received_total{grpc_method=\"LeaseKeepAlive\",grpc_service=\"etcdserverpb.Lease\",grpc_type=\"bidi_stream\"} 7\n\
            grpc_server_msg_sent_total{grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 3\n";
        assert_eq!(grpc_msgs_received(text, None), 10);
        assert_eq!(grpc_msgs_received(text, Some("Range")), 3);
        assert_eq!(grpc_msgs_received(text, Some("Txn")), 0);
    }
}
