//! Why a sync stopped, each reason with its place in Sentinel's contract (retry or give
//! up), converted to an exit code in `crate::exit` alone.

use std::time::Duration;

use crate::blocks::AgentKind;
use crate::cluster::{ClusterError, EPOCH_ATTRIBUTE, NodeName};
use crate::config::ConfigError;
use crate::exit::HelperExit;
use crate::lock::LockError;
use crate::observe::ObserveError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Sentinel ran the reconfig script for a master this config does not follow.
    #[error("called for master {called:?}, but the config follows {follows:?}")]
    OtherMaster { called: String, follows: String },
    #[error("{0}")]
    Lock(#[from] LockError),
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    #[error("{0}")]
    Sentinels(#[from] ObserveError),
    #[error("this node's partition has no quorum: writing nothing")]
    NoQuorum,
    /// A view older than the roles in the CIB: a lagging Sentinel majority, or Sentinels
    /// rebuilt from scratch (their epochs restart at 0).
    #[error(
        "the roles were written from Sentinel config-epoch {applied}, newer than the newest \
         the reachable Sentinels know ({seen}): a stale view, writing nothing. If the \
         Sentinels were rebuilt and their epochs restarted, remove the record from every \
         node: crm_attribute --node NODE --name {EPOCH_ATTRIBUTE} --delete"
    )]
    Stale { applied: u64, seen: u64 },
    #[error(
        "the Sentinels moved on while this sync waited (config-epoch {epoch}, primary {}): \
         not promoting {promotion}",
        primary.as_ref().map_or("none".to_string(), ToString::to_string)
    )]
    MovedOn {
        epoch: u64,
        primary: Option<NodeName>,
        promotion: NodeName,
    },
    #[error("{other} became primary while this sync ran: not promoting {promotion}")]
    OtherPrimary {
        other: NodeName,
        promotion: NodeName,
    },
    #[error(
        "{} after {} ms: not promoting {promotion} yet",
        not_running(open, reads_open),
        waited.as_millis()
    )]
    BlockNotRunning {
        /// Nodes whose `RedisLBWriteBlock` is not running yet.
        open: Vec<NodeName>,
        /// Nodes whose `RedisLBReadBlock` is not running yet.
        reads_open: Vec<NodeName>,
        waited: Duration,
        promotion: NodeName,
    },
    #[error("some Redis addresses map to no single node")]
    Unmapped,
    /// Some addresses map to no node because these node names were still being looked up
    /// at the deadline (a slow or silent name server): another try may map them.
    #[error(
        "some Redis addresses map to no node yet: the lookup of {} did not finish in time",
        names.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    ResolvedLate { names: Vec<NodeName> },
    #[error("the config names nodes the cluster does not have: nothing written")]
    UnknownNodes,
}

impl From<&SyncError> for HelperExit {
    fn from(e: &SyncError) -> Self {
        match e {
            SyncError::Config(_)
            | SyncError::OtherMaster { .. }
            | SyncError::Unmapped
            | SyncError::UnknownNodes => HelperExit::GiveUp,
            SyncError::Cluster(e) => e.into(),
            SyncError::Sentinels(e) => e.into(),
            SyncError::Lock(_)
            | SyncError::NoQuorum
            | SyncError::Stale { .. }
            | SyncError::MovedOn { .. }
            | SyncError::OtherPrimary { .. }
            | SyncError::BlockNotRunning { .. }
            | SyncError::ResolvedLate { .. } => HelperExit::Retry,
        }
    }
}

/// "node1 demoted but RedisLBWriteBlock not running there; node3 ... RedisLBReadBlock ...".
fn not_running(writes: &[NodeName], reads: &[NodeName]) -> String {
    [(writes, AgentKind::Write), (reads, AgentKind::Read)]
        .into_iter()
        .filter(|(nodes, _)| !nodes.is_empty())
        .map(|(nodes, kind)| {
            let nodes: Vec<String> = nodes.iter().map(ToString::to_string).collect();
            format!(
                "{} demoted but {} not running there",
                nodes.join(", "),
                kind.name()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl SyncError {
    /// What Sentinel should do about it.
    pub(crate) fn exit(&self) -> HelperExit {
        self.into()
    }

    /// The reason as logged: whether Sentinel tries again is part of it.
    pub(crate) fn logged(&self) -> String {
        match self.exit() {
            HelperExit::Retry => format!("{self} (will retry)"),
            _ => self.to_string(),
        }
    }
}
