//! The agent's side of the fence: find the running fence (adopt it), or start one, and talk
//! to it. Every request is bounded by [`REQUEST_TIMEOUT`].
//!
//! Starting: `sh -c '"$0" "$@" </dev/null &' ha-fence ...` in a new process group: the shell
//! exits at once, so the fence is not our child (no zombie, not killed with us) and not in our
//! process group (a Ctrl-C or a group kill of the agent leaves it). It inherits our stdout and
//! stderr, so its lines land in the agent's log.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::protocol::{Request, Status, parse_reply};

/// Longest wait for one answer from the fence (it answers in microseconds unless stalled).
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Longest wait for a freshly started fence to listen.
const START_TIMEOUT: Duration = Duration::from_secs(3);

/// The fence could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// It could not be started.
    #[error("cannot start the fence {binary}: {detail}")]
    Start {
        /// Program.
        binary: PathBuf,
        /// Why.
        detail: String,
    },
    /// It did not answer (or the connection broke).
    #[error("fence at {socket}: {detail}")]
    Unreachable {
        /// Socket.
        socket: PathBuf,
        /// Why.
        detail: String,
    },
    /// It answered with an error.
    #[error("fence refused: {0}")]
    Refused(String),
}

/// How to find and start this member's fence.
#[derive(Debug, Clone)]
pub struct FenceSettings {
    /// Socket path.
    pub socket: PathBuf,
    /// The `ha-fence` program.
    pub binary: PathBuf,
    /// Data directory it guards.
    pub data_dir: PathBuf,
    /// Member name (for its log).
    pub member: String,
    /// Watchdog device, when one is configured.
    pub watchdog: Option<PathBuf>,
    /// Patroni's testing watchdog driver.
    pub watchdog_testing: bool,
}

/// A connection to the fence, re-established (and the fence restarted) when needed.
pub struct FenceClient {
    settings: FenceSettings,
    conn: Option<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>,
}

impl FenceClient {
    /// A client; nothing is contacted yet.
    pub fn new(settings: FenceSettings) -> FenceClient {
        FenceClient {
            settings,
            conn: None,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &FenceSettings {
        &self.settings
    }

    /// Sends `req`, connecting (and starting the fence) first if needed. A broken connection
    /// is retried once on a fresh one, so a fence that died is replaced within the call.
    /// Returns the status and whether a new fence had to be started.
    pub async fn request(&mut self, req: Request) -> Result<(Status, bool), FenceError> {
        let mut started = false;
        for attempt in 0..2 {
            if self.conn.is_none() {
                started |= self.connect_or_start().await?;
            }
            match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(req)).await {
                Ok(Ok(reply)) => {
                    return reply.map(|s| (s, started)).map_err(FenceError::Refused);
                }
                Ok(Err(e)) if attempt == 0 => {
                    tracing::debug!("fence connection broke ({e}); reconnecting");
                    self.conn = None;
                }
                Ok(Err(e)) => {
                    self.conn = None;
                    return Err(self.unreachable(e));
                }
                Err(_) => {
                    // A stalled fence: do not wait on it again with a stale connection.
                    self.conn = None;
                    return Err(self.unreachable(format!(
                        "no answer within {} ms",
                        REQUEST_TIMEOUT.as_millis()
                    )));
                }
            }
        }
        Err(self.unreachable("no answer".into()))
    }

    fn unreachable(&self, detail: String) -> FenceError {
        FenceError::Unreachable {
            socket: self.settings.socket.clone(),
            detail,
        }
    }

    async fn exchange(&mut self, req: Request) -> Result<Result<Status, String>, String> {
        let (rd, wr) = self.conn.as_mut().ok_or("not connected")?;
        wr.write_all(format!("{req}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        let n = rd.read_line(&mut line).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the fence closed the connection".into());
        }
        parse_reply(&line)
    }

    /// Connects to a running fence, or starts one and connects. True when one was started.
    async fn connect_or_start(&mut self) -> Result<bool, FenceError> {
        if let Ok(s) = UnixStream::connect(&self.settings.socket).await {
            self.conn = Some(split(s));
            return Ok(false);
        }
        self.start().await?;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            match UnixStream::connect(&self.settings.socket).await {
                Ok(s) => {
                    self.conn = Some(split(s));
                    return Ok(true);
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(self.unreachable(format!(
                        "started, but not listening after {} s: {e}",
                        START_TIMEOUT.as_secs()
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    async fn start(&self) -> Result<(), FenceError> {
        let s = &self.settings;
        let err = |detail: String| FenceError::Start {
            binary: s.binary.clone(),
            detail,
        };
        if !s.binary.is_file() {
            return Err(err("no such program".into()));
        }
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("\"$0\" \"$@\" </dev/null &")
            .arg(&s.binary)
            .arg("--socket")
            .arg(&s.socket)
            .arg("--data-dir")
            .arg(&s.data_dir)
            .arg("--member")
            .arg(&s.member);
        if let Some(dev) = &s.watchdog {
            cmd.arg("--watchdog").arg(dev);
            if s.watchdog_testing {
                cmd.arg("--watchdog-testing");
            }
        }
        cmd.process_group(0).stdin(std::process::Stdio::null());
        let status = cmd.status().await.map_err(|e| err(e.to_string()))?;
        if !status.success() {
            return Err(err(format!("sh exited with {status}")));
        }
        tracing::info!(socket = %s.socket.display(), "started the fence process");
        Ok(())
    }
}

fn split(s: UnixStream) -> (BufReader<OwnedReadHalf>, OwnedWriteHalf) {
    let (r, w) = s.into_split();
    (BufReader::new(r), w)
}
