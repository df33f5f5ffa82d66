//! Which standbys are *confirmed* under the `synchronous_standby_names` in force: the rule
//! behind `Observation::sync_replicas`, which the sync and quorum rules trust as "holds every
//! acknowledged commit".
//!
//! The rule (Patroni's `_primary_flush_lsn` check):
//! - When the primary first reports a value of `synchronous_standby_names`, its current WAL
//!   position is the *mark*: every commit acknowledged before the value took effect lies at
//!   or before it.
//! - A standby that `pg_stat_replication` reports `sync` or `quorum`, `streaming`, with a
//!   flush position at or past the mark holds all of them and is confirmed.
//! - It stays confirmed while the value stays (its WAL is on its disk even if it disconnects).
//! - A new value, or PostgreSQL not running as primary, starts over.
//!
//! The state is a plain value the shell keeps between cycles; stepping it is pure.

use std::collections::BTreeSet;

use super::{Lsn, MemberName, PgRole, PgState, SyncStandbyNames};

/// One row of `pg_stat_replication`, as far as the rule reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandbyRow<'a> {
    /// `application_name`: the standby's member name.
    pub name: &'a str,
    /// `state`: only `streaming` counts.
    pub state: &'a str,
    /// `sync_state`: only `sync` and `quorum` count (not `async` or `potential`).
    pub sync_state: &'a str,
    /// `flush_lsn`, when reported.
    pub flush: Option<Lsn>,
}

/// What the primary reported this cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncReport<'a> {
    /// PostgreSQL's state (role and WAL position).
    pub pg: &'a PgState,
    /// `synchronous_standby_names` as PostgreSQL reports it, if read.
    pub value: Option<&'a str>,
    /// The replication rows.
    pub rows: &'a [StandbyRow<'a>],
}

/// The outcome of one step: the value in force, parsed, and the confirmed standbys (sorted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Confirmed {
    /// The value in force, when it has a form the core understands.
    pub names: Option<SyncStandbyNames>,
    /// The confirmed standbys, sorted by name.
    pub standbys: Vec<MemberName>,
}

/// The rule's memory between cycles: the value last seen, its mark, and who is confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncConfirm {
    seen: Option<String>,
    mark: Lsn,
    ready: BTreeSet<MemberName>,
}

impl SyncConfirm {
    /// The state after `report`, and what it confirms. See the module documentation.
    pub fn step(self, report: &SyncReport<'_>) -> (SyncConfirm, Confirmed) {
        let (PgState::Running(r), Some(value)) = (report.pg, report.value) else {
            return (SyncConfirm::default(), Confirmed::default());
        };
        if r.role != PgRole::Primary {
            return (SyncConfirm::default(), Confirmed::default());
        }
        let mut next = self;
        // A new value starts over: only WAL flushed after it took effect proves anything.
        if next.seen.as_deref() != Some(value) {
            next = SyncConfirm {
                seen: Some(value.to_owned()),
                mark: r.lsn,
                ready: BTreeSet::new(),
            };
        }
        for row in report.rows {
            if counts(row, next.mark) {
                next.ready.insert(MemberName::new(row.name));
            }
        }
        let confirmed = Confirmed {
            names: SyncStandbyNames::parse(value),
            standbys: next.ready.iter().cloned().collect(),
        };
        (next, confirmed)
    }

    /// The mark of the value in force (zero before any).
    pub fn mark(&self) -> Lsn {
        self.mark
    }
}

/// Whether `row` confirms its standby against `mark`.
fn counts(row: &StandbyRow<'_>, mark: Lsn) -> bool {
    row.state == "streaming"
        && matches!(row.sync_state, "sync" | "quorum")
        && row.flush.is_some_and(|f| f >= mark)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ha::RunningPg;

    const ANY: &str = r#"ANY 1 ("b","c")"#;

    fn running(role: PgRole, lsn: u64) -> PgState {
        PgState::Running(RunningPg {
            role,
            sysid: "1".into(),
            timeline: 1,
            lsn: Lsn(lsn),
            replay_lsn: Lsn(lsn),
            streaming: false,
        })
    }

    fn row<'a>(name: &'a str, sync_state: &'a str, flush: u64) -> StandbyRow<'a> {
        StandbyRow {
            name,
            state: "streaming",
            sync_state,
            flush: Some(Lsn(flush)),
        }
    }

    /// One step of a primary at `lsn` reporting `value` and `rows`; the confirmed names.
    fn step(
        c: SyncConfirm,
        lsn: u64,
        value: &str,
        rows: &[StandbyRow<'_>],
    ) -> (SyncConfirm, Vec<String>) {
        let pg = running(PgRole::Primary, lsn);
        let (next, out) = c.step(&SyncReport {
            pg: &pg,
            value: Some(value),
            rows,
        });
        let names = out.standbys.iter().map(|n| n.as_str().to_owned()).collect();
        (next, names)
    }

    #[test]
    fn first_sight_of_a_value_sets_the_mark_at_the_primarys_position() {
        let (c, _) = step(SyncConfirm::default(), 100, ANY, &[]);
        assert_eq!(c.mark(), Lsn(100));
        // The same value later keeps its mark.
        let (c, _) = step(c, 150, ANY, &[]);
        assert_eq!(c.mark(), Lsn(100));
    }

    #[test]
    fn a_standby_behind_the_mark_is_not_confirmed() {
        let (_, ok) = step(SyncConfirm::default(), 100, ANY, &[row("b", "quorum", 90)]);
        assert!(ok.is_empty());
    }

    #[test]
    fn a_caught_up_standby_is_confirmed() {
        let rows = [row("b", "quorum", 90), row("c", "quorum", 100)];
        let (c, ok) = step(SyncConfirm::default(), 100, ANY, &rows);
        assert_eq!(ok, ["c"]);
        let (_, ok) = step(
            c,
            150,
            ANY,
            &[row("b", "quorum", 120), row("c", "sync", 150)],
        );
        assert_eq!(ok, ["b", "c"]);
    }

    #[test]
    fn a_confirmed_standby_stays_confirmed_after_disconnecting_while_the_value_stays() {
        let (c, _) = step(SyncConfirm::default(), 100, ANY, &[row("b", "quorum", 100)]);
        let (_, ok) = step(c, 160, ANY, &[]);
        assert_eq!(ok, ["b"]);
    }

    #[test]
    fn a_new_value_starts_over_with_a_new_mark() {
        let (c, _) = step(SyncConfirm::default(), 100, ANY, &[row("c", "quorum", 100)]);
        let (c, ok) = step(c, 170, r#"ANY 1 ("c")"#, &[row("c", "quorum", 165)]);
        assert!(ok.is_empty(), "c is behind the new mark");
        assert_eq!(c.mark(), Lsn(170));
    }

    #[test]
    fn postgres_not_running_as_primary_resets() {
        let (c, _) = step(SyncConfirm::default(), 100, ANY, &[row("b", "quorum", 100)]);
        for pg in [running(PgRole::Replica, 200), PgState::Unknown] {
            let (next, out) = c.clone().step(&SyncReport {
                pg: &pg,
                value: Some(ANY),
                rows: &[row("b", "quorum", 200)],
            });
            assert_eq!(next, SyncConfirm::default());
            assert_eq!(out, Confirmed::default());
        }
        // No value read: the same.
        let pg = running(PgRole::Primary, 200);
        let (next, out) = c.step(&SyncReport {
            pg: &pg,
            value: None,
            rows: &[],
        });
        assert_eq!((next, out), (SyncConfirm::default(), Confirmed::default()));
    }

    #[test]
    fn async_potential_and_not_streaming_rows_are_ignored() {
        let catchup = StandbyRow {
            state: "catchup",
            ..row("e", "sync", 100)
        };
        let no_flush = StandbyRow {
            flush: None,
            ..row("f", "sync", 0)
        };
        let rows = [
            row("d", "async", 100),
            row("p", "potential", 100),
            catchup,
            no_flush,
        ];
        let (_, ok) = step(SyncConfirm::default(), 100, ANY, &rows);
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn the_value_in_force_is_parsed() {
        let pg = running(PgRole::Primary, 1);
        let (_, out) = SyncConfirm::default().step(&SyncReport {
            pg: &pg,
            value: Some(ANY),
            rows: &[],
        });
        assert!(matches!(
            out.names,
            Some(SyncStandbyNames::Quorum { count: 1, .. })
        ));
    }

    proptest! {
        /// Whatever the history, a standby is confirmed only if some row since the value
        /// took effect showed it streaming, synchronous, and flushed at or past the mark.
        #[test]
        fn a_standby_is_never_confirmed_without_a_row_at_or_past_the_mark(
            steps in proptest::collection::vec(
                (0u64..200, 0usize..2, proptest::collection::vec((0usize..3, 0usize..3, 0u64..200), 0..4)),
                1..12,
            )
        ) {
            const NAMES: [&str; 3] = ["a", "b", "c"];
            const STATES: [&str; 3] = ["sync", "quorum", "async"];
            const VALUES: [&str; 2] = [r#"ANY 1 ("a","b","c")"#, r#"FIRST 1 ("a")"#];
            let mut c = SyncConfirm::default();
            // Per name: whether a qualifying row was seen since the value last changed.
            let mut seen: Option<(usize, u64)> = None;
            let mut proven = BTreeSet::new();
            for (lsn, v, rows) in steps {
                let rows: Vec<StandbyRow<'_>> = rows
                    .iter()
                    .map(|&(n, s, f)| row(NAMES[n], STATES[s], f))
                    .collect();
                if seen.map(|(sv, _)| sv) != Some(v) {
                    seen = Some((v, lsn));
                    proven.clear();
                }
                let mark = seen.map_or(0, |(_, m)| m);
                for r in &rows {
                    if r.sync_state != "async" && r.flush.is_some_and(|f| f.0 >= mark) {
                        proven.insert(r.name.to_owned());
                    }
                }
                let (next, ok) = step(c, lsn, VALUES[v], &rows);
                prop_assert_eq!(next.mark(), Lsn(mark));
                for name in &ok {
                    prop_assert!(proven.contains(name), "{} confirmed without proof", name);
                }
                c = next;
            }
        }
    }
}
