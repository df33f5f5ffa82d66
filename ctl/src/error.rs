//! How hactl fails: every error a user can cause is one line on stderr that says what to do
//! next, and the exit code tells scripts what kind of failure it was.
//!
//! Commands return `anyhow::Result`; an error that is a [`CtlError`] carries its kind, any
//! other error (etcd unreachable, an I/O failure) is an operation failure (exit 1).

use std::fmt;

/// A failure with its kind.
#[derive(Debug)]
pub enum CtlError {
    /// The command line asks for something impossible (unknown member, bad value, a prompt
    /// without a terminal): exit 2.
    Usage(String),
    /// The operation was tried and did not succeed (refused by the agent, timed out): exit 1.
    Failed(String),
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Usage(m) | CtlError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CtlError {}

impl CtlError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CtlError::Usage(_) => 2,
            CtlError::Failed(_) => 1,
        }
    }
}

/// A usage error (exit 2) as an `anyhow::Error`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    CtlError::Usage(msg.into()).into()
}

/// An operation failure (exit 1) as an `anyhow::Error`.
pub fn failed(msg: impl Into<String>) -> anyhow::Error {
    CtlError::Failed(msg.into()).into()
}

/// The exit code for any error returned by a command.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.downcast_ref::<CtlError>()
        .map_or(1, CtlError::exit_code)
}

/// The one line printed for `err` (its context chain, joined; newlines flattened).
pub fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_exit_codes() {
        assert_eq!(exit_code(&usage("x")), 2);
        assert_eq!(exit_code(&failed("x")), 1);
        assert_eq!(exit_code(&anyhow::anyhow!("etcd down")), 1);
        let e = anyhow::anyhow!("inner\nsecond").context("outer");
        assert_eq!(one_line(&e), "outer: inner second");
    }
}
