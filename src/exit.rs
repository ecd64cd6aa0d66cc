//! The exit contracts of every program that is not an agent (the agents' is
//! `ocf::OcfCode`): each a closed enum, turned into a process exit code here and only here.

use crate::cluster::ClusterError;
use crate::sentinel::SentinelError;

/// Sentinel's contract for its scripts, kept by `redis-ha sync` and the hidden debug
/// commands too: Sentinel retries a script that exits 1 (up to 10 times) and gives up on
/// one that exits 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HelperExit {
    Done,
    /// Worth trying again: unreachable, no majority, no quorum, busy, timed out.
    Retry,
    /// Trying again cannot help: bad arguments or config, unknown master, refused for good.
    GiveUp,
}

/// `redis-ha status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusExit {
    /// Everything on the screen agrees.
    Agree,
    /// Something disagrees or cannot be known.
    Disagree,
    /// The config cannot be used: nothing was asked.
    Unusable,
}

/// `redis-ha switchover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SwitchoverExit {
    /// The target takes writes; priorities and the hold restored.
    Done,
    /// It cannot be done now (the reason printed): nothing was changed.
    Refused,
    /// It failed or was interrupted before the promotion: everything was restored and
    /// the old primary takes writes again.
    RolledBack,
    /// It stopped where it cannot go back (Sentinel promoted the target) or could not
    /// restore something: the printed lines say what is left.
    Stuck,
}

/// `redis-ha backup` and `redis-ha ports`: done, or failed with one line saying why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToolExit {
    Done,
    Failed,
}

impl From<&ClusterError> for HelperExit {
    fn from(e: &ClusterError) -> Self {
        match e {
            ClusterError::Transient { .. } => HelperExit::Retry,
            ClusterError::Permanent { .. } => HelperExit::GiveUp,
        }
    }
}

impl From<&SentinelError> for HelperExit {
    fn from(e: &SentinelError) -> Self {
        match e {
            SentinelError::Unreachable { .. } | SentinelError::Protocol { .. } => HelperExit::Retry,
            SentinelError::UnknownMaster { .. } | SentinelError::Auth { .. } => HelperExit::GiveUp,
        }
    }
}

/// A contract's value as the process exit code.
pub(crate) trait Exit {
    fn code(self) -> i32;
}

impl Exit for HelperExit {
    fn code(self) -> i32 {
        match self {
            HelperExit::Done => 0,
            HelperExit::Retry => 1,
            HelperExit::GiveUp => 2,
        }
    }
}

impl Exit for StatusExit {
    fn code(self) -> i32 {
        match self {
            StatusExit::Agree => 0,
            StatusExit::Disagree => 1,
            StatusExit::Unusable => 2,
        }
    }
}

impl Exit for SwitchoverExit {
    fn code(self) -> i32 {
        match self {
            SwitchoverExit::Done => 0,
            SwitchoverExit::Refused => 1,
            SwitchoverExit::RolledBack => 2,
            SwitchoverExit::Stuck => 3,
        }
    }
}

impl Exit for ToolExit {
    fn code(self) -> i32 {
        match self {
            ToolExit::Done => 0,
            ToolExit::Failed => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contracts_map_to_their_documented_codes() {
        let helper = [
            (HelperExit::Done, 0),
            (HelperExit::Retry, 1),
            (HelperExit::GiveUp, 2),
        ];
        for (exit, code) in helper {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
        let status = [
            (StatusExit::Agree, 0),
            (StatusExit::Disagree, 1),
            (StatusExit::Unusable, 2),
        ];
        for (exit, code) in status {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
        let switchover = [
            (SwitchoverExit::Done, 0),
            (SwitchoverExit::Refused, 1),
            (SwitchoverExit::RolledBack, 2),
            (SwitchoverExit::Stuck, 3),
        ];
        for (exit, code) in switchover {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
        assert_eq!(ToolExit::Done.code(), 0);
        assert_eq!(ToolExit::Failed.code(), 1);
    }
}
