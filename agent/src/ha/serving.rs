//! Whether this member presents itself as the leader to clients (REST `/primary`, `/leader`,
//! HAProxy's checks) after a cycle: the serving rule.
//!
//! A member serves as the leader when, after the cycle's actions:
//! 1. it holds the leader key as etcd showed it this cycle, or renewed it, and did not release
//!    it; or
//! 2. **cut off from etcd**, it was serving as the leader when last published, still runs a
//!    primary, is not demoting, and its lease is still valid: a leader that cannot reach etcd
//!    keeps serving until its demotion point (the published `writable_until` bounds it), as it
//!    keeps writing until then; HAProxy moving clients away earlier would only lengthen the
//!    outage, never shorten the time with two primaries (there is none: the demotion point is
//!    before the lease can expire); or
//! 3. failsafe mode keeps it writing (etcd unreachable, every member accepted the last
//!    failsafe round) and it runs a primary.
//!
//! A member that released the key (shutdown, switchover) stops serving at once, even though
//! its PostgreSQL may still be stopping.

/// What the serving rule depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServingInput {
    /// etcd answered this cycle.
    pub dcs_reachable: bool,
    /// etcd's leader key names this member (as read this cycle).
    pub holds_key: bool,
    /// This cycle renewed the leader key.
    pub renewed: bool,
    /// This cycle released the leader key.
    pub released: bool,
    /// The last published state presented this member as the leader.
    pub was_serving: bool,
    /// PostgreSQL runs as a primary now.
    pub runs_primary: bool,
    /// A demotion is under way.
    pub demoting: bool,
    /// The leader lease is still valid on our clock.
    pub lease_valid: bool,
    /// Failsafe mode is what keeps this member writing now.
    pub failsafe_active: bool,
}

/// The serving rule (module documentation).
pub fn serves_as_leader(i: &ServingInput) -> bool {
    let by_key = (i.holds_key || i.renewed) && !i.released;
    let cut_off = !i.dcs_reachable
        && !i.demoting
        && !i.released
        && i.was_serving
        && i.runs_primary
        && i.lease_valid;
    let failsafe = i.failsafe_active && i.runs_primary;
    by_key || cut_off || failsafe
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader() -> ServingInput {
        ServingInput {
            dcs_reachable: true,
            holds_key: true,
            was_serving: true,
            runs_primary: true,
            lease_valid: true,
            ..ServingInput::default()
        }
    }

    #[test]
    fn the_key_holder_serves() {
        assert!(serves_as_leader(&leader()));
    }

    #[test]
    fn a_released_key_stops_serving_at_once() {
        let i = ServingInput {
            released: true,
            ..leader()
        };
        assert!(!serves_as_leader(&i));
        let cut = ServingInput {
            dcs_reachable: false,
            holds_key: false,
            ..i
        };
        assert!(!serves_as_leader(&cut));
    }

    #[test]
    fn a_leader_cut_off_from_etcd_serves_while_its_lease_is_valid() {
        let cut = ServingInput {
            dcs_reachable: false,
            holds_key: false,
            ..leader()
        };
        assert!(serves_as_leader(&cut));
        let expired = ServingInput {
            lease_valid: false,
            ..cut
        };
        assert!(!serves_as_leader(&expired));
        let demoting = ServingInput {
            demoting: true,
            ..cut
        };
        assert!(!serves_as_leader(&demoting));
        let not_before = ServingInput {
            was_serving: false,
            ..cut
        };
        assert!(
            !serves_as_leader(&not_before),
            "cut off, nobody becomes leader"
        );
    }

    #[test]
    fn a_reachable_etcd_naming_another_leader_wins_over_a_valid_lease() {
        let i = ServingInput {
            holds_key: false,
            ..leader()
        };
        assert!(!serves_as_leader(&i));
    }

    #[test]
    fn failsafe_keeps_a_primary_serving() {
        let i = ServingInput {
            dcs_reachable: false,
            holds_key: false,
            lease_valid: false,
            failsafe_active: true,
            ..leader()
        };
        assert!(serves_as_leader(&i));
        let replica = ServingInput {
            runs_primary: false,
            ..i
        };
        assert!(!serves_as_leader(&replica));
    }
}
