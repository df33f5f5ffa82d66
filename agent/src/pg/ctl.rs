//! Running PostgreSQL's programs: initdb, pg_ctl, pg_basebackup, pg_rewind, pg_controldata
//! and `postgres --single`.
//!
//! Invariants: every program comes from `bin_dir`, runs with stdin from `/dev/null`, its
//! output captured, and is killed if the future running it is dropped (`kill_on_drop`). A
//! non-zero exit becomes `PgError::Command` carrying the last lines of its output. Passwords
//! never appear on a command line (pgpass file or `--pwfile` only). This module decides
//! nothing: callers choose the arguments.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::{PgError, Result};

/// How many output lines an error keeps.
const TAIL_LINES: usize = 20;

/// One program invocation.
#[derive(Debug)]
pub struct Invocation {
    program: PathBuf,
    name: String,
    args: Vec<OsString>,
    env: Vec<(String, OsString)>,
}

impl Invocation {
    /// `<bin_dir>/<name>` with no arguments.
    pub fn new(bin_dir: &Path, name: &str) -> Invocation {
        Invocation {
            program: bin_dir.join(name),
            name: name.to_string(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Invocation {
        self.args.push(a.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, A>(mut self, args: I) -> Invocation
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the program.
    pub fn env(mut self, k: &str, v: impl Into<OsString>) -> Invocation {
        self.env.push((k.to_string(), v.into()));
        self
    }

    /// English messages, so that output can be parsed (pg_controldata, pg_rewind). Not for
    /// initdb, where the locale decides the new cluster's default locale.
    pub fn c_locale(self) -> Invocation {
        self.env("LC_ALL", "C").env("LANG", "C")
    }

    /// Runs to completion and returns stdout followed by stderr; an error on a non-zero exit.
    pub async fn run(self) -> Result<String> {
        self.run_within(None).await
    }

    /// As `run`, but gives up (killing the program) after `limit`.
    pub async fn run_within(self, limit: Option<Duration>) -> Result<String> {
        tracing::debug!(program = %self.program.display(), args = ?self.args, "running");
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|source| PgError::Spawn {
            program: self.program.display().to_string(),
            source,
        })?;
        let output = match limit {
            None => child.wait_with_output().await,
            Some(d) => match tokio::time::timeout(d, child.wait_with_output()).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(PgError::Timeout {
                        what: "program",
                        secs: d.as_secs(),
                    });
                }
            },
        }
        .map_err(|source| PgError::Spawn {
            program: self.program.display().to_string(),
            source,
        })?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        if output.status.success() {
            Ok(text)
        } else {
            Err(PgError::Command {
                program: self.name,
                status: output.status.to_string(),
                output: tail(&text, TAIL_LINES),
            })
        }
    }
}

/// The last `n` non-empty lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Reads the last `n` lines of a log file, for error messages (empty when unreadable).
pub fn log_tail(path: &Path, n: usize) -> String {
    std::fs::read(path)
        .map(|b| {
            // Only the end matters; avoid copying a huge log.
            let start = b.len().saturating_sub(64 * 1024);
            tail(&String::from_utf8_lossy(&b[start..]), n)
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\n\nc\n", 2), "b\nc");
        assert_eq!(tail("a\n", 5), "a");
    }

    #[tokio::test]
    async fn a_failing_program_reports_its_output_tail() {
        let err = Invocation::new(Path::new("/bin"), "sh")
            .args(["-c", "echo one; echo two >&2; exit 3"])
            .run()
            .await
            .unwrap_err();
        match err {
            PgError::Command {
                program,
                status,
                output,
            } => {
                assert_eq!(program, "sh");
                assert!(status.contains('3'), "{status}");
                assert_eq!(output, "one\ntwo");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let err = Invocation::new(Path::new("/nonexistent"), "initdb")
            .run()
            .await
            .unwrap_err();
        assert!(matches!(err, PgError::Spawn { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_slow_program_is_killed_at_its_limit() {
        let err = Invocation::new(Path::new("/bin"), "sleep")
            .arg("5")
            .run_within(Some(Duration::from_millis(100)))
            .await
            .unwrap_err();
        assert!(matches!(err, PgError::Timeout { .. }), "{err:?}");
    }
}
