//! The `watchdog` (Patroni's) and `fence` (hapg's) sections: what guards a primary when the
//! agent itself stalls.
//!
//! Rules: a watchdog needs the fence (the fence process holds the device, so that a stalled
//! agent is fenced first and the machine reset only when the fence itself stalls); turning
//! the fence off is allowed but warned about; a timing the guards cannot make safe is
//! refused (`ha::timing::unsafe_timing`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ctx::Ctx;
use super::raw::{RawFence, RawWatchdog, int_of, kind_of};
use super::{BootstrapConfig, DynamicConfig, FenceConfig, Result, WatchdogConfig};
use crate::ha::{HaConfig, Millis, WatchdogMode, timing};

/// The longest Unix socket path Linux accepts (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Validates `watchdog` as Patroni reads it.
pub(super) fn watchdog(raw: RawWatchdog, ctx: &mut Ctx<'_>) -> Result<WatchdogConfig> {
    let mode = match &raw.mode {
        None | Some(Value::Null) => WatchdogMode::Off,
        // YAML reads `mode: off` as the boolean false and `on` as true.
        Some(Value::Bool(false)) => WatchdogMode::Off,
        Some(Value::Bool(true)) => WatchdogMode::Automatic,
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "off" | "false" | "disable" | "disabled" => WatchdogMode::Off,
            "automatic" | "on" | "true" => WatchdogMode::Automatic,
            "required" | "require" => WatchdogMode::Required,
            other => {
                return Err(ctx.invalid(
                    "watchdog.mode",
                    format!("{other:?}: expected off, automatic or required"),
                ));
            }
        },
        Some(other) => {
            return Err(ctx.invalid(
                "watchdog.mode",
                format!(
                    "expected off, automatic or required, got {}",
                    kind_of(other)
                ),
            ));
        }
    };
    let device = match &raw.device {
        None | Some(Value::Null) => PathBuf::from("/dev/watchdog"),
        Some(Value::String(s)) if !s.is_empty() => PathBuf::from(s),
        Some(other) => {
            return Err(ctx.invalid(
                "watchdog.device",
                format!("expected a path, got {}", kind_of(other)),
            ));
        }
    };
    let safety_margin = match &raw.safety_margin {
        None | Some(Value::Null) => Some(5),
        Some(v) => match int_of(v) {
            Some(-1) => None,
            Some(m) if m >= 0 => u64::try_from(m).ok(),
            _ => {
                return Err(ctx.invalid(
                    "watchdog.safety_margin",
                    format!("expected seconds >= 0 or -1, got {}", kind_of(v)),
                ));
            }
        },
    };
    let testing = match &raw.driver {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "default" => false,
        Some(Value::String(s)) if s == "testing" => true,
        Some(other) => {
            return Err(ctx.invalid(
                "watchdog.driver",
                format!("{}: expected default or testing", kind_of(other)),
            ));
        }
    };
    Ok(WatchdogConfig {
        mode,
        device,
        safety_margin,
        testing,
    })
}

/// Validates `fence`; the socket defaults to `<data_dir>.fence.sock`.
pub(super) fn fence(raw: RawFence, data_dir: &Path, ctx: &mut Ctx<'_>) -> Result<FenceConfig> {
    let enabled = raw.enabled.unwrap_or(true);
    if !enabled {
        ctx.warn(
            "fence.enabled",
            "false: nothing stops PostgreSQL if this agent stalls or dies while it leads \
             (two writable primaries are possible)",
        );
    }
    let socket = raw.socket.unwrap_or_else(|| {
        let mut s = data_dir.as_os_str().to_owned();
        s.push(".fence.sock");
        PathBuf::from(s)
    });
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(ctx.invalid(
            "fence.socket",
            format!(
                "{} is longer than {MAX_SOCKET_PATH} bytes, the limit of a Unix socket path; \
                 set fence.socket to a shorter path",
                socket.display()
            ),
        ));
    }
    Ok(FenceConfig {
        enabled,
        socket,
        binary: raw.binary,
    })
}

/// Rules across both sections and the timing `bootstrap.dcs` starts with.
pub(super) fn check_together(
    wd: &WatchdogConfig,
    fence: &FenceConfig,
    bootstrap: Option<&BootstrapConfig>,
    ctx: &mut Ctx<'_>,
) -> Result<()> {
    if wd.mode != WatchdogMode::Off && !fence.enabled {
        return Err(ctx.invalid(
            "watchdog.mode",
            "the watchdog is held by the fence process: it needs fence.enabled: true",
        ));
    }
    let dynamic = match bootstrap {
        Some(b) => DynamicConfig::from_json(&b.dcs).0,
        None => DynamicConfig::default(),
    };
    let ha = HaConfig {
        ttl: Millis::secs(dynamic.ttl),
        loop_wait: Millis::secs(dynamic.loop_wait),
        watchdog: wd.mode,
        watchdog_safety_margin: wd.safety_margin.map(Millis::secs),
        ..HaConfig::default()
    };
    if let Some(why) = timing::unsafe_timing(&ha) {
        let key = if wd.mode == WatchdogMode::Off {
            "bootstrap.dcs.ttl"
        } else {
            "watchdog.safety_margin"
        };
        return Err(ctx.invalid(key, why));
    }
    Ok(())
}
