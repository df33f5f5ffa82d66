//! Closing the archive gap of a failover: WAL segments the old primary completed but had not
//! archived when it died.
//!
//! With `archive_mode = on`, a standby marks the segments it receives by streaming as archived
//! (`.done`) without archiving them, so after a promotion nobody archives a segment the old
//! primary finished but did not push in time. The new leader therefore pushes, at the start of
//! its leadership, every segment of an older timeline still in its `pg_wal` that lies wholly
//! before that timeline's switch point (from the newest `<timeline>.history` file). pgBackRest
//! accepts a segment it already holds with the same checksum (a warning), so pushing twice is
//! harmless. The segment holding the switch point is not pushed: the old primary's copy may
//! hold more than ours, and PostgreSQL archived ours as `.partial` at the promotion.
//!
//! Limits: only segments still in `pg_wal` (a restartpoint may have removed older ones), and
//! the default 16 MB segment size.

use std::path::{Path, PathBuf};

use super::pgbackrest::Pgbackrest;

/// Bytes per WAL segment (PostgreSQL's default `wal_segment_size`).
const SEGMENT: u64 = 16 * 1024 * 1024;
/// Segments per 4 GB "log" in segment names.
const PER_LOG: u64 = 0x1_0000_0000 / SEGMENT;

/// One line of a timeline history file: timeline `parent` ended at `switch` (an LSN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    /// The timeline that ended.
    pub parent: u32,
    /// Where it ended.
    pub switch: u64,
}

/// Reads a timeline history file (`1\t0/3000A8\tno recovery target specified` per line).
pub fn parse_history(text: &str) -> Vec<Switch> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let parent = f.next()?.parse().ok()?;
            let (hi, lo) = f.next()?.split_once('/')?;
            let hi = u64::from_str_radix(hi, 16).ok()?;
            let lo = u64::from_str_radix(lo, 16).ok()?;
            Some(Switch {
                parent,
                switch: (hi << 32) | lo,
            })
        })
        .collect()
}

/// A segment file name: timeline, then the segment number as two 8-digit hex halves.
pub fn segment_name(timeline: u32, segno: u64) -> String {
    format!(
        "{timeline:08X}{:08X}{:08X}",
        segno / PER_LOG,
        segno % PER_LOG
    )
}

/// Reads a segment file name back into (timeline, segment number).
pub fn parse_segment(name: &str) -> Option<(u32, u64)> {
    if name.len() != 24 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let tli = u32::from_str_radix(&name[..8], 16).ok()?;
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..], 16).ok()?;
    Some((tli, log * PER_LOG + seg))
}

/// Of the files in `pg_wal` (`names`), the old-timeline segments wholly before their
/// timeline's switch point in `history`.
pub fn segments_to_push(history: &[Switch], names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = names
        .iter()
        .filter(|n| {
            parse_segment(n).is_some_and(|(tli, segno)| {
                history
                    .iter()
                    .any(|s| s.parent == tli && segno < s.switch / SEGMENT)
            })
        })
        .cloned()
        .collect();
    out.sort();
    out
}

/// The newest `*.history` file in `pg_wal`, read.
fn newest_history(wal: &Path) -> Option<Vec<Switch>> {
    let newest: PathBuf = std::fs::read_dir(wal)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "history"))
        .max()?;
    Some(parse_history(&std::fs::read_to_string(newest).ok()?))
}

/// Pushes the segments [`segments_to_push`] finds in `data_dir`'s `pg_wal`; returns how many
/// were pushed and the first error.
pub async fn push_old_segments(
    pgbr: &Pgbackrest,
    data_dir: &Path,
) -> (usize, Option<super::pgbackrest::PgbrError>) {
    let wal = data_dir.join("pg_wal");
    let Some(history) = newest_history(&wal) else {
        return (0, None);
    };
    let names: Vec<String> = std::fs::read_dir(&wal)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut pushed = 0;
    for name in segments_to_push(&history, &names) {
        let path = wal.join(&name).display().to_string();
        match pgbr
            .run("archive-push", &[path], std::time::Duration::from_secs(120))
            .await
        {
            Ok(_) => pushed += 1,
            Err(e) => return (pushed, Some(e)),
        }
    }
    (pushed, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lines_give_timeline_and_switch_lsn() {
        let h = parse_history("1\t0/B0000A8\tno recovery target specified\n\n2\t1/200\tx\n");
        assert_eq!(
            h,
            vec![
                Switch {
                    parent: 1,
                    switch: 0xB0000A8
                },
                Switch {
                    parent: 2,
                    switch: (1 << 32) | 0x200
                },
            ]
        );
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(1, 0x0B), "00000001000000000000000B");
        assert_eq!(segment_name(2, 256 + 3), "000000020000000100000003");
        assert_eq!(parse_segment("000000020000000100000003"), Some((2, 259)));
        assert_eq!(parse_segment("00000002.history"), None);
        assert_eq!(parse_segment("00000001000000000000000B.partial"), None);
    }

    #[test]
    fn only_old_timeline_segments_wholly_before_the_switch_are_pushed() {
        let history = parse_history("1\t0/B0000A8\tno recovery target specified\n");
        let names: Vec<String> = [
            "000000010000000000000009",
            "00000001000000000000000A",
            "00000001000000000000000B", // holds the switch point
            "00000001000000000000000C", // recycled, beyond it
            "00000002000000000000000B", // the new timeline
            "00000002.history",
            "archive_status",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            segments_to_push(&history, &names),
            vec![
                "000000010000000000000009".to_string(),
                "00000001000000000000000A".to_string()
            ]
        );
    }
}
