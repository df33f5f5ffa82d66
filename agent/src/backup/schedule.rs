//! Cron schedules (`backup.schedule.*`): parsed once at load, then asked for the latest slot
//! at or before a given time.
//!
//! Syntax: standard five-field cron (`minute hour day-of-month month day-of-week`, Vixie cron's
//! reading, with `L`, `#` and `W`), or six fields with seconds first; times are UTC. Parsing is
//! by the `croner` crate. This module only computes times; it decides nothing.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::Cron;

/// A parsed cron schedule, with the text it came from.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Schedule {
    /// Parses `text`; the error says why, for a message naming the key.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields = text.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(format!(
                "{text:?}: expected 5 cron fields (minute hour day month weekday) or 6 with \
                 seconds first, got {fields}"
            ));
        }
        let cron =
            Cron::from_str(text).map_err(|e| format!("{text:?}: not a cron schedule: {e}"))?;
        Ok(Schedule {
            text: text.to_owned(),
            cron,
        })
    }

    /// The schedule as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The latest time this schedule fires at or before `now`, as Unix seconds (`None` when
    /// it never fired in the searchable past).
    pub fn latest_slot(&self, now: DateTime<Utc>) -> Option<u64> {
        let t = self.cron.find_previous_occurrence(&now, true).ok()?;
        u64::try_from(t.timestamp()).ok()
    }

    /// The next time this schedule fires after `now`, as Unix seconds.
    pub fn next_slot(&self, now: DateTime<Utc>) -> Option<u64> {
        let t = self.cron.find_next_occurrence(&now, false).ok()?;
        u64::try_from(t.timestamp()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_and_six_field_schedules_give_the_latest_slot_at_or_before_now() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 14, 37, 20).unwrap();
        let hourly = Schedule::parse("0 * * * *").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 14, 0, 0).unwrap();
        assert_eq!(hourly.latest_slot(now), Some(at.timestamp() as u64));
        let every_20s = Schedule::parse("*/20 * * * * *").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 14, 37, 20).unwrap();
        assert_eq!(every_20s.latest_slot(now), Some(at.timestamp() as u64));
        assert_eq!(every_20s.next_slot(now), Some(at.timestamp() as u64 + 20));
    }

    #[test]
    fn bad_schedules_say_why() {
        for bad in ["", "* * *", "61 * * * *", "every hour", "* * * * * * * *"] {
            let e = Schedule::parse(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }
}
