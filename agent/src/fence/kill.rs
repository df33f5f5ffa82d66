//! Stopping a PostgreSQL instance at once, without its cooperation: SIGKILL the postmaster
//! (so nothing new is forked), then every process of the instance.
//!
//! A process belongs to the instance when its working directory is the data directory and
//! its executable is a `postgres` binary (the postmaster and every backend chdir into the
//! data directory). Only `/proc` is read: no disk, so a hung disk cannot stall the fence.
//! SIGKILL is what `pg_ctl stop -m immediate` approximates, minus the postmaster's help:
//! PostgreSQL treats it as a crash and recovers from its WAL at the next start; nothing
//! acknowledged to a client is lost locally.

use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A process to kill: pid plus its start time (field 22 of `/proc/<pid>/stat`), so that a
/// pid reused by another program is never hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId {
    /// Process id.
    pub pid: i32,
    /// Start time in clock ticks since boot.
    pub start: u64,
}

impl ProcId {
    /// The process `pid` as it is now, if it exists.
    pub fn of(pid: i32) -> Option<ProcId> {
        if pid <= 0 {
            return None;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(ProcId {
            pid,
            start: start_time(&stat)?,
        })
    }

    /// Still the same process, and not a zombie waiting to be reaped.
    pub fn alive(&self) -> bool {
        ProcId::of(self.pid) == Some(*self) && is_running(self.pid)
    }
}

/// Field 22 of a `/proc/<pid>/stat` line; the command name (field 2) may hold spaces.
pub fn start_time(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After ")": field 3 (state) is the first; starttime is field 22.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// What a kill did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Killed {
    /// Pids sent SIGKILL.
    pub killed: Vec<i32>,
    /// Processes of the instance still there after the last sweep.
    pub survivors: Vec<i32>,
}

/// SIGKILLs `postmaster` (when it is still the same process) and then every process of the
/// instance in `data_dir`, sweeping until none is left (at most a few rounds).
pub fn kill_instance(data_dir: &Path, postmaster: Option<ProcId>) -> Killed {
    let mut out = Killed::default();
    if let Some(pm) = postmaster.filter(ProcId::alive)
        && kill(Pid::from_raw(pm.pid), Signal::SIGKILL).is_ok()
    {
        out.killed.push(pm.pid);
    }
    for round in 0..5 {
        let found = instance_processes(data_dir);
        if found.is_empty() {
            out.survivors.clear();
            return out;
        }
        for pid in &found {
            if kill(Pid::from_raw(*pid), Signal::SIGKILL).is_ok() && !out.killed.contains(pid) {
                out.killed.push(*pid);
            }
        }
        out.survivors = found;
        // A killed process lingers in /proc until reaped; give the kernel a moment.
        std::thread::sleep(std::time::Duration::from_millis(5 * (round + 1)));
    }
    out.survivors = instance_processes(data_dir)
        .into_iter()
        .filter(|p| is_running(*p))
        .collect();
    out
}

/// Not a zombie (a killed process waiting to be reaped counts as gone).
fn is_running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next());
        !matches!(state, Some("Z" | "X"))
    })
}

/// Live processes whose cwd is `data_dir` and whose executable is named `postgres`.
pub fn instance_processes(data_dir: &Path) -> Vec<i32> {
    let want = canonical(data_dir);
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let base = e.path();
        let Ok(cwd) = std::fs::read_link(base.join("cwd")) else {
            continue;
        };
        if cwd != want {
            continue;
        }
        let exe = std::fs::read_link(base.join("exe")).unwrap_or_default();
        let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // A binary replaced on disk shows as "postgres (deleted)".
        if (name == "postgres" || name.starts_with("postgres ")) && is_running(pid) {
            pids.push(pid);
        }
    }
    pids
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_skips_a_command_with_spaces_and_parens() {
        let stat = "4242 (postgres: a (b) c) S 1 4242 4242 0 -1 4194560 123 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        assert_eq!(start_time(stat), Some(987_654));
        assert_eq!(start_time("garbage"), None);
    }

    #[test]
    fn our_own_process_is_found_by_pid_and_not_mistaken_for_postgres() {
        let me = ProcId::of(i32::try_from(std::process::id()).unwrap()).unwrap();
        assert!(me.alive());
        let stale = ProcId {
            start: me.start + 1,
            ..me
        };
        assert!(!stale.alive());
        let cwd = std::env::current_dir().unwrap();
        assert!(!instance_processes(&cwd).contains(&me.pid));
    }
}
