//! The line protocol between the agent and its fence process, over a Unix stream socket.
//!
//! One request per line, one reply line each. Times are milliseconds on `CLOCK_BOOTTIME`
//! (shared by every process of the machine and counting through a suspend, so a deadline
//! passed while the machine slept fires at once on resume).
//!
//! ```text
//! ARM <deadline> <valid_until> <postmaster pid or 0> <watchdog timeout s or 0>
//! DISARM
//! STATUS
//! EXIT
//! OK armed=<deadline>|- valid=<valid_until>|- fired=<time>|- wd=off|ready|armed|unusable[:why]
//! ERR <why>
//! ```
//!
//! `valid_until` is the authority the deadline was derived from; the fence only stores it, so
//! that an agent restarted while its primary runs can learn how long it may keep running.
//! Pure parsing and formatting; no I/O.

use std::fmt;

/// A request from the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Hold `deadline`: stop PostgreSQL if it passes without a newer `Arm`.
    Arm {
        /// Boottime ms at which PostgreSQL is stopped.
        deadline: u64,
        /// Boottime ms of the authority the deadline came from.
        valid_until: u64,
        /// The postmaster's pid, 0 when PostgreSQL is not running yet.
        postmaster: i32,
        /// Watchdog timeout to set before petting it, seconds; 0: no watchdog.
        watchdog_timeout: u32,
    },
    /// Forget the deadline and close the watchdog cleanly.
    Disarm,
    /// Report the state.
    Status,
    /// Exit (refused while armed).
    Exit,
}

impl Request {
    /// Parses one line.
    pub fn parse(line: &str) -> Result<Request, String> {
        let mut it = line.split_whitespace();
        let verb = it.next().ok_or("empty request")?;
        let mut num = |what: &str| -> Result<u64, String> {
            it.next()
                .ok_or_else(|| format!("{verb}: {what} missing"))?
                .parse::<u64>()
                .map_err(|_| format!("{verb}: {what} is not a number"))
        };
        let req = match verb {
            "ARM" => Request::Arm {
                deadline: num("deadline")?,
                valid_until: num("valid_until")?,
                postmaster: i32::try_from(num("postmaster pid")?)
                    .map_err(|_| "ARM: postmaster pid out of range")?,
                watchdog_timeout: u32::try_from(num("watchdog timeout")?)
                    .map_err(|_| "ARM: watchdog timeout out of range")?,
            },
            "DISARM" => Request::Disarm,
            "STATUS" => Request::Status,
            "EXIT" => Request::Exit,
            other => return Err(format!("unknown request {other:?}")),
        };
        Ok(req)
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Arm {
                deadline,
                valid_until,
                postmaster,
                watchdog_timeout,
            } => write!(
                f,
                "ARM {deadline} {valid_until} {postmaster} {watchdog_timeout}"
            ),
            Request::Disarm => f.write_str("DISARM"),
            Request::Status => f.write_str("STATUS"),
            Request::Exit => f.write_str("EXIT"),
        }
    }
}

/// The watchdog as the fence holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchdogReport {
    /// Not configured.
    Off,
    /// Configured, the device looks usable, not open.
    Ready,
    /// Open and petted.
    Armed,
    /// Configured but unusable, with why.
    Unusable(String),
}

/// What the fence holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The deadline, if armed.
    pub armed: Option<u64>,
    /// The authority that deadline came from.
    pub valid_until: Option<u64>,
    /// When it last stopped PostgreSQL.
    pub fired: Option<u64>,
    /// The watchdog.
    pub watchdog: WatchdogReport,
}

/// A reply line.
pub type Reply = Result<Status, String>;

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Formats a reply line (without the newline).
pub fn format_reply(r: &Reply) -> String {
    match r {
        Err(why) => format!("ERR {}", why.replace('\n', " ")),
        Ok(s) => {
            let wd = match &s.watchdog {
                WatchdogReport::Off => "off".to_string(),
                WatchdogReport::Ready => "ready".to_string(),
                WatchdogReport::Armed => "armed".to_string(),
                WatchdogReport::Unusable(why) => format!("unusable:{}", why.replace(' ', "_")),
            };
            format!(
                "OK armed={} valid={} fired={} wd={wd}",
                opt(s.armed),
                opt(s.valid_until),
                opt(s.fired)
            )
        }
    }
}

/// Parses a reply line.
pub fn parse_reply(line: &str) -> Result<Reply, String> {
    let line = line.trim();
    if let Some(why) = line.strip_prefix("ERR ") {
        return Ok(Err(why.to_string()));
    }
    let rest = line
        .strip_prefix("OK ")
        .ok_or_else(|| format!("unreadable fence reply {line:?}"))?;
    let mut st = Status {
        armed: None,
        valid_until: None,
        fired: None,
        watchdog: WatchdogReport::Off,
    };
    for field in rest.split_whitespace() {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("unreadable fence reply field {field:?}"))?;
        let num = |v: &str| -> Result<Option<u64>, String> {
            if v == "-" {
                return Ok(None);
            }
            v.parse()
                .map(Some)
                .map_err(|_| format!("fence reply {k}={v} is not a number"))
        };
        match k {
            "armed" => st.armed = num(v)?,
            "valid" => st.valid_until = num(v)?,
            "fired" => st.fired = num(v)?,
            "wd" => {
                st.watchdog = match v {
                    "off" => WatchdogReport::Off,
                    "ready" => WatchdogReport::Ready,
                    "armed" => WatchdogReport::Armed,
                    other => WatchdogReport::Unusable(
                        other
                            .strip_prefix("unusable:")
                            .unwrap_or(other)
                            .replace('_', " "),
                    ),
                }
            }
            _ => {}
        }
    }
    Ok(Ok(st))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Arm {
                deadline: 123_456,
                valid_until: 124_000,
                postmaster: 4242,
                watchdog_timeout: 25,
            },
            Request::Disarm,
            Request::Status,
            Request::Exit,
        ] {
            assert_eq!(Request::parse(&r.to_string()), Ok(r));
        }
        assert!(Request::parse("ARM 1 2").is_err());
        assert!(Request::parse("ARM x 2 3 4").is_err());
        assert!(Request::parse("FIRE").is_err());
        assert!(Request::parse("").is_err());
    }

    #[test]
    fn replies_round_trip() {
        let st = Status {
            armed: Some(5),
            valid_until: Some(6),
            fired: None,
            watchdog: WatchdogReport::Unusable("cannot open /dev/watchdog: no such file".into()),
        };
        let line = format_reply(&Ok(st.clone()));
        assert!(!line.contains('\n'));
        assert_eq!(parse_reply(&line), Ok(Ok(st)));
        assert_eq!(
            parse_reply(&format_reply(&Err("armed".into()))),
            Ok(Err("armed".into()))
        );
        assert!(parse_reply("garbage").is_err());
    }
}
