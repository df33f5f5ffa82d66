//! The fence process (`ha-fence`): holds "this primary may keep running until T" for one
//! member and stops its PostgreSQL at T unless the agent moved T forward.
//!
//! Design (why it is a separate process): the agent can stall (SIGSTOP, a hung syscall, a
//! starved runtime) or die (kill -9) while PostgreSQL keeps accepting writes; a lease cannot
//! help then. The fence is a small single-threaded program with no async runtime, no network
//! and no disk access on its critical path:
//! - it runs in its own process group, started by the agent through a shell that exits at
//!   once, so it is not the agent's child and a kill of the agent (or of its process group)
//!   leaves it running;
//! - it waits in `poll(2)` with the deadline as timeout, on `CLOCK_BOOTTIME` (shared by all
//!   processes, counts through a suspend), locks its memory when the limit allows (no page
//!   faults on a hung disk), and kills by `/proc` only (`kill.rs`);
//! - one fence per member: an exclusive `flock` on `<socket>.lock` (which holds its pid); a
//!   second one exits, and a restarted agent connects to the running one and adopts it;
//! - it holds the watchdog device when one is configured, pets it on every `ARM` and closes
//!   it cleanly on `DISARM` or after PostgreSQL was stopped; if the fence itself stalls, the
//!   watchdog resets the machine.
//!
//! It exits on `EXIT` when disarmed, or when it has been disarmed with no agent connected for
//! `idle_exit` (a member that was removed for good).

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::clock::boot_ms;
use super::kill::{ProcId, kill_instance};
use super::protocol::{Reply, Request, Status, format_reply};
use super::watchdog::Watchdog;

/// How the fence was started.
#[derive(Debug, Clone)]
pub struct ServerOpts {
    /// Listening socket.
    pub socket: PathBuf,
    /// The PostgreSQL data directory it guards.
    pub data_dir: PathBuf,
    /// Member name, for the log.
    pub member: String,
    /// Watchdog device, when one is configured.
    pub watchdog: Option<PathBuf>,
    /// Patroni's `testing` watchdog driver.
    pub watchdog_testing: bool,
    /// Exit after this long disarmed with no agent connected.
    pub idle_exit: Duration,
}

struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

struct Fence {
    opts: ServerOpts,
    armed: Option<(u64, u64, Option<ProcId>)>,
    fired: Option<u64>,
    watchdog: Watchdog,
    exit: bool,
}

fn log(member: &str, msg: &str) {
    let now = crate::dcs::records::format_iso8601(crate::clock::wall_ms());
    eprintln!("{now} ha-fence[{member}]: {msg}");
}

impl Fence {
    fn status(&self) -> Status {
        Status {
            armed: self.armed.map(|a| a.0),
            valid_until: self.armed.map(|a| a.1),
            fired: self.fired,
            watchdog: self.watchdog.report(),
        }
    }

    fn handle(&mut self, req: Request) -> Reply {
        match req {
            Request::Status => {}
            Request::Arm {
                deadline,
                valid_until,
                postmaster,
                watchdog_timeout,
            } => {
                let pm = ProcId::of(postmaster);
                if self.armed.is_none() {
                    log(
                        &self.opts.member,
                        &format!(
                            "armed: PostgreSQL (postmaster {postmaster}) may run for {} ms",
                            deadline.saturating_sub(boot_ms())
                        ),
                    );
                }
                self.armed = Some((deadline, valid_until, pm));
                if watchdog_timeout > 0 {
                    self.watchdog.pet(watchdog_timeout).map_err(|e| {
                        log(&self.opts.member, &format!("watchdog: {e}"));
                        format!("watchdog: {e}")
                    })?;
                }
                // A deadline already past (the agent was late sending it) is acted on now.
                self.check_deadline();
            }
            Request::Disarm => {
                if self.armed.take().is_some() {
                    log(&self.opts.member, "disarmed");
                }
                self.watchdog
                    .close()
                    .map_err(|e| format!("watchdog: {e}"))?;
            }
            Request::Exit => {
                if self.armed.is_some() {
                    return Err("armed: refusing to exit".into());
                }
                self.watchdog
                    .close()
                    .map_err(|e| format!("watchdog: {e}"))?;
                self.exit = true;
            }
        }
        Ok(self.status())
    }

    /// Fires when the deadline has passed.
    fn check_deadline(&mut self) {
        let Some((deadline, _, pm)) = self.armed else {
            return;
        };
        let now = boot_ms();
        if now < deadline {
            return;
        }
        let k = kill_instance(&self.opts.data_dir, pm);
        self.armed = None;
        self.fired = Some(now);
        log(
            &self.opts.member,
            &format!(
                "deadline passed {} ms ago without being moved (the agent did not renew the \
                 leader lease in time): killed PostgreSQL in {} (pids {:?})",
                now - deadline,
                self.opts.data_dir.display(),
                k.killed
            ),
        );
        if k.survivors.is_empty() {
            if let Err(e) = self.watchdog.close() {
                log(&self.opts.member, &format!("watchdog: {e}"));
            }
        } else if self.watchdog.is_open() {
            log(
                &self.opts.member,
                &format!(
                    "processes {:?} survived SIGKILL: leaving the watchdog to reset the machine",
                    k.survivors
                ),
            );
        } else {
            log(
                &self.opts.member,
                &format!("processes {:?} survived SIGKILL", k.survivors),
            );
        }
    }

    fn poll_timeout(&self, idle: bool) -> PollTimeout {
        let ms = match self.armed {
            Some((deadline, _, _)) => deadline.saturating_sub(boot_ms()).max(1),
            None if idle => 1_000,
            None => return PollTimeout::NONE,
        };
        PollTimeout::try_from(i32::try_from(ms.min(60_000)).unwrap_or(60_000))
            .unwrap_or(PollTimeout::MAX)
    }
}

/// Runs the fence until it exits; returns the exit status.
pub fn run(opts: ServerOpts) -> i32 {
    let member = opts.member.clone();
    match serve(opts) {
        Ok(()) => 0,
        Err(e) => {
            log(&member, &format!("fatal: {e}"));
            1
        }
    }
}

fn serve(opts: ServerOpts) -> Result<(), String> {
    let mut lock_path = opts.socket.clone().into_os_string();
    lock_path.push(".lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", PathBuf::from(&lock_path).display()))?;
    let mut lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            log(
                &opts.member,
                "another fence is running for this member; exiting",
            );
            return Ok(());
        }
        Err((_, e)) => {
            return Err(format!(
                "cannot lock {}: {e}",
                PathBuf::from(&lock_path).display()
            ));
        }
    };
    lock.set_len(0).map_err(|e| e.to_string())?;
    lock.write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(|e| e.to_string())?;
    // We hold the lock: any socket file is a dead fence's.
    let _ = std::fs::remove_file(&opts.socket);
    let listener = UnixListener::bind(&opts.socket)
        .map_err(|e| format!("cannot listen on {}: {e}", opts.socket.display()))?;
    let _ = std::fs::set_permissions(&opts.socket, std::fs::Permissions::from_mode(0o600));
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let locked = nix::sys::mman::mlockall(
        nix::sys::mman::MlockAllFlags::MCL_CURRENT | nix::sys::mman::MlockAllFlags::MCL_FUTURE,
    );
    log(
        &opts.member,
        &format!(
            "guarding PostgreSQL in {} (pid {}, socket {}, memory {})",
            opts.data_dir.display(),
            std::process::id(),
            opts.socket.display(),
            if locked.is_ok() {
                "locked"
            } else {
                "not locked: RLIMIT_MEMLOCK too low"
            }
        ),
    );
    let mut fence = Fence {
        watchdog: Watchdog::new(opts.watchdog.clone(), opts.watchdog_testing),
        opts,
        armed: None,
        fired: None,
        exit: false,
    };
    let mut clients: Vec<Client> = Vec::new();
    let mut alone_since = Some(boot_ms());
    loop {
        let idle = fence.armed.is_none() && clients.is_empty();
        let timeout = fence.poll_timeout(idle);
        let ready: Vec<bool> = {
            let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            fds.extend(
                clients
                    .iter()
                    .map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(format!("poll: {e}")),
            }
            fds.iter()
                .map(|f| f.any().unwrap_or(false) || f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        fence.check_deadline();
        if ready.first().copied().unwrap_or(false) {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if stream.set_nonblocking(true).is_ok() {
                            clients.push(Client {
                                stream,
                                buf: Vec::new(),
                            });
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
        let mut keep = Vec::with_capacity(clients.len());
        for (i, mut c) in clients.into_iter().enumerate() {
            let alive =
                !ready.get(i + 1).copied().unwrap_or(false) || serve_client(&mut fence, &mut c);
            if alive {
                keep.push(c);
            }
        }
        clients = keep;
        if fence.exit {
            log(&fence.opts.member, "exiting on request");
            return Ok(());
        }
        if clients.is_empty() && fence.armed.is_none() {
            let since = *alone_since.get_or_insert(boot_ms());
            if boot_ms().saturating_sub(since) >= fence.opts.idle_exit.as_millis() as u64 {
                let _ = fence.watchdog.close();
                log(
                    &fence.opts.member,
                    "disarmed with no agent for a long time; exiting",
                );
                return Ok(());
            }
        } else {
            alone_since = None;
        }
    }
}

/// Reads what the client sent and answers each complete line; false when it went away.
fn serve_client(fence: &mut Fence, c: &mut Client) -> bool {
    let mut tmp = [0u8; 512];
    loop {
        match c.stream.read(&mut tmp) {
            Ok(0) => return false,
            Ok(n) => c.buf.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
        if c.buf.len() > 64 * 1024 {
            return false;
        }
    }
    while let Some(pos) = c.buf.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = c.buf.drain(..=pos).collect();
        let text = String::from_utf8_lossy(&line);
        let reply = match Request::parse(text.trim()) {
            Ok(req) => fence.handle(req),
            Err(e) => Err(e),
        };
        let out = format!("{}\n", format_reply(&reply));
        if c.stream.write_all(out.as_bytes()).is_err() {
            return false;
        }
    }
    true
}
