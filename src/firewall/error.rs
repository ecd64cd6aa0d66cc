//! What can go wrong when running iptables, classified so each case maps to one OCF code.

use std::time::Duration;

use super::owned::Why;

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
    /// A chain we were asked to jump to or fill exists and is not ours.
    #[error(
        "chain {chain} is not one redis-ha created ({program}): {why}. redis-ha does not \
         jump to, fill or delete a chain that is not its own: use another chain name, or \
         remove that chain (or rule) if it is a leftover"
    )]
    NotOurs {
        chain: String,
        program: String,
        why: Why,
    },
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
