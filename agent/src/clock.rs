//! The shell's clocks: a monotonic clock for leases and timeouts (`ha::Millis`), and the wall
//! clock for timestamps shown to people and for scheduled switchovers.
//!
//! Uses `tokio::time::Instant`, so tests under `tokio::time::pause()` control it.

use tokio::time::Instant;

use crate::ha::Millis;

/// Monotonic milliseconds since the agent started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Clock {
            base: Instant::now(),
        }
    }
    /// Monotonic now.
    pub fn now(&self) -> Millis {
        Millis(u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
    /// The `Instant` of a `Millis` reading.
    pub fn instant(&self, at: Millis) -> Instant {
        self.base + std::time::Duration::from_millis(at.0)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Wall clock: milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
