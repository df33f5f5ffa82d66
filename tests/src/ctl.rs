//! Running the operator CLIs against a test cluster: the real `hactl` binary of this
//! workspace, and the real `patronictl` from PyPI installed into a venv cached under
//! `target/patronictl-venv` (so only the first run needs PyPI).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::procs::{scaled, workspace_bin, workspace_root};

/// What a CLI run produced.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// Exit code (-1 when killed by a signal or timed out).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// Panics with both streams unless the exit code is 0.
    pub fn ok(self) -> CliOutput {
        assert_eq!(self.code, 0, "command failed: {self}");
        self
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The `hactl` binary (`HACTL_BIN`, else `target/{debug,release}/hactl`).
pub fn hactl_bin() -> PathBuf {
    workspace_bin("hactl")
}

/// Runs `program args...` with `stdin` (closed when `None`), killing it after `timeout`
/// (scaled by `HA_TEST_TIMEOUT_MULTIPLIER`).
pub async fn run(
    program: &Path,
    args: &[&str],
    stdin: Option<&str>,
    timeout: Duration,
) -> CliOutput {
    run_env(program, args, stdin, timeout, &[]).await
}

/// [`run`] with `env` added to the environment.
pub async fn run_env(
    program: &Path,
    args: &[&str],
    stdin: Option<&str>,
    timeout: Duration,
    env: &[(&str, &str)],
) -> CliOutput {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().copied())
        .env_remove("HACTL_CONFIG")
        .env_remove("HACTL_DCS_URL")
        .env_remove("PATRONICTL_CONFIG_FILE")
        .env_remove("DCS_URL")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
        drop(pipe);
    }
    match tokio::time::timeout(scaled(timeout), child.wait_with_output()).await {
        Ok(Ok(out)) => CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Ok(Err(e)) => panic!("waiting for {}: {e}", program.display()),
        Err(_) => panic!(
            "{} {} did not finish within {:?}",
            program.display(),
            args.join(" "),
            scaled(timeout)
        ),
    }
}

/// Runs `hactl -c <config> args...` with stdin closed.
pub async fn hactl(config: &Path, args: &[&str]) -> CliOutput {
    let mut all = vec!["-c", config.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run(&hactl_bin(), &all, None, Duration::from_secs(120)).await
}

/// [`hactl`] with `env` added to its environment (e.g. `PGPASSWORD` for `query`).
pub async fn hactl_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let mut all = vec!["-c", config.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run_env(&hactl_bin(), &all, None, Duration::from_secs(120), env).await
}

/// The Patroni version installed for the compatibility tests (the one the reference
/// outputs in shared/patroni-reference were captured with).
pub const PATRONI_VERSION: &str = "4.1.5";

/// `patronictl` from a venv under `target/patronictl-venv`, created with `python3 -m venv`
/// and `pip install "patroni[etcd3,psycopg3]==<PATRONI_VERSION>"` on first use. Panics with
/// instructions when Python or PyPI is unavailable (the test fails, it is not skipped).
pub fn patronictl_bin() -> PathBuf {
    let venv = workspace_root().join("target").join("patronictl-venv");
    let bin = venv.join("bin").join("patronictl");
    let stamp = venv.join(format!("installed-{PATRONI_VERSION}"));
    if bin.exists() && stamp.exists() {
        return bin;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let st = std::process::Command::new(&python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} to create a venv: {e}; install python3 and python3-venv (or set PYTHON)")
        });
    assert!(
        st.success(),
        "{python} -m venv {} failed: install python3-venv (or set PYTHON)",
        venv.display()
    );
    let spec = format!("patroni[etcd3,psycopg3]=={PATRONI_VERSION}");
    let out = std::process::Command::new(venv.join("bin").join("pip"))
        .args(["install", "--disable-pip-version-check", "-q", &spec])
        .output()
        .expect("run pip");
    assert!(
        out.status.success(),
        "pip install \"{spec}\" failed: PyPI must be reachable for the patronictl compatibility tests\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        bin.exists(),
        "pip installed patroni but {} is missing",
        bin.display()
    );
    std::fs::write(&stamp, "").expect("write venv stamp");
    bin
}

/// Runs `patronictl -c <config> args...` with `stdin` (closed when `None`).
pub async fn patronictl(config: &Path, args: &[&str], stdin: Option<&str>) -> CliOutput {
    let bin = tokio::task::spawn_blocking(patronictl_bin)
        .await
        .expect("installing patronictl");
    let mut all = vec!["-c", config.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run(&bin, &all, stdin, Duration::from_secs(120)).await
}

/// Whether every member record in etcd says `running`, `leader` as primary and the others as
/// streaming replicas. (A record can show `replication_state: streaming` while its `state` is
/// still `creating replica`; patronictl and hactl then list it as streaming, but the agents
/// refuse it as a switchover candidate, so tests wait for this.)
pub async fn records_settled(c: &crate::cluster::TestCluster, leader: &str) -> bool {
    for n in &c.nodes {
        let Some(text) = c.etcd_get(&format!("members/{}", n.name)).await else {
            return false;
        };
        let Ok(r) = serde_json::from_str::<serde_json::Value>(&text) else {
            return false;
        };
        let ok = r["state"] == "running"
            && if n.name == leader {
                r["role"] == "primary"
            } else {
                r["role"] == "replica" && r["replication_state"] == "streaming"
            };
        if !ok {
            return false;
        }
    }
    true
}
