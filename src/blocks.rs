//! The two block clones in one table: their agents' names (also the ids of their
//! primitives in the CIB), the ports they refuse by default, their meta-data, and the
//! chain their rules (and the isolation guard's) live in. Everything else that names
//! them reads it from here.

use crate::firewall::Port;

/// Our own filter chain, jumped to from the top of INPUT: the agents' default `chain`,
/// and the isolation guard's.
pub(crate) const CHAIN: &str = "REDIS-HA";

/// Which port an agent refuses by default, and under which name it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentKind {
    /// `RedisLBReadBlock`: refuses reads (6380) where a node must serve nothing.
    Read,
    /// `RedisLBWriteBlock`: refuses writes (6381) wherever the node is not the primary.
    Write,
}

impl AgentKind {
    pub(crate) const ALL: [AgentKind; 2] = [AgentKind::Read, AgentKind::Write];

    pub(crate) fn name(self) -> &'static str {
        match self {
            AgentKind::Read => "RedisLBReadBlock",
            AgentKind::Write => "RedisLBWriteBlock",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub(crate) fn default_port(self) -> Port {
        match self {
            AgentKind::Read => Port::new(6380),
            AgentKind::Write => Port::new(6381),
        }
    }

    /// The meta-data exactly as shipped in `ocf/`.
    pub(crate) fn metadata(self) -> &'static str {
        match self {
            AgentKind::Read => include_str!("../ocf/RedisLBReadBlock.xml"),
            AgentKind::Write => include_str!("../ocf/RedisLBWriteBlock.xml"),
        }
    }
}
