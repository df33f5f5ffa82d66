//! `pg_controldata`: what a stopped data directory says about itself (system identifier,
//! timeline of the latest checkpoint, how it was shut down).
//!
//! Invariants: parsing is pure and tolerant of extra lines; the program runs with the C
//! locale so the labels are English. Used only while no postmaster runs (a running server
//! is asked over SQL instead, without spawning anything).

use std::collections::BTreeMap;
use std::path::Path;

use super::ctl::Invocation;
use super::{PgError, Result};
use crate::ha::{ControlState, Lsn, StoppedPg};

/// Runs `pg_controldata -D data_dir` and parses it.
pub async fn read(bin_dir: &Path, data_dir: &Path) -> Result<StoppedPg> {
    let out = Invocation::new(bin_dir, "pg_controldata")
        .arg("-D")
        .arg(data_dir)
        .c_locale()
        .run()
        .await?;
    parse(&out)
}

/// `label: value` pairs of pg_controldata's output.
pub fn fields(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// The parts of pg_controldata's output the core needs.
pub fn parse(text: &str) -> Result<StoppedPg> {
    let f = fields(text);
    let get = |label: &'static str| {
        f.get(label)
            .copied()
            .ok_or_else(|| PgError::Other(format!("pg_controldata printed no {label:?}")))
    };
    let sysid = get("Database system identifier")?.to_string();
    let tli = get("Latest checkpoint's TimeLineID")?;
    let timeline = tli
        .parse()
        .map_err(|_| PgError::Other(format!("pg_controldata: bad timeline {tli:?}")))?;
    let control_state = control_state(get("Database cluster state")?);
    let loc = get("Latest checkpoint location")?;
    let checkpoint_lsn = Lsn::parse(loc).ok_or_else(|| {
        PgError::Other(format!("pg_controldata: bad checkpoint location {loc:?}"))
    })?;
    Ok(StoppedPg {
        sysid,
        timeline,
        control_state,
        checkpoint_lsn,
    })
}

/// `Database cluster state` as the core's enum.
pub fn control_state(text: &str) -> ControlState {
    match text {
        "shut down" => ControlState::ShutDown,
        "shut down in recovery" => ControlState::ShutDownInRecovery,
        "in production" => ControlState::InProduction,
        "in archive recovery" | "in crash recovery" => ControlState::InRecovery,
        _ => ControlState::Other,
    }
}

/// Whether pg_rewind would accept the directory as it is (it needs a clean shutdown).
pub fn is_clean(state: ControlState) -> bool {
    matches!(
        state,
        ControlState::ShutDown | ControlState::ShutDownInRecovery
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7305421836442811234
Database cluster state:               in production
pg_control last modified:             Sun 22 Nov 2026 02:43:49 PM UTC
Latest checkpoint location:           0/2000028
Latest checkpoint's REDO location:    0/2000028
Latest checkpoint's REDO WAL file:    000000010000000000000002
Latest checkpoint's TimeLineID:       3
Latest checkpoint's PrevTimeLineID:   2
";

    #[test]
    fn parses_identifier_timeline_and_state() {
        assert_eq!(
            parse(SAMPLE).unwrap(),
            StoppedPg {
                sysid: "7305421836442811234".into(),
                timeline: 3,
                control_state: ControlState::InProduction,
                checkpoint_lsn: Lsn(0x0200_0028),
            }
        );
    }

    #[test]
    fn maps_every_cluster_state() {
        assert_eq!(control_state("shut down"), ControlState::ShutDown);
        assert_eq!(
            control_state("shut down in recovery"),
            ControlState::ShutDownInRecovery
        );
        assert_eq!(control_state("in crash recovery"), ControlState::InRecovery);
        assert_eq!(
            control_state("in archive recovery"),
            ControlState::InRecovery
        );
        assert_eq!(control_state("starting up"), ControlState::Other);
        assert!(is_clean(ControlState::ShutDownInRecovery));
        assert!(!is_clean(ControlState::InProduction));
    }

    #[test]
    fn missing_fields_are_an_error() {
        assert!(parse("Database system identifier: 1\n").is_err());
    }
}
