//! Is a postmaster running on the data directory? Answered from `postmaster.pid` and `/proc`,
//! without spawning anything and without talking to PostgreSQL.
//!
//! Invariants: a pid counts only if the process is alive (not a zombie), belongs to us (a
//! signal can be sent to it) and is a `postgres`/`postmaster` executable; a stale pid file
//! left by a crash, whose pid was reused by another program, is therefore "not running".
//! Reads only; never signals anything but the null signal.

use std::path::Path;

use nix::sys::signal::kill;
use nix::unistd::Pid;

/// What `postmaster.pid` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidFile {
    /// The postmaster's process id (line 1).
    pub pid: i32,
    /// Line 8 (PostgreSQL 10+): `starting`, `stopping`, `ready` or `standby`.
    pub status: Option<String>,
}

/// Parses `postmaster.pid`.
pub fn parse_pid_file(text: &str) -> Option<PidFile> {
    let mut lines = text.lines();
    let pid: i32 = lines.next()?.trim().parse().ok()?;
    if pid <= 0 {
        return None;
    }
    let status = text
        .lines()
        .nth(7)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    Some(PidFile { pid, status })
}

/// The running postmaster of `data_dir`, if any.
pub fn running(data_dir: &Path) -> Option<PidFile> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let pf = parse_pid_file(&text)?;
    is_our_postgres(pf.pid).then_some(pf)
}

/// Whether `pid` is a live postgres process we may signal.
pub fn is_our_postgres(pid: i32) -> bool {
    // EPERM: someone else's process took the pid; ESRCH: gone.
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_is_live_postgres(&stat),
        // No procfs: trust the signal check.
        Err(_) => true,
    }
}

/// `/proc/<pid>/stat` is `pid (comm) state ...`; comm may contain spaces and parentheses.
fn stat_is_live_postgres(stat: &str) -> bool {
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let comm = &stat[open + 1..close];
    let state = stat[close + 1..].split_whitespace().next().unwrap_or("");
    matches!(comm, "postgres" | "postmaster") && !matches!(state, "Z" | "X" | "x")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_lines_are_read() {
        let text = "4242\n/data\n1700000000\n5432\n/tmp\n*\n  1234  5678\nready   \n";
        assert_eq!(
            parse_pid_file(text),
            Some(PidFile {
                pid: 4242,
                status: Some("ready".into())
            })
        );
        assert_eq!(
            parse_pid_file("77\n/data\n"),
            Some(PidFile {
                pid: 77,
                status: None
            })
        );
        assert_eq!(parse_pid_file(""), None);
        assert_eq!(parse_pid_file("-1\n"), None);
    }

    #[test]
    fn only_live_postgres_processes_count() {
        assert!(stat_is_live_postgres("12 (postgres) S 1 12 12 0"));
        assert!(!stat_is_live_postgres("12 (postgres) Z 1 12 12 0"));
        assert!(!stat_is_live_postgres("12 (bash) S 1 12 12 0"));
        assert!(!stat_is_live_postgres("12 (post gres) S 1"));
    }

    #[test]
    fn our_own_process_is_not_a_postmaster() {
        assert!(!is_our_postgres(std::process::id() as i32));
        assert!(!is_our_postgres(i32::MAX));
    }
}
