//! Process plumbing shared by the harness: binaries, free ports, log files, running as the
//! unprivileged `postgres` user when the tests run as root, deadlines that scale with
//! `HA_TEST_TIMEOUT_MULTIPLIER`, and polling.

use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate has a parent")
        .to_path_buf()
}

/// A binary of this workspace: `HA_AGENT_BIN`-style override `<NAME>_BIN` (upper case, `-` →
/// `_`), else `target/{debug,release}/<name>`, newest first.
pub fn workspace_bin(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Ok(p) = std::env::var(&var) {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let candidates: Vec<PathBuf> = ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join(name))
        .filter(|p| p.exists())
        .collect();
    candidates
        .into_iter()
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not built: run `cargo build -p ha-agent -p hactl` first, or set {var}"
            )
        })
}

/// An external program: `$<VAR>` if set, else the first of `candidates` that exists, else PATH.
/// Panics with installation instructions when missing (a missing binary fails, never skips).
pub fn system_bin(var: &str, candidates: &[&str], install_hint: &str) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() && p.exists() {
            return p.to_path_buf();
        }
        if let Some(found) = which(c) {
            return found;
        }
    }
    panic!(
        "{} not found: {install_hint} (or set {var})",
        candidates.join(" / ")
    )
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// PostgreSQL's binaries: `PG_BINDIR` or `/usr/lib/postgresql/15/bin`.
pub fn pg_bindir() -> PathBuf {
    let dir = std::env::var_os("PG_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    for tool in [
        "initdb",
        "pg_ctl",
        "postgres",
        "pg_controldata",
        "pg_basebackup",
        "pg_rewind",
    ] {
        assert!(
            dir.join(tool).is_file(),
            "{} not found: install PostgreSQL 15 (apt-get install postgresql-15) or set PG_BINDIR \
             to the directory holding initdb, pg_ctl, postgres, pg_basebackup and pg_rewind",
            dir.join(tool).display()
        );
    }
    dir
}

/// A free loopback TCP port (the kernel picks it; there is a small race until it is used).
/// Never hands out the same port twice in one test process: the kernel happily returns a
/// just-released port to the next `bind(0)`, which made two members of one cluster collide.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        let mut given = GIVEN.lock().expect("ports");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// `target/it-logs/<test>/`, created.
pub fn log_dir(test: &str) -> PathBuf {
    let d = workspace_root().join("target").join("it-logs").join(test);
    std::fs::create_dir_all(&d).expect("create log dir");
    d
}

/// The last `n` lines of a file, for failure reports.
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// The OS user PostgreSQL and the agent run as: ourselves, or `postgres` when we are root.
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    /// uid, or None to keep ours.
    pub uid: Option<u32>,
    /// gid.
    pub gid: Option<u32>,
}

impl RunAs {
    /// `postgres` when running as root, else the current user.
    pub fn unprivileged() -> RunAs {
        if !nix::unistd::geteuid().is_root() {
            return RunAs {
                uid: None,
                gid: None,
            };
        }
        let u = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .expect("tests run as root need the OS user `postgres` (apt-get install postgresql-15 creates it)");
        RunAs {
            uid: Some(u.uid.as_raw()),
            gid: Some(u.gid.as_raw()),
        }
    }

    /// Applies the user to a command.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        if let (Some(uid), Some(gid)) = (self.uid, self.gid) {
            cmd.as_std_mut().uid(uid).gid(gid);
        }
    }

    /// Gives `path` (recursively for directories created by the harness) to the user.
    pub fn chown(&self, path: &Path) {
        if let (Some(uid), Some(gid)) = (self.uid, self.gid) {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
        }
    }
}

/// A temporary directory the unprivileged user can use (under /tmp, mode 0755, owned by it).
pub fn user_tempdir(run_as: &RunAs, prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("tempdir");
    run_as.chown(d.path());
    d
}

/// Scales a deadline by `HA_TEST_TIMEOUT_MULTIPLIER` (default 1).
pub fn scaled(d: Duration) -> Duration {
    let m: f64 = std::env::var("HA_TEST_TIMEOUT_MULTIPLIER")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    d.mul_f64(m.max(0.1))
}

/// Polls `f` every 100 ms until it returns `Some`, or panics with `what` after `timeout`
/// (scaled).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + scaled(timeout);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {:?} waiting for {what}", scaled(timeout));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `sig` to `pid`, ignoring a process that is already gone.
pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig);
}

/// Whether `pid` is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Installs a test log subscriber once (phases print as `--- ...` lines).
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_test_writer()
            .try_init();
    });
}
