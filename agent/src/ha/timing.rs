//! When a primary must stop writing: the demotion point, the fence deadline, and why they are
//! safe at every timing the configuration accepts.
//!
//! A primary may accept writes only while it holds *authority*: a leader lease that etcd
//! cannot have expired yet, or (in failsafe mode, etcd unreachable) a round of `POST
//! /failsafe` that every member accepted. Authority is valid until `valid_until`, counted on
//! this member's monotonic clock from the *send* time of the request that proved it (a lease
//! keepalive, or the failsafe round), plus ttl. The other side (etcd's lessor, a replica that
//! accepted the failsafe round) starts its own ttl no earlier than it received that request,
//! so nobody else can take over before `valid_until` on a clock running at the same rate.
//!
//! What separates `valid_until` from the moment writes must have stopped:
//! - **clock rate**: our monotonic clock and etcd's (or a replica's) may run at slightly
//!   different rates; NTP slews a clock by at most 500 ppm, so two clocks differ by at most
//!   0.1 % of the ttl ([`drift`]);
//! - **the fence's stop**: the fence process (outside the agent) SIGKILLs every process of
//!   the PostgreSQL instance at its deadline; a kill takes microseconds, the budget
//!   [`FENCE_STOP_BUDGET`] covers the fence's timer waking late on a loaded machine;
//! - **the agent's stop**: the agent demotes itself ([`AGENT_LEAD`]) before the fence would,
//!   so that the fence only acts when the agent stalls; its immediate stop (`pg_ctl stop -m
//!   immediate`: SIGQUIT, every backend exits at once) has the lead to finish;
//! - **the watchdog**: when one is configured it resets the machine `ttl - safety_margin`
//!   after it was last petted (Patroni's rule), i.e. `safety_margin` before `valid_until`;
//!   the fence must act first ([`WATCHDOG_LEAD`] before it), so the watchdog stays the last
//!   resort for a fence that itself stalls.
//!
//! etcd's own granularity only helps: its lessor expires leases up to 500 ms *late*, never
//! early, and a successor needs a watch event, a compare-and-create and a promotion after
//! that. No etcd request and no loop cycle is part of this budget: the agent bounds every
//! request by the demotion point and wakes at it on a timer (the shell), and the fence acts
//! on its own timer whatever the agent does.

use super::{HaConfig, Millis, WatchdogMode};

/// Bound on the rate difference of two monotonic clocks, per mille of a duration (0.1 %).
pub const DRIFT_PER_MILLE: u64 = 1;

/// The fence's stop: its timer waking late on a loaded machine, plus the SIGKILLs.
pub const FENCE_STOP_BUDGET: Millis = Millis(250);

/// How long before the fence's deadline the agent demotes itself: long enough for `pg_ctl
/// stop -m immediate` to have signalled the postmaster, short enough to keep the primary
/// serving for almost all of its lease.
pub const AGENT_LEAD: Millis = Millis(500);

/// How long before the watchdog would reset the machine the fence acts.
pub const WATCHDOG_LEAD: Millis = Millis(500);

/// The part of a ttl two clocks may drift apart over it (rounded up).
pub fn drift(ttl: Millis) -> Millis {
    Millis(ttl.0.saturating_mul(DRIFT_PER_MILLE).div_ceil(1000))
}

/// The watchdog's timeout (Patroni: `ttl - safety_margin`, or `ttl / 2` for a margin of -1),
/// when a watchdog is configured.
pub fn watchdog_timeout(cfg: &HaConfig) -> Option<Millis> {
    if cfg.watchdog == WatchdogMode::Off {
        return None;
    }
    Some(match cfg.watchdog_safety_margin {
        None => Millis(cfg.ttl.0 / 2),
        Some(m) => cfg.ttl.since(m),
    })
}

/// The moment the fence stops PostgreSQL if authority valid until `valid_until` is not
/// extended: every source of error above subtracted.
pub fn fence_deadline(valid_until: Millis, cfg: &HaConfig) -> Millis {
    let plain = valid_until.since(drift(cfg.ttl)).since(FENCE_STOP_BUDGET);
    match watchdog_timeout(cfg) {
        // The watchdog was petted when authority was last proven, `ttl` before
        // `valid_until`, and fires `timeout` later.
        Some(timeout) => {
            let fires = valid_until.since(cfg.ttl).plus(timeout);
            plain.min(fires.since(WATCHDOG_LEAD))
        }
        None => plain,
    }
}

/// The moment the agent demotes itself (immediate stop) if authority valid until
/// `valid_until` is not extended: [`AGENT_LEAD`] before the fence would act.
pub fn demote_at(valid_until: Millis, cfg: &HaConfig) -> Millis {
    fence_deadline(valid_until, cfg).since(AGENT_LEAD)
}

/// Why a timing cannot be made safe, if it cannot: the demotion point must leave time after a
/// renewal for at least one more attempt (`loop_wait` plus one retry second).
pub fn unsafe_timing(cfg: &HaConfig) -> Option<String> {
    let renewed = Millis(0);
    let valid_until = renewed.plus(cfg.ttl);
    let demote = demote_at(valid_until, cfg);
    let next_attempt = renewed.plus(cfg.loop_wait).plus(Millis(1_000));
    (demote <= next_attempt).then(|| {
        format!(
            "a leader would have to demote {} ms after renewing its lease, before its next \
             renewal attempt (loop_wait {} ms plus 1 s): raise ttl{}",
            demote.0,
            cfg.loop_wait.0,
            if cfg.watchdog == WatchdogMode::Off {
                ""
            } else {
                " or lower watchdog.safety_margin"
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ttl: u64) -> HaConfig {
        HaConfig {
            ttl: Millis::secs(ttl),
            ..HaConfig::default()
        }
    }

    #[test]
    fn default_timing_demotes_under_a_second_before_expiry() {
        let c = cfg(30);
        let v = Millis(100_000);
        assert_eq!(fence_deadline(v, &c), Millis(100_000 - 30 - 250));
        assert_eq!(demote_at(v, &c), Millis(100_000 - 30 - 250 - 500));
    }

    #[test]
    fn a_watchdog_moves_the_fence_before_it() {
        let c = HaConfig {
            watchdog: WatchdogMode::Automatic,
            watchdog_safety_margin: Some(Millis::secs(5)),
            ..cfg(30)
        };
        assert_eq!(watchdog_timeout(&c), Some(Millis::secs(25)));
        // Petted at 70 s, fires at 95 s; the fence acts 0.5 s earlier.
        assert_eq!(fence_deadline(Millis(100_000), &c), Millis(94_500));
        let half = HaConfig {
            watchdog_safety_margin: None,
            ..c
        };
        assert_eq!(watchdog_timeout(&half), Some(Millis::secs(15)));
    }

    #[test]
    fn fastest_accepted_timing_is_safe_and_a_tiny_ttl_is_not() {
        let fast = HaConfig {
            ttl: Millis::secs(10),
            loop_wait: Millis::secs(2),
            retry_timeout: Millis::secs(3),
            ..HaConfig::default()
        };
        assert_eq!(unsafe_timing(&fast), None);
        let tiny = HaConfig {
            ttl: Millis::secs(2),
            loop_wait: Millis::secs(1),
            ..HaConfig::default()
        };
        assert!(unsafe_timing(&tiny).is_some());
        let wd = HaConfig {
            watchdog: WatchdogMode::Required,
            watchdog_safety_margin: Some(Millis::secs(7)),
            ..fast
        };
        assert!(
            unsafe_timing(&wd).is_some(),
            "watchdog at 3 s, loop_wait 2 s"
        );
    }
}
