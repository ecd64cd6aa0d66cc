//! The real `Cluster`: cibadmin, crm_attribute and crm_resource, bounded in time.

use std::time::Duration;

use super::{Cluster, ClusterError, ClusterState, NodeName, Role};

/// Runs Pacemaker's tools; honours `CIB_file` through the environment like they do.
pub(crate) struct Pacemaker {
    pub(crate) timeout: Duration,
}

impl Cluster for Pacemaker {
    fn state(&self) -> Result<ClusterState, ClusterError> {
        let _ = self.timeout;
        Err(not_yet("cibadmin"))
    }

    fn set_role(&self, _node: &NodeName, _role: Role) -> Result<(), ClusterError> {
        Err(not_yet("crm_attribute"))
    }

    fn write_block_active(&self, _node: &NodeName) -> Result<bool, ClusterError> {
        Err(not_yet("crm_resource"))
    }
}

fn not_yet(command: &str) -> ClusterError {
    ClusterError::Permanent {
        command: command.to_string(),
        reason: "not implemented yet".into(),
    }
}
