//! What can go wrong when running iptables, classified so each case maps to one OCF code.

use std::time::Duration;

/// A failed iptables run, with enough text to act on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FirewallError {
    #[error("{program} is not installed (not found on PATH)")]
    NotInstalled { program: String },
    /// The program that lists the rules is there, the one that changes them is not: unlike
    /// `NotInstalled`, rules of ours may well be in force.
    #[error(
        "{program} is not installed (not found on PATH): the rules that {lister} lists cannot be changed without it"
    )]
    ChangerMissing { program: String, lister: String },
    #[error("{program} needs root: {stderr}")]
    Permission { program: String, stderr: String },
    #[error("the xtables lock stayed busy: {stderr}")]
    LockBusy { stderr: String },
    #[error("no time left within the operation timeout to run `{command}`")]
    OutOfTime { command: String },
    #[error("`{command}` did not finish within {limit:?} and was killed")]
    TimedOut { command: String, limit: Duration },
    #[error("`{command}` failed with exit code {code}: {stderr}")]
    Failed {
        command: String,
        code: i32,
        stderr: String,
    },
    #[error("could not run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
}
