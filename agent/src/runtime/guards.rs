//! The shell's side of the fence and the watchdog: observe them each cycle (restarting a
//! fence that died), move the deadline after a proof of authority, disarm.
//!
//! Decisions (when to extend, when to disarm, what a missing fence means) are the core's
//! (`ha::fencing`); this module executes them and reports what it found.

use std::path::PathBuf;

use tracing::{info, warn};

use crate::clock::Clock;
use crate::config::Config;
use crate::fence::clock::{from_boot, to_boot};
use crate::fence::protocol::{Request, Status, WatchdogReport};
use crate::fence::{FenceClient, FenceSettings};
use crate::ha::{FenceState, HaConfig, Millis, WatchdogMode, WatchdogState, timing};

/// The fence (and the watchdog it holds), as seen from the agent.
pub(super) struct Guards {
    client: Option<FenceClient>,
    state: FenceState,
    watchdog: WatchdogState,
    watchdog_detail: Option<String>,
    mode: WatchdogMode,
    unavailable_said: bool,
    last: Option<Status>,
}

impl Guards {
    /// Guards for `cfg`; nothing is contacted until the first `observe`.
    pub fn new(cfg: &Config) -> Guards {
        let client = cfg.fence.enabled.then(|| {
            let binary = cfg.fence.binary.clone().unwrap_or_else(default_binary);
            let watchdog =
                (cfg.watchdog.mode != WatchdogMode::Off).then(|| cfg.watchdog.device.clone());
            FenceClient::new(FenceSettings {
                socket: cfg.fence.socket.clone(),
                binary,
                data_dir: cfg.postgresql.data_dir.clone(),
                member: cfg.name.clone(),
                watchdog,
                watchdog_testing: cfg.watchdog.testing,
            })
        });
        Guards {
            state: if client.is_some() {
                FenceState::Unavailable
            } else {
                FenceState::Disabled
            },
            client,
            watchdog: WatchdogState::Off,
            watchdog_detail: None,
            mode: cfg.watchdog.mode,
            unavailable_said: false,
            last: None,
        }
    }

    /// The fence as last seen.
    pub fn fence(&self) -> FenceState {
        self.state
    }

    /// The watchdog as last seen.
    pub fn watchdog(&self) -> WatchdogState {
        self.watchdog
    }

    /// Asks the fence for its state, starting it (or a replacement for one that died) when
    /// needed. Returns the authority an armed fence holds (set by an earlier agent process),
    /// on our clock.
    pub async fn observe(&mut self, clock: &Clock) -> Option<Millis> {
        let r = self.send(Request::Status, clock).await;
        r.ok()
            .and_then(|s| s.valid_until)
            .map(|v| from_boot(clock, v))
    }

    /// Moves the deadline to what `valid_until` allows (and pets the watchdog).
    pub async fn extend(
        &mut self,
        valid_until: Millis,
        ha: &HaConfig,
        postmaster: Option<i32>,
        clock: &Clock,
    ) -> Result<(), String> {
        if self.client.is_none() {
            return Ok(());
        }
        let deadline = timing::fence_deadline(valid_until, ha);
        let watchdog_timeout = timing::watchdog_timeout(ha)
            .map_or(0, |t| u32::try_from(t.0 / 1000).unwrap_or(u32::MAX).max(1));
        let req = Request::Arm {
            deadline: to_boot(clock, deadline),
            valid_until: to_boot(clock, valid_until),
            postmaster: postmaster.unwrap_or(0),
            watchdog_timeout,
        };
        self.send(req, clock).await.map(|_| ())
    }

    /// Clears the deadline and closes the watchdog.
    pub async fn disarm(&mut self, clock: &Clock) -> Result<(), String> {
        if self.client.is_none() {
            return Ok(());
        }
        self.send(Request::Disarm, clock).await.map(|_| ())
    }

    /// At shutdown: disarm, and ask the fence to exit.
    pub async fn exit(&mut self, clock: &Clock) {
        if self.client.is_none() {
            return;
        }
        if let Err(e) = self.disarm(clock).await {
            warn!("disarming the fence failed: {e}");
            return;
        }
        if let Err(e) = self.send(Request::Exit, clock).await {
            // It exits when it closed the connection, which may read as an error.
            tracing::debug!("fence exit: {e}");
        }
    }

    /// For `/patroni`: `{"fence": "armed"|"disarmed"|"off"|"unavailable", ...}`.
    pub fn describe(&self, pause: bool) -> serde_json::Value {
        let fence = match self.state {
            FenceState::Disabled => "off (fence.enabled: false)",
            FenceState::Unavailable => "unavailable",
            FenceState::Ready { armed: Some(_) } => "armed",
            FenceState::Ready { armed: None } if pause => "disarmed (maintenance mode)",
            FenceState::Ready { armed: None } => "disarmed",
        };
        let watchdog = match (&self.mode, self.watchdog, &self.last) {
            (WatchdogMode::Off, _, _) => "off".to_string(),
            (_, _, Some(s)) if s.watchdog == WatchdogReport::Armed => "armed".to_string(),
            (_, WatchdogState::Usable, _) if pause => "disarmed (maintenance mode)".to_string(),
            (_, WatchdogState::Usable, _) => "disarmed".to_string(),
            _ => format!(
                "unusable: {}",
                self.watchdog_detail.as_deref().unwrap_or("unknown")
            ),
        };
        serde_json::json!({ "fence": fence, "watchdog": watchdog })
    }

    async fn send(&mut self, req: Request, clock: &Clock) -> Result<Status, String> {
        let Some(client) = self.client.as_mut() else {
            return Err("fence disabled".into());
        };
        let was_ready = matches!(self.state, FenceState::Ready { .. });
        match client.request(req).await {
            Ok((st, started)) => {
                if started && was_ready {
                    warn!("the fence process was gone; started a new one");
                }
                if std::mem::take(&mut self.unavailable_said) {
                    info!("the fence process answers again");
                }
                self.absorb(&st, clock);
                Ok(st)
            }
            Err(crate::fence::FenceError::Refused(why)) => {
                // It answered: the fence itself is fine, the request was not.
                Err(why)
            }
            Err(e) => {
                if !self.unavailable_said {
                    tracing::error!("fence unavailable: {e}");
                    self.unavailable_said = true;
                }
                self.state = FenceState::Unavailable;
                Err(e.to_string())
            }
        }
    }

    fn absorb(&mut self, st: &Status, clock: &Clock) {
        self.state = FenceState::Ready {
            armed: st.armed.map(|a| from_boot(clock, a)),
        };
        (self.watchdog, self.watchdog_detail) = match (&self.mode, &st.watchdog) {
            (WatchdogMode::Off, _) | (_, WatchdogReport::Off) => (WatchdogState::Off, None),
            (_, WatchdogReport::Ready | WatchdogReport::Armed) => (WatchdogState::Usable, None),
            (_, WatchdogReport::Unusable(why)) => (WatchdogState::Unusable, Some(why.clone())),
        };
        self.last = Some(st.clone());
    }
}

/// `ha-fence` next to the running `ha-agent`.
fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("ha-fence")))
        .unwrap_or_else(|| PathBuf::from("ha-fence"))
}
