//! Processes on the campaign's hosts: started with `ip netns exec` (and `setpriv` to the
//! `postgres` user for the agents, which refuse root), output appended to a log file, killed
//! when dropped. Finding a host's processes goes by namespace (`ip netns pids`), which also
//! finds what an agent started on its own (PostgreSQL, the fence). Each service gets a process
//! group of its own.

use std::path::Path;
use std::process::Stdio;

use anyhow::Context;
use nix::sys::signal::Signal;
use tokio::process::{Child, Command};

/// Starts `program args` in namespace `ns`, as `postgres` when `as_postgres`, with `env`
/// set, stdout and stderr appended to `log`, stdin closed or piped. The child's pid is the
/// program's own (`ip netns exec` and `setpriv` exec, they do not fork).
pub fn spawn_in(
    ns: &str,
    as_postgres: bool,
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    log: &Path,
    piped_stdin: bool,
) -> anyhow::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    let err = out.try_clone().context("clone log handle")?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]);
    if as_postgres {
        cmd.args([
            "setpriv",
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ]);
        // The agent's and PostgreSQL's tools look at HOME; root's would not be readable.
        cmd.env("HOME", "/var/lib/postgresql");
        cmd.env("USER", "postgres");
    }
    cmd.arg(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if piped_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        // A process group of its own. In the campaign's group, a SIGSTOPped agent would be
        // woken by the kernel (SIGHUP + SIGCONT to a stopped member of an orphaned group,
        // sent when any process of the group exits) as soon as the campaign runs detached
        // from a terminal, and a Ctrl-C in a terminal would hit every service at once.
        .process_group(0);
    cmd.spawn()
        .with_context(|| format!("start {} in {ns}", program.display()))
}

/// Sends `sig` to `pid`, ignoring a process that is already gone.
pub fn signal(pid: u32, sig: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig);
}

/// The command name of `pid` (`/proc/PID/comm`): `postgres`, `ha-agent`, `ha-fence`, ...
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether `pid` is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    ha_tests::procs::alive(pid)
}

/// Sends `sig` to every process in namespace `ns` whose command name satisfies `which`;
/// returns the pids signalled with their names.
pub fn signal_in_ns(ns: &str, sig: Signal, which: impl Fn(&str) -> bool) -> Vec<(u32, String)> {
    let mut hit = Vec::new();
    for pid in crate::net::ns_pids(ns) {
        let name = comm(pid);
        if which(&name) {
            signal(pid, sig);
            hit.push((pid, name));
        }
    }
    hit
}

/// Waits (up to `timeout`) until no process in `ns` satisfies `which`.
pub async fn wait_gone(
    ns: &str,
    timeout: std::time::Duration,
    which: impl Fn(&str) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = crate::net::ns_pids(ns)
            .into_iter()
            .filter(|p| alive(*p) && which(&comm(*p)))
            .count();
        if left == 0 {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
