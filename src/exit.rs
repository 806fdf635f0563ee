//! Exit codes and the error type that carries one: the single place that maps outcomes to codes.

use std::process::ExitCode;

/// memsweep's documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything succeeded (`check`: enough memory).
    Ok = 0,
    /// Some job failed (`check`: not enough memory).
    Failed = 1,
    /// Bad usage, bad configuration, or an environment memsweep cannot work in.
    Usage = 2,
    /// Interrupted by Ctrl-C, SIGTERM or SIGHUP (a closed terminal).
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// An error the user can fix: printed as `memsweep: <message>`, exit code 2.
/// The message names the flag, file or line at fault and says how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Shorthand for building a [`UsageError`] inside an `anyhow::Result`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}
