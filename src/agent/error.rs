//! Why an agent action failed, and the OCF code each reason maps to.

use std::path::PathBuf;

use crate::firewall::FirewallError;
use crate::firewall::block::BadValue;
use crate::lock::LockError;
use crate::ocf::OcfCode;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AgentError {
    #[error("{0}")]
    Config(#[from] BadValue),
    #[error("must run as root to change or read iptables")]
    NotRoot,
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot write state file {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "port {port} is no longer blocked: the rule vanished from chain {chain} (state file {state})"
    )]
    Vanished {
        port: String,
        chain: String,
        state: PathBuf,
    },
    #[error(
        "port {port} is already blocked by {agent} resource {other} (state file {}): two \
         resources of one agent on one port would share one rule, and stopping either would \
         lift the other's block; give each its own port",
        state.display()
    )]
    Shared {
        port: String,
        agent: &'static str,
        other: String,
        state: PathBuf,
    },
    #[error(
        "port {port} is only partly blocked: a rule or the jump from INPUT to {chain} is missing"
    )]
    Partial { port: String, chain: String },
}

impl AgentError {
    pub(crate) fn code(&self) -> OcfCode {
        match self {
            // The chain named is someone else's: invalid wherever it is so named.
            // Two resources configured on one port: invalid wherever both run.
            AgentError::Config(_)
            | AgentError::Firewall(FirewallError::NotOurs { .. })
            | AgentError::Shared { .. } => OcfCode::ErrConfigured,
            AgentError::NotRoot => OcfCode::ErrPerm,
            AgentError::Firewall(
                FirewallError::NotInstalled { .. } | FirewallError::ChangerMissing { .. },
            ) => OcfCode::ErrInstalled,
            AgentError::Firewall(FirewallError::Permission { .. }) => OcfCode::ErrPerm,
            AgentError::Firewall(_)
            | AgentError::Lock(_)
            | AgentError::State { .. }
            | AgentError::Vanished { .. }
            | AgentError::Partial { .. } => OcfCode::ErrGeneric,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iptables_exit_4_is_not_ocf_4_unless_it_is_a_permission_problem() {
        let lock = AgentError::Firewall(FirewallError::LockBusy {
            stderr: "Another app is currently holding the xtables lock.".into(),
        });
        let perm = AgentError::Firewall(FirewallError::Permission {
            program: "iptables".into(),
            stderr: "Permission denied (you must be root)".into(),
        });
        let failed = AgentError::Firewall(FirewallError::Failed {
            command: "iptables -C".into(),
            code: 4,
            stderr: "resource problem".into(),
        });
        let missing = AgentError::Firewall(FirewallError::NotInstalled {
            program: "iptables".into(),
        });
        let table = [
            (lock, OcfCode::ErrGeneric),
            (perm, OcfCode::ErrPerm),
            (failed, OcfCode::ErrGeneric),
            (missing, OcfCode::ErrInstalled),
            (AgentError::NotRoot, OcfCode::ErrPerm),
            (
                AgentError::Config(BadValue::new("port", "0", "1-65535")),
                OcfCode::ErrConfigured,
            ),
        ];
        for (err, want) in table {
            assert_eq!(err.code(), want, "{err}");
        }
    }
}
