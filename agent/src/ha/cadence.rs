//! When the shell runs its next cycle: the loop cadence as a rule of the core.
//!
//! Rules, in order:
//! 1. **Right after a batch that changed PostgreSQL's role** (or was cut short by a lost
//!    compare-and-set): 20 ms, so the new state is observed and published at once.
//! 2. **etcd unreachable**: every second at most, so a leader keeps trying to renew (and a
//!    replica notices etcd back) well within any ttl.
//! 3. **A vacant lease in an initialized cluster**: within 500 ms, since a peer that was still
//!    stopping may be done by then and someone must take over.
//! 4. **A replica that does not stream yet**: every `replica::STREAM_RETRY_AFTER` while it was
//!    re-pointed at its leader less than `replica::STREAM_RETRY_WINDOW` ago (it asks
//!    PostgreSQL to retry streaming each time: `replica::retry_streaming_due`); otherwise
//!    within a second for the first 15 s, so its record, the leader's slot and the health
//!    checks follow quickly; bounded in time so a replica whose leader is gone does not spin.
//! 5. **Synchronous replication wants a second look** (the setting changed this cycle and
//!    quorum mode's next key write waits for PostgreSQL to confirm it, or a leader race found
//!    too few quorum votes and fresher answers may follow): within a second.
//! 6. Otherwise `loop_wait`.
//!
//! Whatever the above says, **a member that may be writing wakes at its demotion point** at the
//! latest (`timing::demote_at` of its authority): the demotion is never left to the next
//! regular cycle. Rules 2-4 never lengthen `loop_wait`, only shorten it.

use super::{HaConfig, Millis};

/// A replica that does not stream is looked at every second for this long.
pub const NOT_STREAMING_WATCH: Millis = Millis::secs(15);

/// What the cadence depends on, as the shell observed it at the end of a cycle.
#[derive(Debug, Clone, Copy, Default)]
pub struct CadenceInput {
    /// Now, on the shell's monotonic clock.
    pub now: Millis,
    /// The batch changed PostgreSQL's role or stopped at a lost compare-and-set.
    pub rerun: bool,
    /// etcd cannot be read.
    pub dcs_down: bool,
    /// The cluster is initialized and nobody holds the leader key.
    pub lease_vacant: bool,
    /// Since when this replica has not been streaming, if it is a replica that does not.
    pub not_streaming_since: Option<Millis>,
    /// Since when PostgreSQL has been configured to stream from its current upstream.
    pub following_since: Option<Millis>,
    /// Synchronous replication asked for a look within a second.
    pub sync_recheck: bool,
    /// This member may be writing (it runs a primary, or might) and must demote at this
    /// point unless its authority is renewed.
    pub demote_at: Option<Millis>,
}

/// Time until the next cycle (rules in the module documentation).
pub fn next_wait(i: &CadenceInput, cfg: &HaConfig) -> Millis {
    if i.rerun {
        return Millis(20);
    }
    let regular = if i.dcs_down {
        Millis::secs(1)
    } else if i.lease_vacant {
        cfg.loop_wait.min(Millis(500))
    } else if i.not_streaming_since.is_some()
        && i.following_since
            .is_some_and(|f| i.now.since(f) < super::replica::STREAM_RETRY_WINDOW)
    {
        cfg.loop_wait.min(super::replica::STREAM_RETRY_AFTER)
    } else if i.sync_recheck
        || i.not_streaming_since
            .is_some_and(|since| i.now.since(since) < NOT_STREAMING_WATCH)
    {
        cfg.loop_wait.min(Millis::secs(1))
    } else {
        cfg.loop_wait
    };
    match i.demote_at {
        Some(at) => regular.min(at.since(i.now).max(Millis(1))),
        None => regular,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HaConfig {
        HaConfig {
            loop_wait: Millis::secs(10),
            ..HaConfig::default()
        }
    }

    fn at(now: u64) -> CadenceInput {
        CadenceInput {
            now: Millis(now),
            ..CadenceInput::default()
        }
    }

    #[test]
    fn a_quiet_member_waits_loop_wait() {
        assert_eq!(next_wait(&at(50_000), &cfg()), Millis::secs(10));
    }

    #[test]
    fn a_batch_that_changed_the_role_is_followed_at_once() {
        let i = CadenceInput {
            rerun: true,
            dcs_down: true,
            ..at(0)
        };
        assert_eq!(next_wait(&i, &cfg()), Millis(20));
    }

    #[test]
    fn etcd_unreachable_means_every_second() {
        let i = CadenceInput {
            dcs_down: true,
            ..at(0)
        };
        assert_eq!(next_wait(&i, &cfg()), Millis::secs(1));
    }

    #[test]
    fn a_vacant_lease_is_looked_at_within_half_a_second() {
        let i = CadenceInput {
            lease_vacant: true,
            ..at(0)
        };
        assert_eq!(next_wait(&i, &cfg()), Millis(500));
        let fast = HaConfig {
            loop_wait: Millis(200),
            ..cfg()
        };
        assert_eq!(
            next_wait(&i, &fast),
            Millis(200),
            "never longer than loop_wait"
        );
    }

    #[test]
    fn a_replica_not_streaming_is_watched_every_second_for_a_while_only() {
        let fresh = CadenceInput {
            not_streaming_since: Some(Millis(10_000)),
            ..at(20_000)
        };
        assert_eq!(next_wait(&fresh, &cfg()), Millis::secs(1));
        let old = CadenceInput {
            not_streaming_since: Some(Millis(10_000)),
            ..at(10_000 + NOT_STREAMING_WATCH.0)
        };
        assert_eq!(next_wait(&old, &cfg()), Millis::secs(10));
    }

    #[test]
    fn a_replica_just_re_pointed_and_not_streaming_is_looked_at_every_quarter_second() {
        let i = CadenceInput {
            not_streaming_since: Some(Millis(10_000)),
            following_since: Some(Millis(9_900)),
            ..at(11_000)
        };
        assert_eq!(next_wait(&i, &cfg()), Millis(250));
        let later = CadenceInput {
            following_since: Some(Millis(5_000)),
            ..i
        };
        assert_eq!(next_wait(&later, &cfg()), Millis::secs(1), "window over");
        let streaming = CadenceInput {
            not_streaming_since: None,
            ..i
        };
        assert_eq!(next_wait(&streaming, &cfg()), Millis::secs(10));
    }

    #[test]
    fn synchronous_replication_can_ask_for_a_look_within_a_second() {
        let i = CadenceInput {
            sync_recheck: true,
            ..at(0)
        };
        assert_eq!(next_wait(&i, &cfg()), Millis::secs(1));
    }

    #[test]
    fn a_member_that_may_be_writing_wakes_at_its_demotion_point() {
        let i = CadenceInput {
            demote_at: Some(Millis(3_000)),
            ..at(1_000)
        };
        assert_eq!(next_wait(&i, &cfg()), Millis(2_000));
        let passed = CadenceInput {
            demote_at: Some(Millis(500)),
            ..at(1_000)
        };
        assert_eq!(next_wait(&passed, &cfg()), Millis(1), "past it: at once");
        let later = CadenceInput {
            demote_at: Some(Millis(60_000)),
            ..at(1_000)
        };
        assert_eq!(next_wait(&later, &cfg()), Millis::secs(10));
    }
}
