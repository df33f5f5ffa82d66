//! `CLOCK_BOOTTIME` in milliseconds, and converting the agent's monotonic instants to it.
//!
//! The agent keeps time on tokio's monotonic clock (`CLOCK_MONOTONIC`); the fence on
//! `CLOCK_BOOTTIME`, which also counts while the machine is suspended. Both are read back to
//! back when converting, so the error is microseconds.

use nix::time::{ClockId, clock_gettime};

use crate::clock::Clock;
use crate::ha::Millis;

/// Milliseconds on `CLOCK_BOOTTIME` (0 if the clock cannot be read, which Linux never does).
pub fn boot_ms() -> u64 {
    clock_gettime(ClockId::CLOCK_BOOTTIME).map_or(0, |t| {
        let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
        let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
        secs.saturating_mul(1000).saturating_add(nanos / 1_000_000)
    })
}

/// The boottime of the agent's monotonic instant `at`.
pub fn to_boot(clock: &Clock, at: Millis) -> u64 {
    let (mono, boot) = (clock.now(), boot_ms());
    if at >= mono {
        boot.saturating_add(at.0 - mono.0)
    } else {
        boot.saturating_sub(mono.0 - at.0)
    }
}

/// The agent's monotonic instant of boottime `at`.
pub fn from_boot(clock: &Clock, at: u64) -> Millis {
    let (mono, boot) = (clock.now(), boot_ms());
    if at >= boot {
        mono.plus(Millis(at - boot))
    } else {
        mono.since(Millis(boot - at))
    }
}
