//! What a member does when it is asked to stop (SIGTERM/SIGINT): the shutdown policy.
//!
//! Rules:
//! - **In maintenance mode** (`pause`) PostgreSQL is left running and the leader key is kept,
//!   as Patroni does: the operator paused HA to manage PostgreSQL by hand.
//! - **The leader** stops PostgreSQL gracefully (a checkpoint first, every WAL record sent to
//!   the replicas that are connected), and only then releases the leader key, so a replica
//!   takes over at once rather than after ttl, and no replica is promoted while the old
//!   primary may still write.
//! - **Any other member** stops PostgreSQL fast and has no key to release.
//! - The fence is disarmed only once PostgreSQL is stopped (or was meant to stay running);
//!   a PostgreSQL that would not stop keeps it armed (the shell's part: it only exits the fence
//!   after a successful stop).
//! - In every case the member's own lease is revoked last, so its member key disappears.

use super::StopMode;

/// The shutdown steps for a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownPlan {
    /// Stop PostgreSQL this way, or leave it running.
    pub stop: Option<StopMode>,
    /// Release the leader key after PostgreSQL stopped.
    pub release_leader: bool,
}

/// The plan for a member that holds the leader key (`leader`) or not, paused or not.
pub fn plan(paused: bool, leader: bool) -> ShutdownPlan {
    if paused {
        return ShutdownPlan {
            stop: None,
            release_leader: false,
        };
    }
    ShutdownPlan {
        stop: Some(if leader {
            StopMode::Graceful
        } else {
            StopMode::Fast
        }),
        release_leader: leader,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_stops_gracefully_then_releases_the_key() {
        assert_eq!(
            plan(false, true),
            ShutdownPlan {
                stop: Some(StopMode::Graceful),
                release_leader: true
            }
        );
    }

    #[test]
    fn a_replica_stops_fast_and_releases_nothing() {
        assert_eq!(
            plan(false, false),
            ShutdownPlan {
                stop: Some(StopMode::Fast),
                release_leader: false
            }
        );
    }

    #[test]
    fn paused_postgres_keeps_running_and_the_leader_keeps_its_key() {
        for leader in [true, false] {
            assert_eq!(
                plan(true, leader),
                ShutdownPlan {
                    stop: None,
                    release_leader: false
                }
            );
        }
    }
}
