//! `synchronous_standby_names` as the core handles it: the forms the leader writes (empty,
//! `'*'`, `FIRST n (...)`, `ANY n (...)`), their PostgreSQL syntax, and reading back the value
//! PostgreSQL reports. Names are double-quoted identifiers, so any member name round-trips.

use std::fmt;

use super::MemberName;

/// A value of `synchronous_standby_names`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStandbyNames {
    /// Empty: asynchronous.
    Off,
    /// `'*'`: any standby may confirm; with none connected commits wait (strict mode).
    Any,
    /// `FIRST n (names)`: `count` of `names` (in priority order) confirm each commit.
    First {
        /// How many must confirm.
        count: usize,
        /// The candidates, in priority order.
        names: Vec<MemberName>,
    },
    /// `ANY n (names)`: any `count` of `names` confirm each commit (quorum mode).
    Quorum {
        /// How many must confirm.
        count: usize,
        /// The candidates (sorted).
        names: Vec<MemberName>,
    },
}

impl SyncStandbyNames {
    /// Reads a value this agent wrote (`Display`'s syntax; PostgreSQL's grammar for the
    /// forms used here): empty, `*`, `FIRST n (...)`, `ANY n (...)`, or a bare list (which
    /// PostgreSQL reads as `FIRST 1`). `None` for anything else.
    pub fn parse(text: &str) -> Option<SyncStandbyNames> {
        let t = text.trim();
        if t.is_empty() {
            return Some(SyncStandbyNames::Off);
        }
        if t == "*" {
            return Some(SyncStandbyNames::Any);
        }
        let (kind, rest) = match t.split_once(char::is_whitespace) {
            Some((k, r)) if k.eq_ignore_ascii_case("first") || k.eq_ignore_ascii_case("any") => {
                (Some(k.to_ascii_lowercase()), r.trim())
            }
            _ => (None, t),
        };
        let (count, list) = match &kind {
            Some(_) => {
                let (n, l) = rest.split_once('(')?;
                (n.trim().parse::<usize>().ok()?, l.strip_suffix(')')?)
            }
            None => match rest.split_once('(') {
                Some((n, l)) => (n.trim().parse::<usize>().ok()?, l.strip_suffix(')')?),
                None => (1, rest),
            },
        };
        let names = split_names(list)?;
        if names.iter().any(|n| n.as_str() == "*") {
            return Some(SyncStandbyNames::Any);
        }
        Some(match kind.as_deref() {
            Some("any") => SyncStandbyNames::Quorum { count, names },
            _ => SyncStandbyNames::First { count, names },
        })
    }

    /// The number that must confirm and the names listed; `'*'` and empty list none.
    pub fn count_and_names(&self) -> (usize, Vec<MemberName>) {
        match self {
            SyncStandbyNames::Off | SyncStandbyNames::Any => (0, Vec::new()),
            SyncStandbyNames::First { count, names }
            | SyncStandbyNames::Quorum { count, names } => (*count, names.clone()),
        }
    }
}

/// A comma-separated list of (possibly double-quoted) standby names.
fn split_names(list: &str) -> Option<Vec<MemberName>> {
    let mut names = Vec::new();
    let mut chars = list.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        name.push('"');
                    }
                    '"' => break,
                    c => name.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                name.push(c);
                chars.next();
            }
            name = name.trim().to_string();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if !name.is_empty() {
            names.push(MemberName::new(&name));
        }
        match chars.next() {
            None => return Some(names),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

impl fmt::Display for SyncStandbyNames {
    /// PostgreSQL's syntax; names are double-quoted identifiers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncStandbyNames::Off => Ok(()),
            SyncStandbyNames::Any => f.write_str("*"),
            SyncStandbyNames::First { count, names }
            | SyncStandbyNames::Quorum { count, names } => {
                let quoted: Vec<String> = names
                    .iter()
                    .map(|n| format!("\"{}\"", n.as_str().replace('"', "\"\"")))
                    .collect();
                let kind = match self {
                    SyncStandbyNames::Quorum { .. } => "ANY",
                    _ => "FIRST",
                };
                write!(f, "{kind} {count} ({})", quoted.join(","))
            }
        }
    }
}
